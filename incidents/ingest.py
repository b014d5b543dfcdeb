"""Alerts in: each event is stored as an Alert, then triggers, attaches to, acknowledges or
resolves an incident through `incidents.workflow` — all in one transaction.

Dedup follows PagerDuty: an event with the dedup key of an open incident on the same integration
attaches to it (its alert count rises, nobody is paged again); once that incident is resolved a
trigger with the key opens a new one; acknowledge and resolve events for an unknown or closed key
are accepted and dropped. Re-sending an identical event (same `Event.fingerprint`) for an open
incident within `DUPLICATE_WINDOW` changes nothing, so the duplicates an Alertmanager HA pair
sends are harmless. Alertmanager groups become one incident per groupKey, resolved once every
alert seen firing in it has resolved (the fingerprints are kept in `incident.details`).

The common case under load — one more alert for an incident that is already open — has a fast
path on PostgreSQL, `alert_attach_fast`: one SQL statement instead of a transaction of seven
(see its docstring). Everything else, and every case it cannot decide, goes through
`alert_ingest`.

Heartbeat pings are here too: `heartbeat_ping` moves the heartbeat's deadline on and resolves
the "missed heartbeat" incident that `incidents.monitors` opens (dedup key "heartbeat:<id>").
"""

import functools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from oncall.models import Urgency

from . import workflow
from .events import ACKNOWLEDGE, RESOLVE, TRIGGER, Event
from .models import Alert, Channel, Heartbeat, Incident, Integration, Service, TimelineEntry

# An identical event for the same open incident within this window is a re-send: ignored.
DUPLICATE_WINDOW = timedelta(minutes=10)


class Outcome:
    """What an event did; stored on its Alert row (`Alert.outcome`)."""

    TRIGGERED = "triggered"  # opened a new incident
    ATTACHED = "attached"  # a trigger for an open incident: alert count +1, nobody paged again
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ALERT_RESOLVED = "alert_resolved"  # one alert of an Alertmanager group; others still fire
    IGNORED = "ignored"  # nothing to do (e.g. acknowledge for an acknowledged incident)
    DROPPED = "dropped"  # acknowledge / resolve for an unknown or closed dedup key
    DUPLICATE = "duplicate"  # the same event again: no Alert row, nothing changed


@dataclass(frozen=True)
class IngestResult:
    outcome: str
    dedup_key: str
    incident_id: int | None = None
    alert_id: int | None = None


def heartbeat_dedup_key(integration: Integration) -> str:
    """The dedup key of a heartbeat integration's "missed heartbeat" incident."""
    return f"heartbeat:{integration.pk}"


def event_urgency(*, service: Service, event: Event) -> str:
    """critical / error → high, warning / info → low; no severity → the service's default.
    A service whose default urgency is low stays low whatever the severity."""
    if service.default_urgency == Urgency.LOW or event.high_urgency is None:
        return service.default_urgency
    return Urgency.HIGH if event.high_urgency else Urgency.LOW


# --- alerts ------------------------------------------------------------------------------------


def _open_incident(integration: Integration, dedup_key: str) -> Incident | None:
    return (
        Incident.objects.select_for_update()
        .filter(integration=integration, dedup_key=dedup_key, status__in=Incident.OPEN_STATUSES)
        .first()
    )


def _seen_recently(
    integration: Integration, dedup_key: str, fingerprint: str, at: datetime
) -> bool:
    return Alert.objects.filter(
        integration=integration,
        dedup_key=dedup_key,
        fingerprint=fingerprint,
        received_at__gte=at - DUPLICATE_WINDOW,
        received_at__lte=at,
    ).exists()


def _alert_fields(event: Event) -> dict:
    """What an Alert row keeps of its event, cut to the columns' sizes (both write paths)."""
    return {
        "action": event.action,
        "summary": event.summary[:1024],
        "severity": event.severity[:16],
        "source": event.source[:255],
        "fingerprint": event.fingerprint,
        "payload": event.raw,
    }


def _alert_message(integration_name: str, event: Event) -> str:
    """The timeline line of an alert attached to an open incident."""
    return f"Alert from {integration_name}: {event.summary or '(no summary)'}"


