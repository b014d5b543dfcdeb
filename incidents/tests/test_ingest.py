"""The ingest services: events stored as alerts, then triggering, attaching, acknowledging and
resolving incidents with PagerDuty's dedup rules; Alertmanager groups; heartbeat pings."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from incidents import events, ingest, workflow
from incidents.ingest import Outcome
from incidents.models import Alert, Channel, Heartbeat, Incident, Integration, Page, TimelineEntry
from incidents.services import (
    escalation_policy_create,
    escalation_step_add,
    integration_create,
    service_create,
    service_update,
)
from oncall import services as people
from oncall.celery import app as celery_app
from oncall.tests.factories import TeamFactory, UserFactory, contact_method

T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
KINDS = ("events_v2", "alertmanager", "webhook", "heartbeat")


class Paging:
    """A service whose one-step policy pages `user`, with an integration of each kind."""

    def __init__(self, *, name: str = "API"):
        self.user = UserFactory()
        method = contact_method(self.user)
        for urgency in ("high", "low"):
            people.notification_rule_create(
                user=self.user, contact_method=method, delay_minutes=0, urgency=urgency
            )
        self.team = TeamFactory(lead=self.user)
        self.policy = escalation_policy_create(team=self.team, name="Ingest")
        escalation_step_add(policy=self.policy, delay_minutes=10, users=[self.user])
        self.service = service_create(team=self.team, name=name, escalation_policy=self.policy)
        self.integrations = {
            kind: integration_create(service=self.service, name=f"{kind} in", kind=kind)
            for kind in KINDS
        }

    def __getitem__(self, kind: str) -> Integration:
        return self.integrations[kind]


@pytest.fixture(autouse=True)
def _no_sending(monkeypatch):
    """Work queued after commit runs inline (the root conftest's CELERY_TASK_ALWAYS_EAGER=1
    comes after pytest-django has read the settings, so it is set here), never on a broker.
    These tests count pages; sending the notifications is the outbox's business."""
    monkeypatch.setattr("incidents.tasks.queue_send_notifications", lambda: None)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def paging(db):
    return Paging()


def pd(action="trigger", dedup_key="disk-web-1", **payload):
    data = {"routing_key": "k", "event_action": action}
    if dedup_key is not None:
        data["dedup_key"] = dedup_key
    if action == "trigger":
        data["payload"] = {
            "summary": "Disk full on web-1",
            "source": "web-1",
            "severity": "critical",
            **payload,
        }
    return events.parse_events_v2(data)[1]


def run(integration, event, at=T0):
    return ingest.alert_ingest(integration=integration, event=event, received_at=at)


def advance(incident, at=T0):
    workflow.incident_advance(incident=incident.pk, now=at)


def pages(incident=None):
    qs = Page.objects.all() if incident is None else Page.objects.filter(incident_id=incident)
    return qs.count()


# --- PagerDuty dedup -----------------------------------------------------------------------------


def test_trigger_stores_the_alert_and_opens_an_incident(paging):
    result = run(paging["events_v2"], pd(component="disk", custom_details={"free": "0"}))
    assert result.outcome == Outcome.TRIGGERED
    incident = Incident.objects.get()
    assert result.incident_id == incident.pk and result.dedup_key == "disk-web-1"
    assert (incident.title, incident.status, incident.urgency) == (
        "Disk full on web-1",
        "triggered",
        "high",
    )
    assert incident.alert_count == 1
    assert incident.integration == paging["events_v2"]
    assert incident.details["component"] == "disk"
    assert incident.details["custom_details"] == {"free": "0"}
    alert = Alert.objects.get()
    assert (alert.incident, alert.outcome, alert.action) == (incident, "triggered", "trigger")
    assert (alert.summary, alert.severity, alert.source) == (
        "Disk full on web-1",
        "critical",
        "web-1",
    )
    assert alert.payload["payload"]["component"] == "disk"
    assert len(alert.fingerprint) == 64
    entry = TimelineEntry.objects.get(incident=incident, kind="triggered")
    assert entry.channel == Channel.INTEGRATION and entry.actor is None


