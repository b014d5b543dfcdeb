"""The notification outbox and the sweep, in-process against local stand-ins (a recording HTTP
server plays webhook receiver and Twilio; aiosmtpd plays the mail server). Time is driven by the
`now` every outbox function takes: nothing sleeps."""

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from incidents import outbox, tasks, workflow
from incidents.models import Channel, Incident, Notification, Service, TimelineEntry
from incidents.services import escalation_policy_create, escalation_step_add, service_create
from oncall import notify
from oncall import services as people
from oncall.models import ContactKind, Role
from oncall.tests.factories import TeamFactory, UserFactory, contact_method
from oncall.tests.servers import RecordingHTTPServer, RecordingSMTPServer, Reply

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "tw-s3cr3t-auth-token"
SECRET_PATH = "/hooks/T000/B000/xoxb-s3cr3t-webhook-path"
Status = Notification.Status


@pytest.fixture
def http_server():
    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def smtp_server():
    with RecordingSMTPServer() as server:
        yield server


@pytest.fixture
def twilio(settings, http_server):
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_BASE_URL = http_server.base_url
    return http_server


@pytest.fixture
def smtp_settings(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.hostname
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.BASE_URL = "http://oncall.test"
    return smtp_server


@pytest.fixture
def team():
    ada = UserFactory(username="ada", display_name="Ada Lovelace")
    bob = UserFactory(username="bob", display_name="Bob")
    return TeamFactory(lead=ada, members=[(bob, Role.RESPONDER)]), ada, bob


def make_service(team, *steps, name="API", repeat_count=0):
    """A service whose policy has one step per list of users, each waiting 10 minutes."""
    policy = escalation_policy_create(team=team, name=f"{name} policy", repeat_count=repeat_count)
    for users in steps:
        escalation_step_add(policy=policy, delay_minutes=10, users=users)
    return service_create(team=team, name=name, escalation_policy=policy)


def page(service, at=T0, title="Disk full"):
    """Trigger an incident and run its first step, as the engine does."""
    incident = workflow.incident_trigger(service=service, title=title, at=at)
    workflow.incident_advance(incident=incident, now=at)
    return incident


def timeline(incident, *kinds):
    entries = TimelineEntry.objects.filter(incident=incident).order_by("at", "id")
    if kinds:
        entries = entries.filter(kind__in=kinds)
    return list(entries)


# --- sending and recording ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_due_notification_is_sent_once_and_recorded(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    incident = page(make_service(team_, [ada]))

    report = outbox.notifications_send_due(now=T0)
    again = outbox.notifications_send_due(now=T0 + timedelta(minutes=1))

    assert (report.messages, report.sent, again.messages) == (1, 1, 0)
    [request] = http_server.wait_for_requests(1)
    body = request.json()
    assert body["event"] == "incident.triggered"
    assert body["subject"] == f"[Oncall] #{incident.pk} Triggered: Disk full — API"
    assert set(body["actions"]) == {"Acknowledge", "Resolve"}
    assert body["data"]["incidents"][0]["id"] == incident.pk
    row = Notification.objects.get(incident=incident)
    assert (row.status, row.attempts, row.sent_at) == (Status.SENT, 1, T0)
    assert row.provider_answer.startswith("HTTP 200")
    [entry] = timeline(incident, TimelineEntry.Kind.NOTIFIED)
    assert entry.channel == Channel.SYSTEM
    assert entry.message.startswith("Notified Ada Lovelace by Generic webhook: HTTP 200")
    assert entry.data["contact_kind"] == "webhook"
    assert entry.data["ok"] is True


@pytest.mark.django_db
def test_rules_fire_at_their_delay_after_the_page(team, http_server):
    team_, ada, _ = team
    hook = contact_method(ada, ContactKind.WEBHOOK, http_server.url("/later"))
    people.notification_rule_create(user=ada, contact_method=hook, delay_minutes=5, urgency="high")
    incident = page(make_service(team_, [ada]))

    assert outbox.notifications_send_due(now=T0 + timedelta(minutes=4, seconds=59)).messages == 0
    assert outbox.notifications_send_due(now=T0 + timedelta(minutes=5)).sent == 1
    assert Notification.objects.get(incident=incident).status == Status.SENT


@pytest.mark.django_db
def test_acknowledging_stops_the_rules_not_yet_fired(team, http_server):
    team_, ada, _ = team
    hook = contact_method(ada, ContactKind.WEBHOOK, http_server.url("/later"))
    people.notification_rule_create(user=ada, contact_method=hook, delay_minutes=5, urgency="high")
    incident = page(make_service(team_, [ada]))
    workflow.incident_acknowledge(
        incident=incident, by=ada, via=Channel.WEB, at=T0 + timedelta(minutes=1)
    )

    assert outbox.notifications_send_due(now=T0 + timedelta(minutes=10)).messages == 0
    assert http_server.requests == []
    assert Notification.objects.get(incident=incident).status == Status.SKIPPED


@pytest.mark.django_db
def test_pending_rows_of_one_person_and_method_are_bundled_into_one_message(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    service = make_service(team_, [ada])
    first = page(service, title="Disk full")
    second = page(service, title="CPU hot")

    report = outbox.notifications_send_due(now=T0)

    assert (report.messages, report.sent) == (1, 2)
    [request] = http_server.wait_for_requests(1)
    body = request.json()
    assert body["subject"].startswith("[Oncall] 2 incidents triggered: ")
    assert {i["id"] for i in body["data"]["incidents"]} == {first.pk, second.pk}
    assert set(body["actions"]) == {
        f"Acknowledge #{first.pk}",
        f"Resolve #{first.pk}",
        f"Acknowledge #{second.pk}",
        f"Resolve #{second.pk}",
    }
    rows = list(Notification.objects.order_by("id"))
    assert [r.status for r in rows] == [Status.SENT, Status.SENT]
    assert rows[0].bundled_into is None and rows[1].bundled_into_id == rows[0].pk
    for incident in (first, second):
        [entry] = timeline(incident, TimelineEntry.Kind.NOTIFIED)
        assert "in one message with 1 other incident(s)" in entry.message


@pytest.mark.django_db
def test_each_contact_method_gets_its_own_message(team, http_server):
    team_, ada, bob = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada-1"))
    contact_method(ada, ContactKind.SLACK, http_server.url("/ada-2"))
    contact_method(bob, ContactKind.WEBHOOK, http_server.url("/bob"))
    page(make_service(team_, [ada, bob]))

    report = outbox.notifications_send_due(now=T0)

    assert report.messages == 3
    assert sorted(r.path for r in http_server.wait_for_requests(3)) == ["/ada-1", "/ada-2", "/bob"]


# --- SMS and voice: at most one a minute per contact method -----------------------------------


@pytest.mark.django_db
def test_sms_is_throttled_per_contact_method_and_postponed_not_dropped(team, twilio):
    team_, ada, _ = team
    contact_method(ada, ContactKind.SMS, "+447700900123")
    service = make_service(team_, [ada])
    first = page(service, at=T0, title="Disk full")
    assert outbox.notifications_send_due(now=T0).sent == 1

    second = page(service, at=T0 + timedelta(seconds=10), title="CPU hot")
    report = outbox.notifications_send_due(now=T0 + timedelta(seconds=10))
    third = page(service, at=T0 + timedelta(seconds=20), title="Queue stuck")
    later = outbox.notifications_send_due(now=T0 + timedelta(seconds=20))

    assert (report.messages, report.postponed, later.postponed) == (0, 1, 1)
    assert len(twilio.requests) == 1
    postponed = Notification.objects.filter(status=Status.PENDING)
    assert {n.due_at for n in postponed} == {T0 + timedelta(minutes=1)}
    assert outbox.notifications_send_due(now=T0 + timedelta(seconds=59)).messages == 0

    report = outbox.notifications_send_due(now=T0 + timedelta(minutes=1))

    assert (report.messages, report.sent) == (1, 2)
    requests = twilio.wait_for_requests(2)
    assert len(requests) == 2
    assert requests[0].form()["Body"].startswith(f"[Oncall] #{first.pk} Triggered: Disk full")
    assert requests[1].form()["Body"].startswith("[Oncall] 2 incidents triggered:")
    bundle = list(Notification.objects.filter(incident__in=[second, third]).order_by("id"))
    assert [n.status for n in bundle] == [Status.SENT, Status.SENT]
    assert bundle[1].bundled_into_id == bundle[0].pk


@pytest.mark.django_db
def test_voice_throttle_is_per_contact_method_not_per_person(team, twilio):
    team_, ada, _ = team
    contact_method(ada, ContactKind.VOICE, "+447700900123")
    contact_method(ada, ContactKind.SMS, "+447700900123")
    service = make_service(team_, [ada])
    page(service)
    assert outbox.notifications_send_due(now=T0).messages == 2  # one call, one SMS
    page(service, at=T0 + timedelta(seconds=30), title="Again")
    report = outbox.notifications_send_due(now=T0 + timedelta(seconds=30))
    assert (report.messages, report.postponed) == (0, 2)
    calls = [r for r in twilio.requests if r.path.endswith("/Calls.json")]
    assert len(calls) == 1
    assert "<Say>" in calls[0].form()["Twiml"]


@pytest.mark.django_db
def test_e_mail_is_not_throttled(team, smtp_settings):
    team_, ada, _ = team
    contact_method(ada, ContactKind.EMAIL, "ada@example.com")
    service = make_service(team_, [ada])
    page(service)
    outbox.notifications_send_due(now=T0)
    page(service, at=T0 + timedelta(seconds=5), title="Again")
    assert outbox.notifications_send_due(now=T0 + timedelta(seconds=5)).sent == 1
    assert len(smtp_settings.wait_for_messages(2)) == 2


# --- failures: three attempts with backoff ------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_provider_is_tried_three_times_with_backoff_then_failed(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    http_server.respond(503, "maintenance")
    incident = page(make_service(team_, [ada]))

    outbox.notifications_send_due(now=T0)
    row = Notification.objects.get()
    assert (row.status, row.attempts, row.due_at) == (
        Status.PENDING,
        1,
        T0 + timedelta(seconds=30),
    )
    assert row.provider_answer == "HTTP 503 maintenance"
    assert outbox.notifications_send_due(now=T0 + timedelta(seconds=29)).messages == 0

    outbox.notifications_send_due(now=T0 + timedelta(seconds=30))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.due_at) == (
        Status.PENDING,
        2,
        T0 + timedelta(seconds=150),
    )

    outbox.notifications_send_due(now=T0 + timedelta(seconds=150))
    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at) == (Status.FAILED, 3, None)
    assert outbox.notifications_send_due(now=T0 + timedelta(hours=1)).messages == 0
    assert len(http_server.requests) == 3
    failures = timeline(incident, TimelineEntry.Kind.NOTIFY_FAILED)
    assert [e.data["attempt"] for e in failures] == [1, 2, 3]
    assert "attempt 1 of 3); trying again at 03:00:30 UTC: HTTP 503 maintenance" in (
        failures[0].message
    )
    assert failures[2].message.endswith(
        "failed after 3 attempt(s); giving up: HTTP 503 maintenance"
    )