def _store(
    *,
    integration: Integration,
    event: Event,
    dedup_key: str,
    received_at: datetime,
    outcome: str,
    incident: Incident | None,
) -> Alert:
    return Alert.objects.create(
        incident=incident,
        integration=integration,
        received_at=received_at,
        dedup_key=dedup_key,
        outcome=outcome,
        **_alert_fields(event),
    )


@transaction.atomic
def alert_ingest(*, integration: Integration, event: Event, received_at: datetime) -> IngestResult:
    """Store one event and act on it; safe to call concurrently for the same dedup key (one
    open incident per key and integration is a database constraint: the loser of a race
    attaches to the winner's incident)."""
    dedup_key = event.dedup_key or uuid.uuid4().hex  # only a trigger may come without one
    incident = _open_incident(integration, dedup_key)
    if incident is None:
        if event.action != TRIGGER or event.alert_key:
            # Nothing open: an acknowledge / resolve is dropped; an Alertmanager alert that
            # fired here already (same fingerprint and startsAt) is a late duplicate.
            if _seen_recently(integration, dedup_key, event.fingerprint, received_at):
                return IngestResult(Outcome.DUPLICATE, dedup_key)
        if event.action != TRIGGER:
            alert = _store(
                integration=integration,
                event=event,
                dedup_key=dedup_key,
                received_at=received_at,
                outcome=Outcome.DROPPED,
                incident=None,
            )
            return IngestResult(Outcome.DROPPED, dedup_key, alert_id=alert.pk)
        alert = _store(
            integration=integration,
            event=event,
            dedup_key=dedup_key,
            received_at=received_at,
            outcome=Outcome.TRIGGERED,
            incident=None,
        )
        try:
            with transaction.atomic():
                incident = _trigger(integration, event, dedup_key, received_at)
        except IntegrityError:
            # Another request opened the incident for this key between our read and our
            # insert: attach to it instead.
            incident = _open_incident(integration, dedup_key)
            if incident is None:
                raise
            alert.delete()
        else:
            Alert.objects.filter(pk=alert.pk).update(incident=incident)
            return IngestResult(Outcome.TRIGGERED, dedup_key, incident.pk, alert.pk)
    return _to_open_incident(integration, event, dedup_key, received_at, incident)


def _trigger(integration: Integration, event: Event, dedup_key: str, at: datetime) -> Incident:
    # Read afresh: whether the service is in maintenance decides whether anybody is paged.
    service = Service.objects.select_related("escalation_policy").get(pk=integration.service_id)
    details = dict(event.details)
    if event.alert_key:
        details["alertmanager"] = {
            **details.get("alertmanager", {}),
            "firing": {event.alert_key: event.alert_started},
        }
    incident = workflow.incident_trigger(
        service=service,
        title=event.title or event.summary,
        at=at,
        integration=integration,
        dedup_key=dedup_key,
        urgency=event_urgency(service=service, event=event),
        details=details,
        channel=Channel.INTEGRATION,
    )
    Incident.objects.filter(pk=incident.pk).update(alert_count=1)
    incident.alert_count = 1
    return incident


def _to_open_incident(
    integration: Integration, event: Event, dedup_key: str, at: datetime, incident: Incident
) -> IngestResult:
    """An event for an open incident (locked by the caller)."""
    recent = Alert.objects.filter(
        incident=incident, fingerprint=event.fingerprint, received_at__gte=at - DUPLICATE_WINDOW
    )
    # (A whole group resolving is never a duplicate: its last alert may be a repeat.)
    if not event.group_resolved and recent.exists():
        return IngestResult(Outcome.DUPLICATE, dedup_key, incident.pk)

    def store(outcome: str) -> Alert:
        return _store(
            integration=integration,
            event=event,
            dedup_key=dedup_key,
            received_at=at,
            outcome=outcome,
            incident=incident,
        )

    if event.alert_key:
        return _alertmanager_alert(integration, event, dedup_key, at, incident, store)
    if event.action == TRIGGER:
        alert = store(Outcome.ATTACHED)
        _attach(integration, event, at, incident, alert)
        return IngestResult(Outcome.ATTACHED, dedup_key, incident.pk, alert.pk)
    if event.action == ACKNOWLEDGE:
        if incident.status != Incident.Status.TRIGGERED:
            alert = store(Outcome.IGNORED)
            return IngestResult(Outcome.IGNORED, dedup_key, incident.pk, alert.pk)
        alert = store(Outcome.ACKNOWLEDGED)
        workflow.incident_acknowledge(incident=incident, by=None, via=Channel.INTEGRATION, at=at)
        return IngestResult(Outcome.ACKNOWLEDGED, dedup_key, incident.pk, alert.pk)
    assert event.action == RESOLVE
    alert = store(Outcome.RESOLVED)
    _resolve(integration, event, at, incident)
    return IngestResult(Outcome.RESOLVED, dedup_key, incident.pk, alert.pk)


