"""Celery tasks of the postmortems app: thin, each calls one service."""

from celery import shared_task
from django.utils import timezone

from . import services


# Beat queues this every hour (settings.CELERY_BEAT_SCHEDULE["postmortem-reminders"]). Each
# thing is reminded at most once a day per person, so a late or repeated run is harmless.
@shared_task(expires=3000)
def send_reminders() -> int:
    """Send the postmortem reminders due now; returns how many people got one."""
    return services.postmortem_reminders_send(now=timezone.now())


@shared_task(ignore_result=True)
def notify_review_requested(review_ids: list[int]) -> int:
    """Tell reviewers they were asked (queued after the request is committed)."""
    return services.review_requested_notify(review_ids=review_ids)


@shared_task(ignore_result=True)
def notify_review_decided(review_id: int) -> int:
    """Tell the author what a reviewer decided (queued after the decision is committed)."""
    return services.review_decided_notify(review_id=review_id)
