"""Schedules: who is on call when, for one team, in one time zone."""

from django.db import models

from oncall.models import BaseModel, Team, validate_time_zone


class Schedule(BaseModel):
    """A team's on-call calendar. Layers, rotations and overrides hang off it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone],
        help_text="IANA time zone in which handoff times are given, e.g. Europe/Paris.",
    )

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="schedule_unique_team_name"),
        ]

    def __str__(self) -> str:
        return self.name
