"""Celery tasks of the paging loop: thin, by id, safe to run twice.

The fast path queues `advance` with an ETA at the incident's next escalation time and
`send_notifications` after each commit; the `sweep`, run by beat every few seconds, finds
anything overdue in the database, so a lost message delays a page by seconds, never loses it.

`send_notifications` and `sweep` take an optional `now` (ISO 8601): beat and the engine leave it
out (the worker's clock), tests drive time with it.
"""

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import outbox, workflow

logger = logging.getLogger(__name__)

SEND_BATCH = 50  # messages per send_notifications task; a full batch queues the next one
ETA_HORIZON = timedelta(minutes=50)  # steps due later than this are left to the sweep


def _when(now: str | None) -> datetime:
    if not now:
        return timezone.now()
    when = parse_datetime(now)
    if when is None or timezone.is_naive(when):
        raise ValueError(f"now must be an ISO 8601 time with an offset, not {now!r}")
    return when


def queue_advance(incident_id: int, when: datetime) -> None:
    """Ask a worker to advance the incident at `when` (at once if that is past). A broker that is
    down is logged, not raised: the escalation state is in the database and the sweep finds it.

    Only near steps get a task: Redis hands a message a worker holds for longer than its
    visibility timeout (1 hour) to another worker, so a far ETA would be held several times over.
    The sweep fires far steps, at most a few seconds late."""
    if when - timezone.now() > ETA_HORIZON:
        return
    try:
        advance.apply_async(args=[incident_id], eta=max(when, timezone.now()))
    except Exception:  # noqa: BLE001 - kombu/redis errors vary; nothing is lost
        logger.warning(
            "could not queue the escalation of incident %s; the sweep will",
            incident_id,
            exc_info=True,
        )


def queue_send_notifications() -> None:
    outbox.queue_send()


@shared_task(ignore_result=True)
def advance(incident_id: int) -> None:
    workflow.incident_advance(incident=incident_id, now=timezone.now())


@shared_task(ignore_result=True)
def send_notifications(now: str | None = None) -> int:
    """Send the notifications due; returns how many messages went out (or were tried)."""
    report = outbox.notifications_send_due(now=_when(now), limit=SEND_BATCH)
    if report.more:
        send_notifications.delay(now)  # there may be more: another worker may take them
    return report.messages


# Beat queues this every 5 s (settings.CELERY_BEAT_SCHEDULE["incidents-sweep"]); one that waited
# in the queue past the next is useless, so it expires. Two running at once are harmless.
@shared_task(ignore_result=True, expires=15)
def sweep(now: str | None = None) -> dict:
    """Advance overdue escalations, re-trigger timed-out acknowledgements, release stuck
    notifications and queue the sending of the due ones."""
    report = outbox.paging_sweep(now=_when(now))
    if report.advanced or report.unacknowledged or report.released or report.errors:
        logger.info(
            "sweep: advanced %s, re-triggered %s, released %s notification(s), %s error(s)",
            report.advanced,
            report.unacknowledged,
            report.released,
            report.errors,
        )
    return {
        "advanced": report.advanced,
        "unacknowledged": report.unacknowledged,
        "released": report.released,
        "due_notifications": report.due_notifications,
        "errors": report.errors,
    }


@shared_task(ignore_result=True)
def send_test_notification(contact_method_id: int) -> str:
    """Send a test message to one contact method; returns the provider's answer."""
    from oncall.models import ContactMethod
    from oncall.services import contact_method_send_test

    method = ContactMethod.objects.select_related("user").filter(pk=contact_method_id).first()
    if method is None:
        return "no such contact method"
    result = contact_method_send_test(method=method)
    return f"{'sent' if result.ok else 'failed'}: {result.detail}"
