"""Celery tasks of the schedules app: thin, each calls one service."""

from celery import shared_task
from django.utils import timezone

from . import services


# Beat queues this every minute (settings.CELERY_BEAT_SCHEDULE["shift-reminders"]). A run that
# waited in the queue past the next one is useless, so it expires; running twice is harmless.
@shared_task(expires=55)
def send_shift_reminders() -> int:
    """Send the shift reminders due now; returns how many went out."""
    return services.shift_reminders_send(now=timezone.now())