def test_same_key_attaches_and_nobody_is_paged_again(paging):
    first = run(paging["events_v2"], pd())
    advance(Incident.objects.get())
    assert pages() == 1
    second = run(paging["events_v2"], pd(summary="Disk still full"), T0 + timedelta(minutes=1))
    assert second.outcome == Outcome.ATTACHED
    assert second.incident_id == first.incident_id
    incident = Incident.objects.get()
    assert incident.alert_count == 2
    advance(incident, T0 + timedelta(minutes=1))
    assert pages() == 1
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == 1
    assert Alert.objects.filter(incident=incident).count() == 2


def test_identical_resend_changes_nothing_within_the_window(paging):
    run(paging["events_v2"], pd())
    again = run(paging["events_v2"], pd(), T0 + timedelta(minutes=1))
    assert again.outcome == Outcome.DUPLICATE
    assert Alert.objects.count() == 1
    assert Incident.objects.get().alert_count == 1
    later = run(paging["events_v2"], pd(), T0 + ingest.DUPLICATE_WINDOW + timedelta(seconds=1))
    assert later.outcome == Outcome.ATTACHED
    assert Incident.objects.get().alert_count == 2


def test_acknowledge_then_resolve_by_event(paging):
    run(paging["events_v2"], pd())
    ack = run(paging["events_v2"], pd("acknowledge"), T0 + timedelta(minutes=2))
    assert ack.outcome == Outcome.ACKNOWLEDGED
    incident = Incident.objects.get()
    assert incident.status == "acknowledged"
    assert incident.acknowledged_at == T0 + timedelta(minutes=2)
    assert incident.acknowledged_by is None
    assert incident.alert_count == 1  # acknowledge / resolve events are not alerts
    again = run(
        paging["events_v2"],
        events.parse_events_v2(
            {
                "routing_key": "k",
                "event_action": "acknowledge",
                "dedup_key": "disk-web-1",
                "payload": {"summary": "again, with words"},
            }
        )[1],
        T0 + timedelta(minutes=3),
    )
    assert again.outcome == Outcome.IGNORED
    resolved = run(paging["events_v2"], pd("resolve"), T0 + timedelta(minutes=5))
    assert resolved.outcome == Outcome.RESOLVED
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at == T0 + timedelta(minutes=5)
    entry = TimelineEntry.objects.get(incident=incident, kind="resolved")
    assert entry.channel == Channel.INTEGRATION
    assert entry.message == f"Resolved by {paging['events_v2'].name}"


def test_after_resolve_a_trigger_with_the_key_opens_a_new_incident(paging):
    first = run(paging["events_v2"], pd())
    run(paging["events_v2"], pd("resolve"), T0 + timedelta(minutes=1))
    second = run(paging["events_v2"], pd(), T0 + timedelta(minutes=2))  # identical, still new
    assert second.outcome == Outcome.TRIGGERED
    assert second.incident_id != first.incident_id
    assert Incident.objects.filter(status="triggered").count() == 1


def test_acknowledge_or_resolve_for_an_unknown_or_closed_key_is_dropped(paging):
    for action in ("acknowledge", "resolve"):
        result = run(paging["events_v2"], pd(action, dedup_key="never-seen"))
        assert result.outcome == Outcome.DROPPED and result.incident_id is None
    assert Incident.objects.count() == 0
    assert list(Alert.objects.values_list("outcome", flat=True)) == ["dropped", "dropped"]
    # The same event again is a duplicate: not even stored.
    assert run(paging["events_v2"], pd("resolve", dedup_key="never-seen")).outcome == "duplicate"
    assert Alert.objects.count() == 2


def test_same_dedup_key_on_two_integrations_makes_two_incidents(paging):
    other = integration_create(service=paging.service, name="other", kind="events_v2")
    a = run(paging["events_v2"], pd())
    b = run(other, pd())
    assert a.incident_id != b.incident_id


def test_a_trigger_without_dedup_key_gets_one(paging):
    one = run(paging["events_v2"], pd(dedup_key=None))
    two = run(paging["events_v2"], pd(dedup_key=None))
    assert len(one.dedup_key) == 32 and one.dedup_key != two.dedup_key
    assert Incident.objects.get(pk=one.incident_id).dedup_key == one.dedup_key
    assert Incident.objects.count() == 2


@pytest.mark.parametrize(
    ("default", "severity", "expected"),
    [
        ("high", "critical", "high"),
        ("high", "error", "high"),
        ("high", "warning", "low"),
        ("high", "info", "low"),
        ("low", "critical", "low"),
    ],
)
def test_severity_maps_to_urgency(paging, default, severity, expected):
    paging.service.default_urgency = default
    assert ingest.event_urgency(service=paging.service, event=pd(severity=severity)) == expected