@pytest.mark.django_db
def test_a_retry_that_succeeds_is_sent(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    http_server.replies = [Reply(status=500, body=b"oops")]
    incident = page(make_service(team_, [ada]))

    outbox.notifications_send_due(now=T0)
    outbox.notifications_send_due(now=T0 + timedelta(seconds=30))

    row = Notification.objects.get()
    assert (row.status, row.attempts) == (Status.SENT, 2)
    kinds = [e.kind for e in timeline(incident, "notified", "notify_failed")]
    assert kinds == ["notify_failed", "notified"]


@pytest.mark.django_db
def test_a_final_failure_is_not_retried(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/gone"))
    http_server.respond(404, "no such hook")
    page(make_service(team_, [ada]))

    outbox.notifications_send_due(now=T0)

    row = Notification.objects.get()
    assert (row.status, row.attempts, row.provider_answer) == (
        Status.FAILED,
        1,
        "HTTP 404 no such hook",
    )


@pytest.mark.django_db
def test_sms_without_twilio_configured_fails_with_the_reason(team, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    team_, ada, _ = team
    contact_method(ada, ContactKind.SMS, "+447700900123")
    incident = page(make_service(team_, [ada]))

    outbox.notifications_send_due(now=T0)

    assert Notification.objects.get().status == Status.FAILED
    [entry] = timeline(incident, TimelineEntry.Kind.NOTIFY_FAILED)
    assert "Twilio is not configured" in entry.message


@pytest.mark.django_db
def test_a_deleted_contact_method_fails_the_row(team, http_server):
    team_, ada, _ = team
    hook = contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    page(make_service(team_, [ada]))
    people.contact_method_delete(method=hook)

    outbox.notifications_send_due(now=T0)

    row = Notification.objects.get()
    assert (row.status, row.provider_answer) == (Status.FAILED, "the contact method was deleted")


# --- crashes: rows stuck in `sending` ----------------------------------------------------------


class WorkerKilled(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs."""


@pytest.mark.django_db
def test_rows_left_sending_by_a_dead_worker_are_sent_again_after_five_minutes(
    team, http_server, monkeypatch
):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    incident = page(make_service(team_, [ada]))

    def killed(method, message):
        raise WorkerKilled

    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", killed)
        with pytest.raises(WorkerKilled):
            outbox.notifications_send_due(now=T0)
    assert Notification.objects.get().status == Status.SENDING
    assert outbox.notifications_send_due(now=T0 + timedelta(minutes=1)).messages == 0
    assert outbox.notifications_release_stuck(now=T0 + timedelta(minutes=4)) == 0

    assert outbox.notifications_release_stuck(now=T0 + timedelta(minutes=5, seconds=1)) == 1
    report = outbox.notifications_send_due(now=T0 + timedelta(minutes=5, seconds=1))

    assert report.sent == 1
    assert len(http_server.wait_for_requests(1)) == 1
    row = Notification.objects.get()
    assert (row.status, row.attempts) == (Status.SENT, 2)
    assert timeline(incident, TimelineEntry.Kind.NOTIFIED)


@pytest.mark.django_db
def test_a_row_stuck_after_its_last_attempt_is_failed(team, http_server, monkeypatch):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    incident = page(make_service(team_, [ada]))
    monkeypatch.setattr(notify, "send", lambda method, message: (_ for _ in ()).throw(WorkerKilled))
    now = T0
    for _ in range(outbox.MAX_ATTEMPTS):
        with pytest.raises(WorkerKilled):
            outbox.notifications_send_due(now=now)
        now += outbox.STUCK_AFTER + timedelta(seconds=1)
        outbox.notifications_release_stuck(now=now)

    row = Notification.objects.get()
    assert (row.status, row.attempts) == (Status.FAILED, 3)
    assert "giving up after 3 attempts" in row.provider_answer
    assert timeline(incident, TimelineEntry.Kind.NOTIFY_FAILED)


@pytest.mark.django_db
def test_a_row_released_after_the_incident_was_acknowledged_is_skipped(
    team, http_server, monkeypatch
):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    incident = page(make_service(team_, [ada]))
    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", lambda m, msg: (_ for _ in ()).throw(WorkerKilled))
        with pytest.raises(WorkerKilled):
            outbox.notifications_send_due(now=T0)
    workflow.incident_acknowledge(
        incident=incident, by=ada, via=Channel.WEB, at=T0 + timedelta(minutes=1)
    )
    outbox.notifications_release_stuck(now=T0 + timedelta(minutes=6))

    report = outbox.notifications_send_due(now=T0 + timedelta(minutes=6))

    assert (report.messages, report.skipped) == (0, 1)
    row = Notification.objects.get()
    assert (row.status, row.provider_answer) == (Status.SKIPPED, "incident acknowledged")
    assert http_server.requests == []


# --- secrets never leave through the outcome or the logs -------------------------------------


@pytest.mark.django_db
def test_no_secret_reaches_the_rows_the_timeline_or_the_logs(team, twilio, caplog):
    """Twilio's answer echoes its token, the Slack URL holds a secret path and refuses: the
    outcome is recorded and logged, the secrets are not."""
    caplog.set_level(logging.DEBUG)
    team_, ada, _ = team
    twilio.respond(401, f'{{"message": "Authenticate", "token": "{TOKEN}"}}')
    with RecordingHTTPServer(Reply(status=403, body=b"invalid_token")) as slack:
        contact_method(ada, ContactKind.SLACK, slack.url(SECRET_PATH))
        contact_method(ada, ContactKind.SMS, "+447700900123")
        incident = page(make_service(team_, [ada]))

        outbox.notifications_send_due(now=T0)

        assert len(slack.wait_for_requests(1)) == 1
    assert len(twilio.wait_for_requests(1)) == 1
    recorded = " ".join(
        [str(list(Notification.objects.values()))]
        + [f"{e.message} {e.data}" for e in timeline(incident)]
        + [caplog.text]
    )
    assert "HTTP 401" in recorded and "HTTP 403 invalid_token" in recorded
    assert TOKEN not in recorded
    assert "xoxb-s3cr3t-webhook-path" not in recorded


@pytest.mark.django_db
def test_escalating_by_hand_to_a_step_already_fired_notifies_again(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    incident = page(make_service(team_, [ada]))
    later = T0 + timedelta(minutes=3)
    workflow.incident_escalate(incident=incident, by=ada, via=Channel.WEB, at=later, to_step=0)
    workflow.incident_advance(incident=incident, now=later)

    assert Notification.objects.filter(incident=incident).count() == 2


# --- the sweep -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_advances_an_overdue_escalation_and_sends_its_pages(team, http_server):
    """Eager Celery in tests: the sweep's queued send runs inline, at the sweep's `now`."""
    team_, ada, bob = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    contact_method(bob, ContactKind.WEBHOOK, http_server.url("/bob"))
    incident = workflow.incident_trigger(
        service=make_service(team_, [ada], [bob]), title="X", at=T0
    )

    first = tasks.sweep(now=T0.isoformat())
    assert first["advanced"] == [incident.pk]
    assert [r.path for r in http_server.wait_for_requests(1)] == ["/ada"]
    assert tasks.sweep(now=(T0 + timedelta(minutes=9)).isoformat())["advanced"] == []

    second = tasks.sweep(now=(T0 + timedelta(minutes=10)).isoformat())

    assert second["advanced"] == [incident.pk]
    assert [r.path for r in http_server.wait_for_requests(2)] == ["/ada", "/bob"]
    assert Notification.objects.filter(status=Status.SENT).count() == 2


@pytest.mark.django_db
def test_the_sweep_triggers_a_timed_out_acknowledgement_again(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    service = make_service(team_, [ada])
    Service.objects.filter(pk=service.pk).update(ack_timeout_minutes=30)
    service.refresh_from_db()
    incident = page(service)
    outbox.notifications_send_due(now=T0)
    workflow.incident_acknowledge(
        incident=incident, by=ada, via=Channel.WEB, at=T0 + timedelta(minutes=1)
    )

    report = tasks.sweep(now=(T0 + timedelta(minutes=31)).isoformat())

    assert report["unacknowledged"] == [incident.pk]
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
    assert TimelineEntry.objects.filter(incident=incident, kind="unacknowledged").exists()


@pytest.mark.django_db
def test_a_timed_out_acknowledgement_pages_again(team, http_server):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    service = make_service(team_, [ada])
    Service.objects.filter(pk=service.pk).update(ack_timeout_minutes=30)
    service.refresh_from_db()
    incident = page(service)
    outbox.notifications_send_due(now=T0)
    workflow.incident_acknowledge(
        incident=incident, by=ada, via=Channel.WEB, at=T0 + timedelta(minutes=1)
    )

    tasks.sweep(now=(T0 + timedelta(minutes=31)).isoformat())

    assert Notification.objects.filter(incident=incident).count() == 2
    assert len(http_server.wait_for_requests(2, timeout=1)) == 2  # paged again, from step 1


@pytest.mark.django_db
def test_the_sweep_releases_stuck_rows_and_queues_their_sending(team, http_server, monkeypatch):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    page(make_service(team_, [ada]))
    with monkeypatch.context() as patch:
        patch.setattr(notify, "send", lambda m, msg: (_ for _ in ()).throw(WorkerKilled))
        with pytest.raises(WorkerKilled):
            outbox.notifications_send_due(now=T0)

    report = tasks.sweep(now=(T0 + timedelta(minutes=6)).isoformat())

    assert report["released"] == 1
    assert len(http_server.wait_for_requests(1)) == 1
    assert Notification.objects.get().status == Status.SENT


@pytest.mark.django_db
def test_the_sweep_keeps_going_past_a_broken_incident(team, http_server, monkeypatch):
    team_, ada, _ = team
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    service = make_service(team_, [ada])
    broken = workflow.incident_trigger(service=service, title="broken", at=T0)
    fine = workflow.incident_trigger(service=service, title="fine", at=T0)
    real_advance = workflow.incident_advance

    def advance(*, incident, now):
        if incident == broken.pk:
            raise RuntimeError("boom")
        return real_advance(incident=incident, now=now)

    monkeypatch.setattr(workflow, "incident_advance", advance)

    report = outbox.paging_sweep(now=T0)

    assert report.advanced == [fine.pk]
    assert report.errors == 1


def test_a_broker_that_is_down_does_not_fail_the_caller(monkeypatch, caplog):
    def down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.send_notifications, "delay", down)
    monkeypatch.setattr(tasks.advance, "apply_async", down)

    outbox.queue_send()
    tasks.queue_advance(1, T0)

    assert "the sweep will" in caplog.text


@pytest.mark.django_db
def test_the_test_notification_task_sends_one_and_answers_the_outcome(http_server):
    owner = UserFactory()
    hook = contact_method(owner, ContactKind.WEBHOOK, http_server.url("/hook"))

    assert tasks.send_test_notification(hook.pk).startswith("sent: HTTP 200")
    assert tasks.send_test_notification(hook.pk + 1000) == "no such contact method"
    assert http_server.wait_for_requests(1)[0].json()["event"] == "test"


def test_only_near_escalations_get_a_task_far_ones_are_left_to_the_sweep(monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.advance, "apply_async", lambda **kwargs: queued.append(kwargs))
    now = timezone.now()

    tasks.queue_advance(1, now - timedelta(minutes=1))
    tasks.queue_advance(2, now + timedelta(minutes=30))
    tasks.queue_advance(3, now + timedelta(hours=2))

    assert [q["args"] for q in queued] == [[1], [2]]
    assert queued[0]["eta"] >= now  # an overdue step: at once


def test_now_must_be_an_aware_iso_time():
    with pytest.raises(ValueError, match="offset"):
        tasks._when("2026-11-24T03:00:00")
    assert tasks._when("2026-11-24T03:00:00+00:00") == T0


# --- two workers at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_workers_sending_at_once_send_each_notification_once(postgres_required, http_server):
    """Real row locks (PostgreSQL): four threads drain one outbox; every row goes out once."""
    lead = UserFactory()
    people_ = [UserFactory() for _ in range(12)]
    team_ = TeamFactory(lead=lead, members=[(p, Role.RESPONDER) for p in people_])
    for person in people_:
        contact_method(person, ContactKind.WEBHOOK, http_server.url(f"/u{person.pk}"))
    page(make_service(team_, people_))
    assert Notification.objects.count() == 12
    start = threading.Barrier(4)
    errors = []

    def drain():
        try:
            start.wait(timeout=10)
            outbox.notifications_send_due(now=T0)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert Notification.objects.filter(status=Status.SENT, attempts=1).count() == 12
    paths = [r.path for r in http_server.wait_for_requests(12)]
    assert sorted(paths) == sorted(f"/u{p.pk}" for p in people_)
