"""Building schedules for tests, through the services."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from schedules import services
from schedules.models import Layer

LONDON = ZoneInfo("Europe/London")


def team_with_daily_rotation(*, names=("ann", "ben"), start=None, zone="Europe/London"):
    """A team whose schedule has one daily rotation at 09:00 (in `zone`) of the given people."""
    users = [UserFactory(username=n, time_zone=zone) for n in names]
    team = TeamFactory(lead=users[0], members=[(u, Role.RESPONDER) for u in users[1:]])
    schedule = services.schedule_create(team=team, name="Primary", time_zone=zone)
    start = start or datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo(zone))
    layer = services.layer_create(
        schedule=schedule,
        name="Daily",
        start=start,
        turn_unit=Layer.TurnUnit.DAYS,
        turn_count=1,
        handoff_time=time(9, 0),
        members=users,
        now=start,
    )
    return team, schedule, layer, users
