"""The notification outbox: claim due rows, send them, record the outcome — and the sweep.

Notification rows go `pending → sending → sent | failed` (or `skipped` once their incident is no
longer triggered). Sending is done one bundle at a time:

1. claim, in a short transaction: the contact method of the oldest due row, and every due
   pending row for it — a bundle, sent as one message. Row locks with `SKIP LOCKED` (where the
   database has it) on the contact method and the rows: workers never wait for each other,
   never take the same row and never split a bundle. Rows whose incident was acknowledged or
   resolved meanwhile are skipped. A phone (SMS, voice)
   contact method gets at most one message a minute: a bundle due sooner is postponed (never
   dropped) and goes out, with whatever else came in by then, a minute after the previous one.
   Claimed rows become `sending` with one more attempt;
2. send, outside any transaction, through `oncall.notify.send` (each sender has its timeout);
3. record the outcome on the rows (the provider's answer, `sent_at`) and on each incident's
   timeline. A retryable failure is tried again after 30 s, then 2 min; the third failure, or a
   final one (a 4xx, a refused mailbox), is `failed`.

A worker that dies between 1 and 3 leaves rows `sending`: `notifications_release_stuck` puts
them back after 5 minutes (so a page may, rarely, go out twice; it is never lost).

`paging_sweep`, run by Celery beat every few seconds, is what makes the loop survive lost broker
messages, a flushed Redis and killed workers: it advances every overdue escalation, re-triggers
timed-out acknowledgements, releases stuck rows and queues the sending of anything due.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Max, Q, QuerySet

from oncall import notify
from oncall.models import ContactKind, ContactMethod

from . import messages, workflow
from .models import Incident, Notification, TimelineEntry

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
RETRY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=2))  # after attempt 1, attempt 2
PHONE_KINDS = (ContactKind.SMS, ContactKind.VOICE)
PHONE_THROTTLE = timedelta(minutes=1)  # at most one SMS or call per contact method per minute
STUCK_AFTER = timedelta(minutes=5)  # a row `sending` this long belongs to a dead worker
BUNDLE_MAX_ROWS = 500  # rows claimed into one message at most; the rest make the next one
CANDIDATE_ROWS = 200  # due rows looked at to find a bundle no other worker is claiming
Status = Notification.Status


@dataclass
class SendReport:
    """What one `notifications_send_due` call did, counted in notification rows."""

    messages: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    postponed: int = 0
    more: bool = False  # stopped at the limit: there may be more to send


@dataclass
class SweepReport:
    advanced: list[int] = field(default_factory=list)
    unacknowledged: list[int] = field(default_factory=list)
    released: int = 0
    due_notifications: int = 0
    errors: int = 0


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before the next attempt, after `attempts` failed ones."""
    return RETRY_BACKOFF[min(max(attempts, 1), len(RETRY_BACKOFF)) - 1]


def _locking(queryset: QuerySet) -> QuerySet:
    """Row locks that other workers skip rather than wait for, where the database can."""
    features = connection.features
    if not features.has_select_for_update:
        return queryset  # SQLite: a writing transaction locks the whole database anyway
    if features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True)
    return queryset.select_for_update()


def _due(now: datetime) -> QuerySet:
    return Notification.objects.filter(status=Status.PENDING, due_at__lte=now)


# --- 1. claim ----------------------------------------------------------------------------------


def _claim_next(now: datetime, report: SendReport) -> list[Notification] | None:
    """Claim the next bundle: its rows, now `sending`. An empty list when the rows found were
    skipped or postponed instead; None when nothing is due (or all of it is being claimed by
    other workers right now).

    The bundle's contact method row is locked first (skipping one another worker holds): the
    claims of one contact method take turns, so concurrent workers neither split a bundle nor
    both decide that a phone may get its message now. Nothing here ever waits for a lock."""
    with transaction.atomic():
        candidates = dict.fromkeys(
            _due(now)
            .order_by("due_at", "id")
            .values_list("user_id", "contact_method_id")[:CANDIDATE_ROWS]
        )
        if not candidates:
            return None
        for user_id, method_id in candidates:
            group = _due(now).filter(user_id=user_id)
            if method_id is None:  # its contact method was deleted: claimed to be failed
                group = group.filter(contact_method__isnull=True)
            elif not _lock_contact_method(method_id):
                continue
            else:
                group = group.filter(contact_method_id=method_id)
            ids = list(
                _locking(group.order_by("due_at", "id")).values_list("pk", flat=True)[
                    :BUNDLE_MAX_ROWS
                ]
            )
            if ids:
                break
        else:
            return None
        rows = list(
            Notification.objects.filter(pk__in=ids)
            .select_related("incident__service", "user__profile", "contact_method")
            .order_by("due_at", "id")
        )
        # Paging stops once somebody acknowledges (or the incident is resolved).
        stale = [row for row in rows if row.incident.status != Incident.Status.TRIGGERED]
        for status in {row.incident.status for row in stale}:
            Notification.objects.filter(
                pk__in=[row.pk for row in stale if row.incident.status == status]
            ).update(
                status=Status.SKIPPED, provider_answer=f"incident {status}", last_attempt_at=now
            )
        report.skipped += len(stale)
        rows = [row for row in rows if row.incident.status == Incident.Status.TRIGGERED]
        if not rows:
            return []
        method = rows[0].contact_method
        if method is not None and method.kind in PHONE_KINDS:
            not_before = _phone_free_at(method, now)
            if not_before is not None and not_before > now:
                Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
                    due_at=not_before
                )
                report.postponed += len(rows)
                return []
        ids = [row.pk for row in rows]
        Notification.objects.filter(pk__in=ids).update(
            status=Status.SENDING,
            attempts=F("attempts") + 1,
            last_attempt_at=now,
            bundled_into=None,
        )
        if len(ids) > 1:
            Notification.objects.filter(pk__in=ids[1:]).update(bundled_into_id=ids[0])
        for row in rows:
            row.status, row.attempts, row.last_attempt_at = Status.SENDING, row.attempts + 1, now
        return rows


