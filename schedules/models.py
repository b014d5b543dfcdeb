"""Schedules: who is on call when, for one team, in one time zone."""

import zoneinfo

from django.conf import settings
from django.db import models
from django.db.models import Q

from oncall.models import BaseModel, Team, validate_time_zone


class Schedule(BaseModel):
    """A team's on-call calendar. Layers, rotations and overrides hang off it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone in which handoff times are given, e.g. Europe/Paris.",
    )

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="schedule_unique_team_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Layer(BaseModel):
    """A rotation: members take turns of a fixed length, handing off at a local wall-clock time.

    Higher `priority` layers cover lower ones where they have somebody on call. The fields here
    are the layer's current configuration; `versions` keep every configuration that has been in
    force, so editing a rotation never rewrites shifts that are already past.
    """

    class TurnUnit(models.TextChoices):
        HOURS = "hours", "hours"
        DAYS = "days", "days"
        WEEKS = "weeks", "weeks"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=100)
    priority = models.PositiveSmallIntegerField(
        default=1, help_text="Higher layers cover lower ones where they have somebody on call."
    )
    start = models.DateTimeField(help_text="When the rotation starts (the first handoff).")
    end = models.DateTimeField(null=True, blank=True, help_text="Optional: the rotation stops.")
    turn_unit = models.CharField(max_length=8, choices=TurnUnit.choices, default=TurnUnit.WEEKS)
    turn_count = models.PositiveSmallIntegerField(
        default=1, help_text="Length of one turn, e.g. 12 hours, 1 day, 1 week."
    )
    handoff_time = models.TimeField(
        help_text="Local time of day of the handoff, in the schedule's zone."
    )

    class Meta:
        ordering = ["schedule_id", "-priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(turn_count__gte=1),
                name="layer_turn_positive",
                violation_error_message="A turn must be at least 1 hour, day or week long.",
            ),
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gt=models.F("start")),
                name="layer_end_after_start",
                violation_error_message="The rotation must end after it starts.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.schedule}: {self.name}"


class LayerMember(models.Model):
    """A turn in a layer's order. A person may hold several turns."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["layer_id", "position", "id"]

    def __str__(self) -> str:
        return f"{self.position + 1}. {self.user}"


class LayerRestriction(models.Model):
    """A window in which the layer is active, e.g. weekdays 09:00–17:00; outside it, empty."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="restrictions")
    weekdays = models.CharField(
        max_length=13,
        default="0,1,2,3,4",
        help_text="Days on which the window starts: 0 = Monday … 6 = Sunday, comma-separated.",
    )
    start_time = models.TimeField()
    end_time = models.TimeField(help_text="An end at or before the start crosses midnight.")

    class Meta:
        ordering = ["layer_id", "id"]

    def __str__(self) -> str:
        return f"{self.weekdays} {self.start_time:%H:%M}–{self.end_time:%H:%M}"

    @property
    def weekday_set(self) -> frozenset[int]:
        return frozenset(int(d) for d in self.weekdays.split(",") if d.strip())


class LayerVersion(models.Model):
    """A layer's configuration as it was from `effective_from` on. Written by a service only."""

    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="versions")
    effective_from = models.DateTimeField()
    rotation_start = models.DateTimeField()
    turn_unit = models.CharField(max_length=8, choices=Layer.TurnUnit.choices)
    turn_count = models.PositiveSmallIntegerField()
    handoff_time = models.TimeField()
    member_ids = models.JSONField(default=list)
    restrictions = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["layer_id", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["layer", "effective_from"], name="layer_version_unique_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.layer} from {self.effective_from:%Y-%m-%d %H:%M} UTC"


class Override(BaseModel):
    """Someone covers a window of a schedule, over every layer: "cover me from … to …"."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedule_overrides"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["schedule_id", "start"]
        indexes = [models.Index(fields=["schedule", "end"], name="override_schedule_end")]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gt=models.F("start")),
                name="override_end_after_start",
                violation_error_message="The override must end after it starts.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} covers {self.schedule} from {self.start:%Y-%m-%d %H:%M} UTC"


class CalendarToken(BaseModel):
    """The secret in a person's iCalendar feed URLs; resetting it breaks every old URL at once."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_token"
    )
    token = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return f"calendar token of {self.user}"


class ShiftReminder(models.Model):
    """A "your shift starts in 1 hour" or "starts now" reminder: one row per shift and kind,
    so each goes out once even when beat runs twice or two workers race."""

    class Kind(models.TextChoices):
        SOON = "soon", "Starts in 1 hour"
        NOW = "now", "Starts now"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    shift_start = models.DateTimeField()
    kind = models.CharField(max_length=8, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    outcome = models.JSONField(
        default=list, help_text="Per contact method: sent or failed, and why."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "user", "shift_start", "kind"], name="shift_reminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} reminder for {self.user}"