def test_no_severity_takes_the_services_default_urgency(paging):
    event = events.parse_webhook({"title": "Backup failed"})
    result = run(paging["webhook"], event)
    assert Incident.objects.get(pk=result.incident_id).urgency == paging.service.default_urgency


def test_maintenance_records_alerts_but_pages_nobody(paging):
    service_update(service=paging.service, status="maintenance")
    result = run(paging["events_v2"], pd())
    run(paging["events_v2"], pd(summary="more"), T0 + timedelta(minutes=1))
    incident = Incident.objects.get(pk=result.incident_id)
    advance(incident, T0 + timedelta(hours=1))
    assert pages() == 0
    assert incident.alerts.count() == 2
    assert TimelineEntry.objects.filter(incident=incident, kind="warning").exists()


def test_losing_a_race_to_open_the_incident_attaches_to_it(paging, monkeypatch):
    """The other request's incident appears between our read and our insert: the unique
    constraint refuses ours and the event attaches instead."""
    first = run(paging["events_v2"], pd())
    real = ingest._open_incident
    calls = []

    def stale_then_real(integration, dedup_key):
        calls.append(dedup_key)
        return None if len(calls) == 1 else real(integration, dedup_key)

    monkeypatch.setattr(ingest, "_open_incident", stale_then_real)
    result = run(paging["events_v2"], pd(summary="second"), T0 + timedelta(seconds=1))
    assert result.outcome == Outcome.ATTACHED and result.incident_id == first.incident_id
    assert Incident.objects.count() == 1
    assert Incident.objects.get().alert_count == 2
    assert Alert.objects.count() == 2


# --- Alertmanager --------------------------------------------------------------------------------


def am_alert(instance, status="firing", starts="2026-11-24T02:59:00Z"):
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "instance": instance, "severity": "warning"},
        "annotations": {"summary": f"slow {instance}"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"fp-{instance}",
    }


def am(*alerts, status="firing", external_url="http://am-1:9093"):
    return events.parse_alertmanager(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighLatency"}',
            "status": status,
            "receiver": "oncall",
            "externalURL": external_url,
            "groupLabels": {"alertname": "HighLatency"},
            "commonLabels": {"alertname": "HighLatency"},
            "commonAnnotations": {"summary": "p99 latency over 1 s"},
            "alerts": list(alerts),
        }
    )


def run_all(integration, batch, at=T0):
    return [run(integration, event, at) for event in batch]


def state():
    incident = Incident.objects.get()
    return (
        incident.status,
        incident.alert_count,
        Alert.objects.count(),
        TimelineEntry.objects.count(),
        Page.objects.count(),
    )


def test_alertmanager_group_is_one_incident_resolved_when_every_alert_is(paging):
    integration = paging["alertmanager"]
    results = run_all(integration, am(am_alert("web-1"), am_alert("web-2")))
    assert [r.outcome for r in results] == ["triggered", "attached"]
    incident = Incident.objects.get()
    assert incident.title == "HighLatency: p99 latency over 1 s"
    assert incident.urgency == "low"  # severity warning
    assert incident.alert_count == 2
    assert set(incident.details["alertmanager"]["firing"]) == {"fp-web-1", "fp-web-2"}
    assert Alert.objects.filter(incident=incident).count() == 2  # one row per alert

    later = T0 + timedelta(minutes=5)
    results = run_all(integration, am(am_alert("web-1", "resolved"), am_alert("web-2")), later)
    assert [r.outcome for r in results] == ["duplicate", "alert_resolved"]
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert list(incident.details["alertmanager"]["firing"]) == ["fp-web-2"]

    end = T0 + timedelta(minutes=10)
    results = run_all(
        integration,
        am(am_alert("web-1", "resolved"), am_alert("web-2", "resolved"), status="resolved"),
        end,
    )
    assert [r.outcome for r in results] == ["duplicate", "resolved"]
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at == end