def _lock_contact_method(method_id: int) -> bool:
    """Lock the contact method's row for this transaction; False if another worker holds it
    (or it was just deleted)."""
    return bool(
        list(_locking(ContactMethod.objects.filter(pk=method_id)).values_list("pk", flat=True))
    )


def _phone_free_at(method: ContactMethod, now: datetime) -> datetime | None:
    """When the phone contact method may get its next message (None: it may now). Called with
    the contact method's row locked."""
    last = (
        Notification.objects.filter(contact_method=method, last_attempt_at__gt=now - PHONE_THROTTLE)
        .filter(
            Q(status__in=[Status.SENDING, Status.SENT, Status.FAILED])
            | Q(status=Status.PENDING, attempts__gt=0)
        )
        .aggregate(last=Max("last_attempt_at"))["last"]
    )
    return None if last is None else last + PHONE_THROTTLE


# --- 2. send -----------------------------------------------------------------------------------


def _send(rows: list[Notification]) -> notify.SendResult:
    method = rows[0].contact_method
    if method is None:
        return notify.SendResult.failed("the contact method was deleted", retryable=False)
    try:
        message = messages.incidents_message(
            incidents=[row.incident for row in rows], user=rows[0].user, kind=method.kind
        )
    except Exception:  # noqa: BLE001 - a bad template must not leave rows `sending`
        logger.exception("could not build the message for notifications %s", [r.pk for r in rows])
        return notify.SendResult.failed("could not build the message", retryable=False)
    return notify.send(method, message)


# --- 3. record ---------------------------------------------------------------------------------


def _method_words(row: Notification) -> str:
    """`SMS (Work phone)` — the kind and the person's label, never the address (a webhook URL
    may hold a secret)."""
    method = row.contact_method
    kind = ContactKind(row.channel).label if row.channel in ContactKind.values else row.channel
    if method is not None and method.label:
        return f"{kind} ({method.label})"
    return kind


def _record(rows: list[Notification], result: notify.SendResult, now: datetime, report) -> None:
    ids = [row.pk for row in rows]
    detail = result.detail[:500]
    outcome: dict[int, tuple[str, datetime | None]] = {}  # row id -> (status, retry at)
    with transaction.atomic():
        if result.ok:
            Notification.objects.filter(
                pk__in=ids, status__in=[Status.SENDING, Status.PENDING]
            ).update(status=Status.SENT, sent_at=now, provider_answer=detail)
            outcome = dict.fromkeys(ids, (Status.SENT, None))
            report.sent += len(ids)
        else:
            retry: dict[int, list[int]] = defaultdict(list)
            final = []
            for row in rows:
                if result.retryable and row.attempts < MAX_ATTEMPTS:
                    retry[row.attempts].append(row.pk)
                    outcome[row.pk] = (Status.PENDING, now + retry_delay(row.attempts))
                else:
                    final.append(row.pk)
                    outcome[row.pk] = (Status.FAILED, None)
            for attempts, pks in retry.items():
                Notification.objects.filter(pk__in=pks, status=Status.SENDING).update(
                    status=Status.PENDING,
                    due_at=now + retry_delay(attempts),
                    provider_answer=detail,
                )
            Notification.objects.filter(pk__in=final, status=Status.SENDING).update(
                status=Status.FAILED, provider_answer=detail
            )
            report.retrying += sum(len(pks) for pks in retry.values())
            report.failed += len(final)
        _timeline(rows, result, outcome, now)
    report.messages += 1
    level = logging.INFO if result.ok else logging.WARNING
    logger.log(
        level,
        "notification %s to user %s by %s: %s (%s)",
        ",".join(map(str, ids)),
        rows[0].user_id,
        rows[0].channel,
        "sent" if result.ok else "failed",
        detail,
    )