def _attach(
    integration: Integration,
    event: Event,
    at: datetime,
    incident: Incident,
    alert: Alert,
    details: dict | None = None,
) -> None:
    changes = {"alert_count": F("alert_count") + 1, "updated_at": timezone.now()}
    if details is not None:
        changes["details"] = details
    Incident.objects.filter(pk=incident.pk).update(**changes)
    workflow.timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ALERT,
        at=at,
        channel=Channel.INTEGRATION,
        message=_alert_message(integration.name, event),
        data={"alert": alert.pk, "integration": integration.pk},
    )


def _resolve(integration: Integration, event: Event, at: datetime, incident: Incident) -> None:
    note = f"Resolved by {integration.name}"
    if event.summary:
        note += f": {event.summary}"
    workflow.incident_resolve(
        incident=incident, by=None, via=Channel.INTEGRATION, at=at, note=note[:10_000]
    )


def _alertmanager_alert(integration, event, dedup_key, at, incident, store) -> IngestResult:
    """One alert of an Alertmanager group whose incident is open: a new firing alert attaches;
    a resolved one leaves the firing set, and the incident resolves once that set is empty
    (or the notification says the whole group has resolved)."""
    state = dict(incident.details.get("alertmanager") or {})
    firing = dict(state.get("firing") or {})
    if event.action == TRIGGER:
        if firing.get(event.alert_key) == event.alert_started:
            # Still firing since the same moment: a repeat notification, nothing new.
            return IngestResult(Outcome.DUPLICATE, dedup_key, incident.pk)
        firing[event.alert_key] = event.alert_started
        details = {**incident.details, "alertmanager": {**state, "firing": firing}}
        alert = store(Outcome.ATTACHED)
        _attach(integration, event, at, incident, alert, details)
        return IngestResult(Outcome.ATTACHED, dedup_key, incident.pk, alert.pk)

    was_firing = firing.pop(event.alert_key, None) is not None
    if event.group_resolved:
        firing = {}
    if not was_firing and firing:
        alert = store(Outcome.IGNORED)  # not one of this incident's firing alerts
        return IngestResult(Outcome.IGNORED, dedup_key, incident.pk, alert.pk)
    details = {**incident.details, "alertmanager": {**state, "firing": firing}}
    Incident.objects.filter(pk=incident.pk).update(details=details, updated_at=timezone.now())
    if not firing:
        alert = store(Outcome.RESOLVED)
        _resolve(integration, event, at, incident)
        return IngestResult(Outcome.RESOLVED, dedup_key, incident.pk, alert.pk)
    alert = store(Outcome.ALERT_RESOLVED)
    workflow.timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ALERT,
        at=at,
        channel=Channel.INTEGRATION,
        message=f"Alert resolved: {event.summary}; {len(firing)} still firing",
        data={"alert": alert.pk, "integration": integration.pk, "firing": len(firing)},
    )
    return IngestResult(Outcome.ALERT_RESOLVED, dedup_key, incident.pk, alert.pk)


# --- the fast path: one more alert for an open incident (PostgreSQL) --------------------------

