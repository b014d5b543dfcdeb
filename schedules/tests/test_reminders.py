"""Shift reminders: "your on-call shift starts in 1 hour" and "starts now", once per shift,
through the person's contact methods (never a phone call), run by Celery beat every minute.

E-mail goes to Django's locmem outbox; webhooks and the Twilio API go to a local recording
server. Time is frozen with time_machine and moved by hand.
"""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from oncall.models import ContactKind
from oncall.services import contact_method_create
from oncall.tests.factories import TeamFactory, UserFactory
from oncall.tests.servers import RecordingHTTPServer
from schedules import selectors, services, tasks
from schedules.models import Layer, Schedule, ShiftReminder

LONDON = ZoneInfo("Europe/London")
BASE_URL = "https://oncall.example.com"
# 2026-01-05 is a Monday; the rotation hands off daily at 09:00 London: ann on the 5th, ben on
# the 6th, ann on the 7th, ben on the 8th… (London is on UTC in January.)
ROTATION_START = datetime(2026, 1, 5, 9, 0, tzinfo=LONDON)


def london(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=LONDON)


@pytest.fixture
def http_server():
    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def clock(time_machine):
    """Set the frozen time; `clock(at)` also returns it."""

    def move_to(at: datetime) -> datetime:
        time_machine.move_to(at, tick=False)
        return timezone.now()

    move_to(london(5, 7))
    return move_to


@pytest.fixture
def portal(settings, http_server):
    settings.BASE_URL = BASE_URL
    settings.TWILIO_ACCOUNT_SID = "AC123"
    settings.TWILIO_AUTH_TOKEN = "token"
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    settings.TWILIO_BASE_URL = http_server.base_url
    return settings


def daily_schedule(team, users, name="Primary") -> Schedule:
    schedule = services.schedule_create(team=team, name=name, time_zone="Europe/London")
    services.layer_create(
        schedule=schedule,
        name="Daily",
        start=ROTATION_START,
        turn_unit=Layer.TurnUnit.DAYS,
        turn_count=1,
        handoff_time=time(9, 0),
        members=users,
        now=ROTATION_START,
    )
    return schedule


def reach_everywhere(user, http_server):
    """E-mail, SMS, a webhook — and a voice number that a reminder must never call."""
    for kind, address in [
        (ContactKind.EMAIL, user.email),
        (ContactKind.SMS, "+447700900001"),
        (ContactKind.WEBHOOK, http_server.url(f"/hooks/{user.username}")),
        (ContactKind.VOICE, "+447700900002"),
    ]:
        contact_method_create(user=user, kind=kind, address=address)


@pytest.fixture
def rota(db, clock, portal, http_server):
    """ann and ben take turns daily at 09:00 London on "Primary"; both can be reached on every
    channel. (The team has no members, so its default schedule stays empty.)"""
    ann = UserFactory(username="ann", time_zone="Europe/London")
    ben = UserFactory(username="ben", time_zone="America/New_York")
    for user in (ann, ben):
        reach_everywhere(user, http_server)
    team = TeamFactory(lead=None)
    schedule = daily_schedule(team, [ann, ben])
    return schedule, ann, ben


def run(clock, at: datetime) -> int:
    return services.shift_reminders_send(now=clock(at))


def hooks(http_server, username):
    return [r.json() for r in http_server.requests if r.path == f"/hooks/{username}"]


def sms(http_server):
    return [r.form() for r in http_server.requests if r.path.endswith("/Messages.json")]


def calls(http_server):
    return [r for r in http_server.requests if r.path.endswith("/Calls.json")]