def test_alertmanager_ha_pair_duplicates_change_nothing(paging):
    integration = paging["alertmanager"]
    run_all(integration, am(am_alert("web-1"), am_alert("web-2")))
    advance(Incident.objects.get())
    before = state()
    results = run_all(
        integration,
        am(am_alert("web-1"), am_alert("web-2"), external_url="http://am-2:9093"),
        T0 + timedelta(seconds=3),
    )
    assert {r.outcome for r in results} == {"duplicate"}
    assert state() == before
    # A repeat notification hours later (same alerts, same startsAt) changes nothing either.
    results = run_all(
        integration, am(am_alert("web-1"), am_alert("web-2")), T0 + timedelta(hours=4)
    )
    assert {r.outcome for r in results} == {"duplicate"}
    assert state() == before


def test_alertmanager_late_duplicate_after_resolve_opens_nothing(paging):
    integration = paging["alertmanager"]
    run_all(integration, am(am_alert("web-1")))
    run_all(
        integration, am(am_alert("web-1", "resolved"), status="resolved"), T0 + timedelta(minutes=1)
    )
    late = run_all(
        integration,
        am(am_alert("web-1"), external_url="http://am-2:9093"),
        T0 + timedelta(minutes=2),
    )
    assert [r.outcome for r in late] == ["duplicate"]
    late = run_all(
        integration,
        am(am_alert("web-1", "resolved"), status="resolved", external_url="http://am-2:9093"),
        T0 + timedelta(minutes=2),
    )
    assert [r.outcome for r in late] == ["duplicate"]
    assert Incident.objects.count() == 1
    # Firing again (a new startsAt) is a new incident.
    again = run_all(
        integration,
        am(am_alert("web-1", starts="2026-11-24T03:30:00Z")),
        T0 + timedelta(minutes=31),
    )
    assert [r.outcome for r in again] == ["triggered"]
    assert Incident.objects.filter(status="triggered").count() == 1


def test_alertmanager_resolved_group_resolves_even_alerts_not_listed(paging):
    """A truncated notification may leave alerts out; "resolved" is about the whole group."""
    integration = paging["alertmanager"]
    run_all(integration, am(am_alert("web-1"), am_alert("web-2")))
    results = run_all(
        integration, am(am_alert("web-1", "resolved"), status="resolved"), T0 + timedelta(minutes=1)
    )
    assert [r.outcome for r in results] == ["resolved"]
    assert Incident.objects.get().status == "resolved"


def test_alertmanager_resolved_group_whose_last_alert_is_a_repeat_still_resolves(paging):
    integration = paging["alertmanager"]
    run_all(integration, am(am_alert("web-1"), am_alert("web-2")))
    run_all(
        integration, am(am_alert("web-1", "resolved"), am_alert("web-2")), T0 + timedelta(minutes=1)
    )
    # Truncated: only the already-resolved web-1 is listed, but the group says "resolved".
    results = run_all(
        integration, am(am_alert("web-1", "resolved"), status="resolved"), T0 + timedelta(minutes=2)
    )
    assert [r.outcome for r in results] == ["resolved"]
    assert Incident.objects.get().status == "resolved"


def test_alertmanager_resolved_alert_not_firing_here_is_ignored(paging):
    integration = paging["alertmanager"]
    run_all(integration, am(am_alert("web-1")))
    results = run_all(integration, am(am_alert("web-9", "resolved")), T0 + timedelta(minutes=1))
    assert [r.outcome for r in results] == ["ignored"]
    assert Incident.objects.get().status == "triggered"


# --- heartbeats ----------------------------------------------------------------------------------


def test_heartbeat_ping_moves_the_deadline_on(paging):
    integration = paging["heartbeat"]
    ping = ingest.heartbeat_ping(integration=integration, at=T0)
    heartbeat = Heartbeat.objects.get(integration=integration)
    assert heartbeat.last_ping_at == T0
    assert heartbeat.expected_by == T0 + timedelta(minutes=heartbeat.interval_minutes)
    assert ping.resolved == []
    ingest.heartbeat_ping(integration=integration, at=T0 + timedelta(minutes=3))
    heartbeat.refresh_from_db()
    assert heartbeat.expected_by == T0 + timedelta(minutes=3 + heartbeat.interval_minutes)


