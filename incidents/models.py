"""Services, their integrations, escalation policies and incidents."""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from oncall.models import BaseModel, Team, Urgency
from schedules.models import Schedule


def new_integration_key() -> str:
    """A routing key: 32 random hex characters, as PagerDuty's integration keys."""
    return secrets.token_hex(16)


class EscalationPolicy(BaseModel):
    """Who is paged, in which order, when nobody acknowledges an incident."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="escalation_policies")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    repeat_count = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(9)],
        help_text="How many more times to run all steps again if nobody acknowledges (0–9).",
    )

    class Meta:
        ordering = ["team__name", "name"]
        verbose_name_plural = "escalation policies"
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="policy_unique_team_name"),
            models.CheckConstraint(condition=Q(repeat_count__lte=9), name="policy_repeat_max_9"),
        ]

    def __str__(self) -> str:
        return self.name


class EscalationStep(BaseModel):
    """One rung of a policy: page these targets, then wait `delay_minutes` for an ack."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    delay_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(0), MaxValueValidator(24 * 60)],
        help_text="Minutes to wait for an acknowledgement before the next step.",
    )
    target_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="escalation_steps", verbose_name="users"
    )
    target_schedules = models.ManyToManyField(
        Schedule,
        blank=True,
        related_name="escalation_steps",
        verbose_name="schedules",
        help_text="Whoever is on call on the schedule when the step fires.",
    )
    target_teams = models.ManyToManyField(
        Team,
        blank=True,
        related_name="escalation_steps",
        verbose_name="whole teams",
        help_text="Every lead and responder of the team.",
    )

    class Meta:
        ordering = ["policy_id", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(delay_minutes__gte=0), name="step_delay_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Step {self.position + 1} of {self.policy}"


class Service(BaseModel):
    """Something a team runs and is paged for. Alerts arrive on its integrations."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        MAINTENANCE = "maintenance", "In maintenance (alerts recorded, nobody paged)"
        DISABLED = "disabled", "Disabled (alerts refused)"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="services")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    escalation_policy = models.ForeignKey(
        # RESTRICT: a policy in use can't be deleted on its own, but a whole team can be.
        EscalationPolicy,
        on_delete=models.RESTRICT,
        related_name="services",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    default_urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.HIGH)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="service_unique_team_name"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "maintenance", "disabled"]),
                name="service_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Integration(BaseModel):
    """An entry point for alerts into a service, authenticated by its secret key."""

    class Kind(models.TextChoices):
        EVENTS_V2 = "events_v2", "Events API v2 (PagerDuty-compatible)"
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        WEBHOOK = "webhook", "Generic webhook"
        HEARTBEAT = "heartbeat", "Heartbeat"
        HTTP_CHECK = "http_check", "HTTP check"

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EVENTS_V2)
    key = models.CharField(max_length=64, unique=True, default=new_integration_key, editable=False)
    key_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=["events_v2", "alertmanager", "webhook", "heartbeat", "http_check"]
                ),
                name="integration_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def key_hint(self) -> str:
        """Enough of the key to tell keys apart, never enough to use one: for lists and logs."""
        return f"…{self.key[-4:]}"


class Incident(BaseModel):
    """Something is wrong with a service and someone must act.

    Triggered → acknowledged → resolved; the milestone times give MTTA and MTTR.
    """

    class Status(models.TextChoices):
        TRIGGERED = "triggered", "Triggered"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"

    OPEN_STATUSES = (Status.TRIGGERED, Status.ACKNOWLEDGED)

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="incidents")
    title = models.CharField(max_length=1024)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.TRIGGERED, db_index=True
    )
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.HIGH)
    dedup_key = models.CharField(max_length=255, blank=True)
    triggered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        indexes = [models.Index(fields=["service", "status"], name="incident_service_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["triggered", "acknowledged", "resolved"]),
                name="incident_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"
