"""Celery tasks of the paging loop: thin, by id, safe to run twice.

The fast path queues `advance` with an ETA at the incident's next escalation time and
`send_notifications` after each commit; the `sweep`, run by beat every few seconds, finds
anything overdue in the database, so a lost message delays a page by seconds, never loses it.
"""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from . import workflow


def queue_advance(incident_id: int, when: datetime) -> None:
    """Ask a worker to advance the incident at `when` (at once if that is past)."""
    advance.apply_async(args=[incident_id], eta=max(when, timezone.now()))


def queue_send_notifications() -> None:
    from . import outbox

    outbox.queue_send()


@shared_task(ignore_result=True)
def advance(incident_id: int) -> None:
    workflow.incident_advance(incident=incident_id, now=timezone.now())
