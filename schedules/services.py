"""Writes about schedules."""

from django.db import transaction

from oncall.models import Role, Team

from .models import Schedule


@transaction.atomic
def schedule_create_default(*, team: Team) -> Schedule:
    """Every new team gets a schedule named after it, in the time zone of its first lead."""
    lead = (
        team.memberships.filter(role=Role.LEAD)
        .select_related("user__profile")
        .order_by("created_at", "id")
        .first()
    )
    time_zone = "UTC"
    if lead is not None and hasattr(lead.user, "profile"):
        time_zone = lead.user.profile.time_zone
    schedule, _ = Schedule.objects.get_or_create(
        team=team, name=f"{team.name} on-call", defaults={"time_zone": time_zone}
    )
    return schedule