def test_starts_in_an_hour_then_starts_now_once_each(rota, clock, http_server):
    schedule, ann, ben = rota
    url = f"{BASE_URL}/schedules/{schedule.pk}/"

    # 08:00: ann takes over from ben at 09:00. Only the incoming person hears about it.
    assert run(clock, london(7, 8)) == 1
    [email] = mail.outbox
    assert email.to == ["ann@example.com"]
    expected = "Your on-call shift on Primary starts in 60 minutes, at 09:00 Europe/London"
    assert email.subject == expected
    assert email.body.startswith(expected + ".")
    assert url in email.body
    [hook] = hooks(http_server, "ann")
    assert hook["event"] == "shift.starting_soon"
    assert hook["subject"] == expected
    assert hook["url"] == url
    assert hook["data"]["kind"] == "soon"
    assert hook["data"]["schedule"] == {"id": schedule.pk, "name": "Primary"}
    assert hook["data"]["shift_start"] == "2026-01-07T09:00:00+00:00"
    [text] = sms(http_server)
    assert text["To"] == "+447700900001"
    assert text["Body"] == f"{expected} {url}"
    assert calls(http_server) == []
    assert hooks(http_server, "ben") == []

    [reminder] = ShiftReminder.objects.all()
    assert (reminder.schedule, reminder.user, reminder.kind) == (schedule, ann, "soon")
    assert reminder.shift_start == london(7, 9)
    assert [(o["kind"], o["ok"]) for o in reminder.outcome] == [
        ("email", True),
        ("sms", True),
        ("webhook", True),
    ]
    methods = {m.kind: m.pk for m in ann.contact_methods.all()}
    assert [o["method"] for o in reminder.outcome] == [
        methods["email"],
        methods["sms"],
        methods["webhook"],
    ]

    # Beat runs every minute: nothing new until the shift starts.
    assert run(clock, london(7, 8, 1)) == 0
    assert run(clock, london(7, 8, 59)) == 0
    assert len(mail.outbox) == 1

    # 09:00: it starts now, until tomorrow's handoff.
    assert run(clock, london(7, 9)) == 1
    assert len(mail.outbox) == 2
    assert mail.outbox[1].to == ["ann@example.com"]
    assert mail.outbox[1].subject == (
        "Your on-call shift on Primary starts now, until Thu 08 Jan 09:00 Europe/London"
    )
    assert hooks(http_server, "ann")[1]["data"]["kind"] == "now"
    assert hooks(http_server, "ann")[1]["data"]["shift_end"] == "2026-01-08T09:00:00+00:00"
    assert run(clock, london(7, 9)) == 0
    assert run(clock, london(7, 9, 5)) == 0

    # 09:30: the shift that started at 09:00 just goes on.
    assert run(clock, london(7, 9, 30)) == 0
    assert run(clock, london(7, 12)) == 0
    assert len(mail.outbox) == 2
    assert calls(http_server) == []
    assert ShiftReminder.objects.filter(user=ann).count() == 2
    assert not ShiftReminder.objects.filter(user=ben).exists()


def test_a_late_run_still_says_starts_now_but_not_after_ten_minutes(rota, clock):
    schedule, ann, ben = rota

    # Beat was down from before 08:00 until 09:04: no "soon" any more, but "now".
    assert run(clock, london(7, 9, 4)) == 1
    assert [m.subject for m in mail.outbox] == [
        "Your on-call shift on Primary starts now, until Thu 08 Jan 09:00 Europe/London"
    ]
    # Tomorrow's run comes back only at 09:10: too late to say it starts now.
    assert run(clock, london(8, 9, 10)) == 0


def test_the_time_is_shown_in_the_persons_own_zone(rota, clock):
    schedule, ann, ben = rota  # ben lives in New York, five hours behind London in January

    assert run(clock, london(8, 8, 15)) == 1
    [email] = mail.outbox
    assert email.to == ["ben@example.com"]
    assert email.subject == (
        "Your on-call shift on Primary starts in 45 minutes, at 04:00 America/New_York"
    )
    assert run(clock, london(8, 9)) == 1
    assert mail.outbox[1].subject == (
        "Your on-call shift on Primary starts now, until Fri 09 Jan 04:00 America/New_York"
    )


def test_an_override_gets_its_own_reminders(rota, clock, http_server):
    schedule, ann, ben = rota
    cat = UserFactory(username="cat", time_zone="Europe/London")
    reach_everywhere(cat, http_server)
    services.override_create(
        schedule=schedule, user=cat, start=london(7, 14), end=london(7, 16), created_by=ann
    )
    run(clock, london(7, 9))  # ann's own reminders
    mail.outbox.clear()

    assert run(clock, london(7, 12, 59)) == 0
    assert run(clock, london(7, 13)) == 1
    assert [(m.to, m.subject) for m in mail.outbox] == [
        (
            ["cat@example.com"],
            "Your on-call shift on Primary starts in 60 minutes, at 14:00 Europe/London",
        )
    ]
    assert run(clock, london(7, 13, 30)) == 0
    assert run(clock, london(7, 14)) == 1
    assert mail.outbox[-1].to == ["cat@example.com"]
    assert mail.outbox[-1].subject == (
        "Your on-call shift on Primary starts now, until Wed 07 Jan 16:00 Europe/London"
    )
    assert run(clock, london(7, 14, 1)) == 0
    # When the override ends, ann is back on call: that is a shift starting for her.
    assert run(clock, london(7, 15)) == 1
    assert mail.outbox[-1].to == ["ann@example.com"]
    assert mail.outbox[-1].subject.endswith("starts in 60 minutes, at 16:00 Europe/London")
    assert calls(http_server) == []


def test_covering_your_own_shift_is_not_a_new_shift(rota, clock):
    """An override of the person already on call splits the final schedule into pieces, but
    they stay on call throughout: no reminder at the seams."""
    schedule, ann, ben = rota
    services.override_create(
        schedule=schedule, user=ann, start=london(7, 12), end=london(7, 13), created_by=ann
    )
    run(clock, london(7, 9))
    sent = len(mail.outbox)

    for at in (london(7, 11), london(7, 12), london(7, 12, 5), london(7, 13)):
        assert run(clock, at) == 0
    assert len(mail.outbox) == sent