def _timeline(rows, result, outcome, now) -> None:
    """One entry per incident of the bundle: notified, or why not and what happens next."""
    first = rows[0]
    name = messages.person_name(first.user)
    how = _method_words(first)
    incident_count = len({row.incident_id for row in rows})
    by_incident: dict[int, list[Notification]] = defaultdict(list)
    for row in rows:
        by_incident[row.incident_id].append(row)
    for incident_rows in by_incident.values():
        incident = incident_rows[0].incident
        attempt = max(row.attempts for row in incident_rows)
        together = (
            f", in one message with {incident_count - 1} other incident(s)"
            if incident_count > 1
            else ""
        )
        retry_at = min(
            (outcome[row.pk][1] for row in incident_rows if outcome[row.pk][1] is not None),
            default=None,
        )
        if result.ok:
            kind, text = TimelineEntry.Kind.NOTIFIED, f"Notified {name} by {how}{together}"
        elif retry_at is not None:
            kind = TimelineEntry.Kind.NOTIFY_FAILED
            text = (
                f"Notifying {name} by {how} failed (attempt {attempt} of {MAX_ATTEMPTS}); "
                f"trying again at {retry_at:%H:%M:%S} UTC"
            )
        else:
            kind = TimelineEntry.Kind.NOTIFY_FAILED
            text = f"Notifying {name} by {how} failed after {attempt} attempt(s); giving up"
        workflow.timeline_add(
            incident=incident,
            kind=kind,
            at=now,
            message=f"{text}: {result.detail}" if result.detail else text,
            data={
                "user": first.user_id,
                "contact_method": first.contact_method_id,
                "contact_kind": first.channel,
                "notifications": [row.pk for row in incident_rows],
                "attempt": attempt,
                "ok": result.ok,
                "answer": result.detail,
                "retry_at": retry_at.isoformat() if retry_at else None,
                "bundled_incidents": incident_count,
            },
        )


# --- the public functions ----------------------------------------------------------------------


def notifications_send_due(*, now: datetime, limit: int = 50) -> SendReport:
    """Send what is due at `now`, at most `limit` bundles; safe to run in many workers at once.

    Not atomic on purpose: no transaction is held while talking to the outside world."""
    report = SendReport()
    for _ in range(limit):
        rows = _claim_next(now, report)
        if rows is None:
            return report
        if rows:
            _record(rows, _send(rows), now, report)
    report.more = True
    return report


def notifications_release_stuck(*, now: datetime) -> int:
    """Rows left `sending` for over 5 minutes by a worker that died: back to `pending` (sent
    again), or `failed` once they used their attempts. Returns how many were released."""
    cutoff = now - STUCK_AFTER
    with transaction.atomic():
        stuck = list(
            _locking(
                Notification.objects.filter(status=Status.SENDING).filter(
                    Q(last_attempt_at__lt=cutoff) | Q(last_attempt_at__isnull=True)
                )
            ).values_list("pk", "attempts", "incident_id")
        )
        if not stuck:
            return 0
        again = [pk for pk, attempts, _ in stuck if attempts < MAX_ATTEMPTS]
        given_up = [
            (pk, incident_id) for pk, attempts, incident_id in stuck if attempts >= MAX_ATTEMPTS
        ]
        answer = "no outcome recorded: the worker sending it stopped"
        Notification.objects.filter(pk__in=again).update(
            status=Status.PENDING, provider_answer=f"{answer}; sending again"
        )
        Notification.objects.filter(pk__in=[pk for pk, _ in given_up]).update(
            status=Status.FAILED,
            provider_answer=f"{answer}; giving up after {MAX_ATTEMPTS} attempts",
        )
        for incident_id in {incident_id for _, incident_id in given_up}:
            workflow.timeline_add(
                incident=Incident(pk=incident_id),
                kind=TimelineEntry.Kind.NOTIFY_FAILED,
                at=now,
                message=f"A notification was given up after {MAX_ATTEMPTS} attempts: {answer}.",
                data={"notifications": [pk for pk, i in given_up if i == incident_id]},
            )
    logger.warning("released %s notification(s) stuck in sending", len(stuck))
    return len(stuck)


def queue_send(*, now: datetime | None = None) -> None:
    """Ask a worker to send what is due (at `now`, or when it runs). Used after commit by the
    engine and by the sweep; a broker that is down is logged, not raised: the sweep catches up."""
    from . import tasks

    try:
        tasks.send_notifications.delay(now.isoformat() if now else None)
    except Exception:  # noqa: BLE001 - kombu/redis errors vary; the page is safe in the outbox
        logger.warning(
            "could not queue the sending of notifications; the sweep will", exc_info=True
        )


def paging_sweep(*, now: datetime, limit: int = 200) -> SweepReport:
    """Everything overdue at `now`, from the database alone: escalations to advance,
    acknowledgements that timed out, rows stuck in `sending`, notifications to send (queued)."""
    report = SweepReport()
    for pk in workflow.incidents_due(now, limit=limit):
        try:
            if workflow.incident_unacknowledge_if_due(incident=pk, now=now) is not None:
                report.unacknowledged.append(pk)
            if workflow.incident_advance(incident=pk, now=now) is not None:
                report.advanced.append(pk)
        except Incident.DoesNotExist:  # deleted since it was listed
            continue
        except Exception:  # noqa: BLE001 - one broken incident must not stop the others
            logger.exception("sweep: could not advance incident %s", pk)
            report.errors += 1
    report.released = notifications_release_stuck(now=now)
    report.due_notifications = _due(now).count()
    if report.due_notifications:
        queue_send(now=now)
    return report