# One statement, so one round trip in autocommit and atomic by itself. In words: the enabled
# integration with this key and kind on a service that is not disabled; its open incident with
# this dedup key, as this statement's snapshot sees it (with the row's version, xmin); whether
# an identical alert came within DUPLICATE_WINDOW; then — only if it did not, and only if the
# incident row is still the version the snapshot saw — alert_count + 1, the Alert row and the
# timeline entry. The UPDATE waits for any transaction holding the row and re-checks its WHERE
# on the newest version, so the version test fails if anybody changed the incident meanwhile.
_ATTACH_SQL = """
WITH integration AS MATERIALIZED (
    SELECT i.id, i.name
    FROM incidents_integration i JOIN incidents_service s ON s.id = i.service_id
    WHERE i.key = %(key)s AND i.kind = %(kind)s AND i.enabled AND s.status <> 'disabled'
),
seen AS MATERIALIZED (
    SELECT n.id, n.xmin AS version
    FROM incidents_incident n JOIN integration ON n.integration_id = integration.id
    WHERE n.dedup_key = %(dedup_key)s AND n.status IN ('triggered', 'acknowledged')
),
duplicate AS MATERIALIZED (
    SELECT EXISTS (
        SELECT 1 FROM incidents_alert a JOIN seen ON a.incident_id = seen.id
        WHERE a.fingerprint = %(fingerprint)s AND a.received_at >= %(window_start)s
    ) AS found
),
bumped AS (
    UPDATE incidents_incident n
    SET alert_count = n.alert_count + 1, updated_at = %(now)s
    FROM seen
    WHERE n.id = seen.id AND n.xmin = seen.version AND NOT (SELECT found FROM duplicate)
    RETURNING n.id
),
alert AS (
    INSERT INTO incidents_alert (incident_id, integration_id, received_at, action, dedup_key,
        summary, severity, source, fingerprint, payload, outcome)
    SELECT bumped.id, integration.id, %(received_at)s, %(action)s, %(dedup_key)s,
        %(summary)s, %(severity)s, %(source)s, %(fingerprint)s, %(payload)s::jsonb, %(outcome)s
    FROM bumped CROSS JOIN integration
    RETURNING id, incident_id
),
entry AS (
    INSERT INTO incidents_timelineentry (incident_id, at, kind, actor_id, channel, message, data)
    SELECT alert.incident_id, %(received_at)s, %(kind_alert)s, NULL, %(channel)s,
        'Alert from ' || integration.name || ': ' || %(summary_text)s,
        jsonb_build_object('alert', alert.id, 'integration', integration.id)
    FROM alert CROSS JOIN integration
)
SELECT (SELECT id FROM integration), (SELECT id FROM seen), (SELECT found FROM duplicate),
    (SELECT id FROM alert)
"""


# psycopg counts a query's runs towards preparing it only when the connection's threshold is
# not None; Django sets None (for connection poolers). This value lets the attach statement,
# which asks to be prepared, be prepared, and no other statement ever reaches it.
_ONLY_WHEN_ASKED = 2**31 - 1


@functools.cache
def _preparing_cursor_class() -> type:
    """psycopg's server-binding cursor, preparing every statement unless told not to (psycopg
    is imported here: it is only needed on PostgreSQL)."""
    import psycopg

    class PreparingCursor(psycopg.Cursor):
        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=prepare is not False, binary=binary)

    return PreparingCursor


def _prepared_statement_cursor():
    """A Django cursor (errors translated, queries logged when Django logs them) over a psycopg
    cursor that binds parameters on the server and prepares what it runs: PostgreSQL then
    plans the attach statement once per connection instead of once per alert. Django's own
    cursors bind on the client, which cannot prepare, and are not affected.

    A deployment that sets `prepare_threshold` in the database OPTIONS decides: None (e.g.
    behind a transaction-pooling PgBouncer older than 1.21) turns preparing off here too."""
    with connection.wrap_database_errors:
        connection.ensure_connection()
        raw = connection.connection
        if "prepare_threshold" not in connection.settings_dict.get("OPTIONS", {}):
            if raw.prepare_threshold is None:
                raw.prepare_threshold = _ONLY_WHEN_ASKED
        cursor = _preparing_cursor_class()(raw)
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


