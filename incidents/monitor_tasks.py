"""Celery tasks of the built-in monitors, run by beat (settings.CELERY_BEAT_SCHEDULE).

Thin: they read the clock and call `incidents.monitors`. Safe to run late, twice or at once on
two workers: a check is claimed before it runs, and a heartbeat miss raises one incident.
"""

from celery import shared_task
from django.utils import timezone

from . import monitors


@shared_task(ignore_result=True)
def run_http_checks() -> int:
    """Run every HTTP check that is due; returns how many ran."""
    return len(monitors.http_checks_run_due(now=timezone.now()))


@shared_task(ignore_result=True)
def run_http_check(check_id: int) -> None:
    """Run one HTTP check now if it is due (e.g. right after it was edited)."""
    monitors.http_check_run(check=check_id, now=timezone.now())


@shared_task(ignore_result=True)
def check_heartbeats() -> int:
    """Trigger an incident for each heartbeat that missed its ping; returns how many."""
    return len(monitors.heartbeats_check(now=timezone.now()))
