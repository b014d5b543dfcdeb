"""Postmortem reminders (Celery beat): reviewers of reviews pending > 2 days, authors of resolved
high-urgency incidents still without a postmortem after POSTMORTEM_DUE_DAYS, owners of overdue
action items — each once a day, by e-mail through a local SMTP server."""

import threading
from datetime import date, timedelta

import pytest
import time_machine
from django.db import connection

from incidents import workflow
from incidents.models import Channel
from oncall.tests.servers import RecordingSMTPServer
from postmortems import services, tasks
from postmortems.models import ActionItem, PostmortemReminder

from .factories import T0, draft, make_world, resolved_incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_server():
    """A local SMTP server recording every message (as in oncall/tests/conftest.py)."""
    with RecordingSMTPServer() as server:
        yield server


@pytest.fixture
def mail(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.hostname
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.BASE_URL = "http://oncall.test"
    settings.POSTMORTEM_REVIEW_REMINDER_DAYS = 2
    settings.POSTMORTEM_DUE_DAYS = 5
    return smtp_server


@pytest.fixture
def world():
    return make_world()


def reminders(smtp_server) -> list:
    return [m for m in smtp_server.messages if m.subject.startswith("Postmortems:")]


def run_at(moment) -> int:
    with time_machine.travel(moment, tick=False):
        return tasks.send_reminders()


# --- review requests ---------------------------------------------------------------------------


def test_a_reviewer_is_reminded_after_two_days_once_a_day(world, mail):
    pm = draft(world)
    asked = T0 + timedelta(hours=2)
    with time_machine.travel(asked, tick=False):
        services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])

    assert run_at(asked + timedelta(days=2) - timedelta(minutes=1)) == 0
    assert reminders(mail) == []

    assert run_at(asked + timedelta(days=2, minutes=5)) == 1
    [message] = reminders(mail)
    assert message.rcpt_tos == ("peer@example.com",)
    assert message.subject == "Postmortems: 1 review waiting"
    text = message.part("text/plain")
    assert "Disk full on db-1" in text
    assert "asked by Ada Author 2 days ago" in text
    assert "http://oncall.test/postmortems/" in text
    assert "Disk full on db-1" in message.part("text/html")

    # idempotent: running again the same day sends nothing
    assert run_at(asked + timedelta(days=2, hours=3)) == 0
    assert len(reminders(mail)) == 1
    # the next day, again
    assert run_at(asked + timedelta(days=3, minutes=5)) == 1
    assert len(reminders(mail)) == 2
    review = pm.reviews.get()
    assert review.reminded_at == asked + timedelta(days=3, minutes=5)

    # decided: no more reminders
    services.review_decide(postmortem=pm, user=world.peer, decision="approved")
    assert run_at(asked + timedelta(days=4, minutes=5)) == 0
    assert len(reminders(mail)) == 2


def test_a_reviewer_who_left_the_team_is_not_reminded(world, mail):
    from oncall import services as people

    pm = draft(world)
    with time_machine.travel(T0, tick=False):
        services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    people.membership_remove(team=world.alpha, user=world.peer)
    assert run_at(T0 + timedelta(days=3)) == 0


# --- postmortems not written -------------------------------------------------------------------


def test_the_responder_of_a_high_urgency_incident_is_reminded_to_write_the_postmortem(world, mail):
    incident = resolved_incident(world)  # acknowledged and resolved by the author
    resolved = incident.resolved_at
    resolved_incident(world, at=T0 + timedelta(minutes=1), urgency="low", title="Slow cron")

    assert run_at(resolved + timedelta(days=5) - timedelta(minutes=1)) == 0
    assert run_at(resolved + timedelta(days=5, minutes=1)) == 1
    [message] = reminders(mail)
    assert message.rcpt_tos == ("author@example.com",)
    assert message.subject == "Postmortems: 1 postmortem to write"
    text = message.part("text/plain")
    assert f"#{incident.pk} Disk full on db-1" in text
    assert "Slow cron" not in text  # low urgency: no postmortem expected
    assert f"http://oncall.test/incidents/{incident.pk}/" in text

    # once the postmortem exists, nobody is reminded any more
    services.postmortem_create_from_incidents(user=world.author, incidents=[incident])
    assert run_at(resolved + timedelta(days=6, minutes=1)) == 0


def test_the_due_days_are_configurable(world, mail, settings):
    settings.POSTMORTEM_DUE_DAYS = 1
    incident = resolved_incident(world)
    assert run_at(incident.resolved_at + timedelta(days=1, minutes=1)) == 1


def test_the_teams_leads_are_reminded_when_nobody_acknowledged_or_resolved(world, mail):
    incident = workflow.incident_trigger(
        service=world.api, title="Heartbeat missed", at=T0, integration=world.events
    )
    workflow.incident_resolve(
        incident=incident, by=None, via=Channel.INTEGRATION, at=T0 + timedelta(minutes=10)
    )
    assert run_at(T0 + timedelta(days=6)) == 1
    [message] = reminders(mail)
    assert message.rcpt_tos == ("lead@example.com",)


def test_incidents_long_past_are_not_nagged_about_forever(world, mail):
    resolved_incident(world)
    assert run_at(T0 + timedelta(days=5 + 31)) == 0