def test_heartbeat_ping_resolves_the_missed_heartbeat_incident(paging):
    integration = paging["heartbeat"]
    missed = workflow.incident_trigger(
        service=paging.service,
        title="Missed heartbeat",
        at=T0,
        integration=integration,
        dedup_key=ingest.heartbeat_dedup_key(integration),
    )
    ping = ingest.heartbeat_ping(integration=integration, at=T0 + timedelta(minutes=7))
    assert ping.resolved == [missed.pk]
    missed.refresh_from_db()
    assert missed.status == "resolved" and missed.resolved_at == T0 + timedelta(minutes=7)
    assert missed.alerts.get().outcome == "resolved"
    assert missed.timeline.get(kind="resolved").channel == Channel.INTEGRATION
    assert (
        ingest.heartbeat_ping(integration=integration, at=T0 + timedelta(minutes=8)).resolved == []
    )


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_triggers_with_one_dedup_key_make_one_incident(postgres_required, monkeypatch):
    """Both requests read "no open incident", then both insert: PostgreSQL's unique index makes
    the second wait for the first, refuse it, and the second attaches to the first's incident."""
    paging = Paging()
    integration = paging["events_v2"]
    threads_count = 4
    barrier = threading.Barrier(threads_count, timeout=10)
    real = ingest._open_incident
    first_read = threading.local()

    def read_then_wait(integration, dedup_key):
        found = real(integration, dedup_key)
        if not getattr(first_read, "done", False):
            first_read.done = True
            barrier.wait()  # everybody has read "nothing open" before anybody inserts
        return found

    monkeypatch.setattr(ingest, "_open_incident", read_then_wait)
    results, errors = [], []

    def worker(n):
        try:
            results.append(run(integration, pd(summary=f"Disk full #{n}")))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert sorted(r.outcome for r in results) == ["attached"] * (threads_count - 1) + ["triggered"]
    incident = Incident.objects.get()
    assert incident.alert_count == threads_count
    assert {r.incident_id for r in results} == {incident.pk}
    assert Alert.objects.filter(incident=incident).count() == threads_count


# --- the one-statement attach (PostgreSQL) -------------------------------------------------------


def fast(integration, event, at=T0, key=None, kind="events_v2"):
    return ingest.alert_attach_fast(
        key=key or integration.key, kind=kind, event=event, received_at=at
    )


def test_fast_attach_writes_what_the_full_path_writes(paging, postgres_required):
    """The same attach on two incidents, one through each path: the same rows."""
    integration = paging["events_v2"]
    later = T0 + timedelta(minutes=1)
    opened = {key: run(integration, pd(dedup_key=key)).incident_id for key in ("fast", "full")}
    events_ = {key: pd(dedup_key=key, summary="Still full", custom_details=[1]) for key in opened}
    result = fast(integration, events_["fast"], later)
    assert run(integration, events_["full"], later).outcome == Outcome.ATTACHED
    assert result.outcome == Outcome.ATTACHED and result.incident_id == opened["fast"]

    rows = {}
    for key, incident_id in opened.items():
        incident = Incident.objects.get(pk=incident_id)
        rows[key] = (incident, incident.alerts.latest("id"), incident.timeline.get(kind="alert"))
    (incident, alert, entry), (_, full_alert, full_entry) = rows["fast"], rows["full"]
    assert result.alert_id == alert.pk
    assert incident.alert_count == 2 and incident.updated_at > T0
    for name in ("integration_id", "received_at", "action", "summary", "severity", "source"):
        assert getattr(alert, name) == getattr(full_alert, name), name
    assert (alert.dedup_key, alert.outcome) == ("fast", "attached")
    assert alert.fingerprint == events_["fast"].fingerprint
    assert alert.payload == {**full_alert.payload, "dedup_key": "fast"}
    for name in ("at", "actor_id", "channel", "message"):
        assert getattr(entry, name) == getattr(full_entry, name), name
    assert entry.message == f"Alert from {integration.name}: Still full"
    assert entry.data == {"alert": alert.pk, "integration": integration.pk}


def test_fast_attach_drops_an_identical_resend_within_the_window(paging, postgres_required):
    integration = paging["events_v2"]
    first = run(integration, pd())
    again = fast(integration, pd(), T0 + timedelta(minutes=1))
    assert again == ingest.IngestResult(Outcome.DUPLICATE, "disk-web-1", first.incident_id)
    assert (Alert.objects.count(), Incident.objects.get().alert_count) == (1, 1)
    later = fast(integration, pd(), T0 + ingest.DUPLICATE_WINDOW + timedelta(seconds=1))
    assert later.outcome == Outcome.ATTACHED
    assert (Alert.objects.count(), Incident.objects.get().alert_count) == (2, 2)