def alert_attach_fast(
    *, key: str, kind: str, event: Event, received_at: datetime
) -> IngestResult | None:
    """A trigger for an incident that is open already — most of what a flapping or chatty
    monitor sends — in one SQL statement: the integration looked up by its key, the duplicate
    check, the alert stored, the alert count raised and the timeline entry written, all or
    nothing. Returns None whenever it cannot decide alone, and the caller then takes the full
    path (`find_integration` and `alert_ingest`): not PostgreSQL, not a plain trigger with a
    dedup key, no valid integration for the key (→ 404 there), no open incident (→ a new one),
    or the incident changed by someone else between this statement's snapshot and its update.

    That last test is what makes one statement safe: the duplicate check reads the snapshot,
    and the snapshot is current for this incident exactly when the row is still the version it
    saw, because every write that adds a trigger's alert to an incident also updates the
    incident row (a new incident, or alert_count + 1) in the same transaction. Keep it so.
    Nothing is queued after commit: an attached alert pages nobody."""
    if (
        connection.vendor != "postgresql"
        or event.action != TRIGGER
        or event.alert_key
        or not event.dedup_key
    ):
        return None
    fields = _alert_fields(event)
    params = {
        **fields,
        "payload": json.dumps(fields["payload"]),
        "key": key,
        "kind": kind,
        "dedup_key": event.dedup_key,
        "window_start": received_at - DUPLICATE_WINDOW,
        "now": timezone.now(),
        "received_at": received_at,
        "outcome": Outcome.ATTACHED,
        "kind_alert": TimelineEntry.Kind.ALERT.value,
        "channel": Channel.INTEGRATION.value,
        "summary_text": event.summary or "(no summary)",
    }
    with _prepared_statement_cursor() as cursor:
        cursor.execute(_ATTACH_SQL, params)
        integration_id, incident_id, duplicate, alert_id = cursor.fetchone()
    if integration_id is None or incident_id is None:
        return None
    if alert_id is not None:
        return IngestResult(Outcome.ATTACHED, event.dedup_key, incident_id, alert_id)
    if duplicate:
        # Safe from any snapshot: alerts are never taken back, so a duplicate seen is one.
        return IngestResult(Outcome.DUPLICATE, event.dedup_key, incident_id)
    return None  # the incident changed under us: the full path, with its row lock


# --- heartbeats --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeartbeatPing:
    heartbeat: Heartbeat
    resolved: list[int] = field(default_factory=list)  # ids of the incidents resolved


@transaction.atomic
def heartbeat_ping(*, integration: Integration, at: datetime) -> HeartbeatPing:
    """A heartbeat arrived: the next one is expected `interval_minutes` from now, and the open
    "missed heartbeat" incident of this integration, if any, is resolved."""
    heartbeat, _ = Heartbeat.objects.get_or_create(integration=integration)
    heartbeat = Heartbeat.objects.select_for_update().get(pk=heartbeat.pk)
    heartbeat.last_ping_at = at
    heartbeat.expected_by = at + timedelta(minutes=heartbeat.interval_minutes)
    heartbeat.save(update_fields=["last_ping_at", "expected_by", "updated_at"])
    # A heartbeat integration raises nothing but "missed heartbeat" incidents, so every open
    # incident of it ends with this ping (its dedup key is heartbeat_dedup_key()).
    resolved = []
    for incident in Incident.objects.select_for_update().filter(
        integration=integration, status__in=Incident.OPEN_STATUSES
    ):
        Alert.objects.create(
            incident=incident,
            integration=integration,
            received_at=at,
            action=RESOLVE,
            dedup_key=incident.dedup_key,
            summary="Heartbeat received",
            payload={"heartbeat": "ping"},
            outcome=Outcome.RESOLVED,
        )
        workflow.incident_resolve(
            incident=incident,
            by=None,
            via=Channel.INTEGRATION,
            at=at,
            note=f"Heartbeat received again by {integration.name}: resolved",
        )
        resolved.append(incident.pk)
    return HeartbeatPing(heartbeat=heartbeat, resolved=resolved)