# --- action items ------------------------------------------------------------------------------


def test_owners_of_overdue_action_items_are_reminded(world, mail):
    pm = draft(world)
    item = services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Patch the Nginx server",
        owner=world.peer,
        due_date=date(2026, 3, 9),
    )
    assert run_at(T0.replace(day=9, hour=12)) == 0  # due today: not overdue yet
    assert run_at(T0.replace(day=10, hour=8)) == 1
    [message] = reminders(mail)
    assert message.rcpt_tos == ("peer@example.com",)
    assert message.subject == "Postmortems: 1 overdue action item"
    text = message.part("text/plain")
    assert "Patch the Nginx server (due 2026-03-09, 1 day overdue" in text
    assert "http://oncall.test/postmortems/action-items/" in text
    item.refresh_from_db()
    assert item.reminded_on == date(2026, 3, 10)

    services.action_item_close(item=item, user=world.peer)
    assert run_at(T0.replace(day=11, hour=8)) == 0
    assert ActionItem.objects.get().status == ActionItem.Status.DONE


def test_one_message_per_person_lists_everything_due(world, mail):
    pm = draft(world)
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    for title in ("Alert on WAL size", "Runbook for disk full"):
        services.action_item_save(
            postmortem=pm,
            user=world.author,
            title=title,
            owner=world.peer,
            due_date=date(2026, 3, 3),
        )
    assert run_at(T0 + timedelta(days=4)) == 1
    [message] = reminders(mail)
    assert message.subject == "Postmortems: 1 review waiting, 2 overdue action items"
    text = message.part("text/plain")
    assert "Alert on WAL size" in text and "Runbook for disk full" in text
    assert PostmortemReminder.objects.filter(recipient=world.peer).count() == 3


def test_a_person_without_an_email_method_gets_it_at_their_account_address(world, mail):
    incident = resolved_incident(world, service=world.bravo_service, by=world.outsider)
    assert not world.outsider.contact_methods.exists()
    assert run_at(incident.resolved_at + timedelta(days=5, hours=1)) == 1
    assert reminders(mail)[0].rcpt_tos == ("outsider@example.com",)


def test_the_beat_schedule_runs_the_task(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["postmortem-reminders"]
    assert entry["task"] == tasks.send_reminders.name


# --- review notifications ----------------------------------------------------------------------


def test_reviewers_are_told_at_once_and_the_author_hears_the_decision(
    world, mail, django_capture_on_commit_callbacks
):
    pm = draft(world)
    with django_capture_on_commit_callbacks(execute=True):
        services.review_request(
            postmortem=pm, user=world.author, reviewers=[world.peer, world.lead]
        )
    asked = [m for m in mail.messages if m.subject.startswith("Review requested")]
    assert sorted(m.rcpt_tos for m in asked) == [("lead@example.com",), ("peer@example.com",)]
    text = asked[0].part("text/plain")
    assert "Ada Author asks you to review the postmortem “Disk full on db-1” (Alpha)" in text
    assert f"http://oncall.test/postmortems/{pm.pk}/" in text

    with django_capture_on_commit_callbacks(execute=True):
        services.review_decide(
            postmortem=pm,
            user=world.peer,
            decision="changes_requested",
            note="Say when the DBA was <paged>.",
        )
    [decided] = [m for m in mail.messages if "requested changes to" in m.subject]
    assert decided.rcpt_tos == ("author@example.com",)
    assert decided.subject.strip() == "Pat Peer requested changes to “Disk full on db-1”"
    assert "Say when the DBA was <paged>." in decided.part("text/plain")
    assert "Say when the DBA was &lt;paged&gt;." in decided.part("text/html")


def test_nothing_is_sent_when_the_change_is_refused(
    world, mail, django_capture_on_commit_callbacks
):
    pm = draft(world)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(services.PostmortemError):
            services.review_request(postmortem=pm, user=world.author, reviewers=[world.author])
    assert callbacks == [] and mail.messages == []


def test_a_review_decided_before_the_task_runs_is_not_announced(world, mail):
    pm = draft(world)
    [review] = services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    services.review_decide(postmortem=pm, user=world.peer, decision="approved")
    assert tasks.notify_review_requested([review.pk]) == 0
    assert tasks.notify_review_decided(review.pk) == 1
    assert [m.subject.strip() for m in mail.messages] == ["Pat Peer approved “Disk full on db-1”"]


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_send_once(postgres_required, mail, monkeypatch):
    """Two beat runs (or two workers) both find the same things due; the unique reminder row
    lets only one of them send."""
    world = make_world()
    pm = draft(world)
    with time_machine.travel(T0, tick=False):
        services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    threads_count = 3
    barrier = threading.Barrier(threads_count, timeout=10)
    real = services.reminders_due

    def find_then_wait(*, now):
        found = real(now=now)
        barrier.wait()  # everybody has found the reminder due before anybody records it
        return found

    monkeypatch.setattr(services, "reminders_due", find_then_wait)
    sent, errors = [], []

    def worker():
        try:
            sent.append(services.postmortem_reminders_send(now=T0 + timedelta(days=3)))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(sent) == [0] * (threads_count - 1) + [1]
    assert len(reminders(mail)) == 1