def test_fast_attach_leaves_every_other_case_to_the_full_path(paging, postgres_required):
    """None means "not decided here": the caller takes the full path, which answers 404,
    opens an incident, acknowledges or resolves."""
    integration = paging["events_v2"]
    assert fast(integration, pd()) is None  # nothing open yet
    run(integration, pd())
    later = T0 + timedelta(minutes=1)
    assert fast(integration, pd("acknowledge"), later) is None
    assert fast(integration, pd(dedup_key=None), later) is None
    assert fast(integration, pd(summary="x"), later, key="f" * 32) is None
    assert fast(integration, pd(summary="x"), later, kind="webhook") is None
    Integration.objects.filter(pk=integration.pk).update(enabled=False)
    assert fast(integration, pd(summary="x"), later) is None
    Integration.objects.filter(pk=integration.pk).update(enabled=True)
    service_update(service=paging.service, status="disabled")
    assert fast(integration, pd(summary="x"), later) is None
    service_update(service=paging.service, status="active")
    assert fast(integration, pd(summary="x"), later).outcome == Outcome.ATTACHED
    run(integration, pd("resolve"), later)
    assert fast(integration, pd(summary="y"), later) is None  # resolved: a new one opens
    assert Alert.objects.filter(outcome=Outcome.ATTACHED).count() == 1


def test_fast_attach_stands_aside_on_other_databases(paging):
    run(paging["events_v2"], pd())
    result = fast(paging["events_v2"], pd(summary="again"), T0 + timedelta(minutes=1))
    if connection.vendor == "postgresql":
        assert result.outcome == Outcome.ATTACHED
    else:
        assert result is None
        assert Incident.objects.get().alert_count == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_attaches_count_every_alert(postgres_required):
    """Four requests at a time on one open incident: every alert is stored, counted and on the
    timeline, whichever path each took."""
    from incidents.ingest_views import ingest_one

    paging = Paging()
    integration = paging["events_v2"]
    run(integration, pd())
    per_thread, threads_count = 15, 4
    outcomes, errors = [], []

    def worker(n):
        try:
            for i in range(per_thread):
                event = pd(summary=f"Disk full #{n}.{i}")
                outcomes.append(ingest_one(integration.key, "events_v2", event, "").outcome)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    total = per_thread * threads_count
    assert outcomes == [Outcome.ATTACHED] * total
    incident = Incident.objects.get()
    assert incident.alert_count == total + 1
    assert Alert.objects.filter(incident=incident).count() == total + 1
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == total


def wait_for_a_lock_wait(deadline_seconds: float = 10) -> None:
    """Until another session of this database waits for a row lock (or fail at the deadline)."""
    deadline = time.monotonic() + deadline_seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.005)
    pytest.fail("no session waited for the lock")


@pytest.mark.django_db(transaction=True)
def test_an_identical_event_racing_another_is_stored_once(postgres_required):
    """The same event twice at once (an HA pair of senders): the second waits for the first's
    row lock, finds the incident changed since its snapshot, takes the full path and sees the
    first alert there — one alert, one count, never two."""
    from incidents.ingest_views import ingest_one

    paging = Paging()
    integration = paging["events_v2"]
    run(integration, pd())
    event = pd(summary="Disk full again")
    holding, release = threading.Event(), threading.Event()
    results, errors = {}, []

    def first():
        try:
            with transaction.atomic():
                results["first"] = ingest_one(integration.key, "events_v2", event, "")
                holding.set()
                assert release.wait(10)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            holding.set()
            connection.close()

    def second():
        try:
            results["second"] = ingest_one(integration.key, "events_v2", event, "")
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    one = threading.Thread(target=first)
    one.start()
    assert holding.wait(10)
    two = threading.Thread(target=second)
    two.start()
    wait_for_a_lock_wait()
    release.set()
    one.join(timeout=20)
    two.join(timeout=20)
    assert not errors, errors
    assert results["first"].outcome == Outcome.ATTACHED
    assert results["second"].outcome == Outcome.DUPLICATE
    incident = Incident.objects.get()
    assert incident.alert_count == 2
    assert Alert.objects.filter(fingerprint=event.fingerprint).count() == 1