def test_voice_only_people_get_no_call(db, clock, portal, http_server):
    dan = UserFactory(username="dan")
    contact_method_create(user=dan, kind=ContactKind.VOICE, address="+447700900003")
    daily_schedule(TeamFactory(lead=None), [dan, UserFactory(username="eve")])

    assert run(clock, london(7, 8)) == 1  # the reminder is recorded…
    [reminder] = ShiftReminder.objects.all()
    assert reminder.user == dan
    assert reminder.outcome == []  # …but no channel carried it
    assert calls(http_server) == []
    assert mail.outbox == []


def test_a_failed_channel_is_recorded_and_not_retried(rota, clock, http_server):
    schedule, ann, ben = rota
    http_server.respond(500, "down for maintenance")

    assert run(clock, london(7, 8)) == 1

    [reminder] = ShiftReminder.objects.all()
    outcome = {o["kind"]: o for o in reminder.outcome}
    assert outcome["email"]["ok"] is True
    assert outcome["webhook"] == {
        "method": outcome["webhook"]["method"],
        "kind": "webhook",
        "ok": False,
        "detail": "HTTP 500 down for maintenance",
    }
    assert outcome["sms"]["ok"] is False
    # A reminder is not worth a second e-mail: the next run leaves it be.
    assert run(clock, london(7, 8, 1)) == 0
    assert len(mail.outbox) == 1


def test_a_racing_worker_that_wrote_the_row_first_wins(rota, clock, monkeypatch):
    """Two runs both find the shift due; the unique row decides who sends."""
    schedule, ann, ben = rota
    original = selectors.shift_ends

    def another_worker_gets_there_first(starts, **kwargs):
        ShiftReminder.objects.create(
            schedule=schedule, user=ann, shift_start=london(7, 9), kind="soon"
        )
        return original(starts, **kwargs)

    monkeypatch.setattr(selectors, "shift_ends", another_worker_gets_there_first)

    assert run(clock, london(7, 8)) == 0
    assert mail.outbox == []
    assert ShiftReminder.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_row_is_committed_before_anything_is_sent(clock, portal, monkeypatch):
    ann, ben = UserFactory(username="ann"), UserFactory(username="ben")
    contact_method_create(user=ann, kind=ContactKind.EMAIL, address=ann.email)
    daily_schedule(TeamFactory(lead=None), [ann, ben])
    seen = []
    real_send = services.notify.send

    def send(method, message):
        seen.append(
            (
                connection.in_atomic_block,
                list(ShiftReminder.objects.values_list("user__username", "kind", "outcome")),
            )
        )
        return real_send(method, message)

    monkeypatch.setattr(services.notify, "send", send)

    assert run(clock, london(7, 8)) == 1

    assert seen == [(False, [("ann", "soon", [])])]
    assert ShiftReminder.objects.get().outcome[0]["ok"] is True


def test_the_celery_task_runs_the_service(rota, clock):
    clock(london(7, 8))

    assert tasks.send_shift_reminders() == 1
    assert tasks.send_shift_reminders() == 0
    assert [m.to for m in mail.outbox] == [["ann@example.com"]]


def test_beat_runs_the_task_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["shift-reminders"]
    assert (
        entry["task"] == tasks.send_shift_reminders.name == "schedules.tasks.send_shift_reminders"
    )
    assert entry["schedule"] == 60.0


def many_schedules(count: int, http_server) -> None:
    team = TeamFactory(lead=None)
    for i in range(count):
        users = [UserFactory(), UserFactory()]
        for user in users:
            contact_method_create(user=user, kind=ContactKind.EMAIL, address=user.email)
        daily_schedule(team, users, name=f"Schedule {i}")


def selects(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("count", [2, 10])
def test_finding_due_shifts_takes_a_fixed_number_of_queries(
    db, clock, portal, http_server, count, django_assert_max_num_queries
):
    many_schedules(count, http_server)

    # Nothing starts at 11:00: finding that out is the schedules and their rotations.
    with django_assert_max_num_queries(4):
        assert run(clock, london(7, 11)) == 0

    # At 08:00 one person per schedule is due: the reads stay the same in number, only the
    # writes (one reminder row and its outcome each) grow with the schedules.
    with CaptureQueriesContext(connection) as due:
        assert run(clock, london(7, 8)) == count
    assert len(selects(due.captured_queries)) == 7
    # And once they are all sent, a run only reads (and finds them done).
    with django_assert_max_num_queries(5):
        assert run(clock, london(7, 8, 1)) == 0
    assert len(mail.outbox) == count
    # "Starts now, until …" looks further ahead for the ends: three more reads, for all.
    with CaptureQueriesContext(connection) as started:
        assert run(clock, london(7, 9)) == count
    assert len(selects(started.captured_queries)) == 10
