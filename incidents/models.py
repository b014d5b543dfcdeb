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
    ack_timeout_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="An acknowledged incident not resolved within this many minutes is triggered "
        "again and escalates from the first step (empty: never).",
    )

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


class Heartbeat(BaseModel):
    """A heartbeat integration's state: a ping is expected every `interval_minutes`; a missed
    one triggers an incident and the next ping resolves it."""

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, related_name="heartbeat"
    )
    interval_minutes = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 60)]
    )
    last_ping_at = models.DateTimeField(null=True, blank=True)
    expected_by = models.DateTimeField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"heartbeat every {self.interval_minutes} min"


class HttpCheck(BaseModel):
    """The monitor in the portal: does this URL answer the expected status, fast enough?"""

    integration = models.OneToOneField(
        Integration, on_delete=models.CASCADE, related_name="http_check"
    )
    url = models.URLField(max_length=2000)
    expected_status = models.PositiveSmallIntegerField(
        default=200, validators=[MinValueValidator(100), MaxValueValidator(599)]
    )
    max_latency_ms = models.PositiveIntegerField(
        default=500, validators=[MinValueValidator(1), MaxValueValidator(60_000)]
    )
    interval_seconds = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(10), MaxValueValidator(24 * 3600)]
    )
    failures_before_alert = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_latency_ms = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"HTTP check of {self.url}"


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
    integration = models.ForeignKey(
        Integration, on_delete=models.SET_NULL, null=True, blank=True, related_name="incidents"
    )
    title = models.CharField(max_length=1024)
    details = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.TRIGGERED, db_index=True
    )
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.HIGH)
    dedup_key = models.CharField(max_length=255, blank=True)
    alert_count = models.PositiveIntegerField(default=0)
    # Milestones: MTTA and MTTR are derived from these, never typed in.
    triggered_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    assignees = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="assigned_incidents"
    )
    # Escalation state. The policy is copied when the incident is triggered (or reassigned),
    # so editing a policy never breaks a running escalation.
    escalation_policy = models.ForeignKey(
        EscalationPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    policy_snapshot = models.JSONField(default=dict, blank=True)
    current_step = models.PositiveSmallIntegerField(default=0)
    loop = models.PositiveSmallIntegerField(default=0)
    # Bumped whenever escalation starts over (acknowledgement timed out, escalated or reassigned
    # by hand), so the same step and loop may page the same people again, once per round.
    round = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ack_timeout_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        # Measured with 100,000 incidents on PostgreSQL (bench/bench_pages.py, docs/performance.md).
        indexes = [
            # Counts per status of the reader's services (the list's tabs, the services page):
            # answered from the index alone; `id` is included for COUNT(id).
            models.Index(
                fields=["service", "status"], include=["id"], name="incident_service_status_id"
            ),
            # The list's default order, newest first; the team and status filters are read
            # from the index, so deep pages skip rows without touching the table.
            models.Index(
                fields=["-triggered_at", "-id"],
                include=["service", "status"],
                name="incident_triggered_desc",
            ),
            # One service's incidents, newest first (the list filtered by service).
            models.Index(
                fields=["service", "-triggered_at", "-id"], name="incident_service_triggered"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["triggered", "acknowledged", "resolved"]),
                name="incident_status_valid",
            ),
            # Dedup under concurrent ingest: one open incident per key and integration.
            models.UniqueConstraint(
                fields=["integration", "dedup_key"],
                condition=Q(status__in=["triggered", "acknowledged"]),
                name="incident_one_open_per_dedup_key",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class Alert(models.Model):
    """One event received from an integration, stored as it came, before anything else."""

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, null=True, blank=True, related_name="alerts"
    )
    integration = models.ForeignKey(
        Integration, on_delete=models.SET_NULL, null=True, related_name="alerts"
    )
    received_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=16)  # trigger | acknowledge | resolve
    dedup_key = models.CharField(max_length=255, blank=True)
    summary = models.CharField(max_length=1024, blank=True)
    severity = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=255, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    payload = models.JSONField(default=dict)
    outcome = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.summary[:60]}"


class Channel(models.TextChoices):
    """Through which door an action came: shown on the timeline."""

    WEB = "web", "web"
    API = "api", "API"
    EMAIL = "email", "e-mail link"
    INTEGRATION = "integration", "integration"
    SYSTEM = "system", "Oncall"
    ADMIN = "admin", "admin"


class TimelineEntry(models.Model):
    """One thing that happened to an incident: who, when, what, through which channel."""

    class Kind(models.TextChoices):
        TRIGGERED = "triggered", "Triggered"
        ALERT = "alert", "Alert received"
        NOTIFIED = "notified", "Notified"
        NOTIFY_FAILED = "notify_failed", "Notification failed"
        ESCALATED = "escalated", "Escalated"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        UNACKNOWLEDGED = "unacknowledged", "Acknowledgement timed out"
        REASSIGNED = "reassigned", "Reassigned"
        URGENCY = "urgency", "Urgency changed"
        NOTE = "note", "Note"
        WARNING = "warning", "Warning"
        RESOLVED = "resolved", "Resolved"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="timeline")
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.SYSTEM)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "timeline entries"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M:%S} UTC"


class Page(models.Model):
    """A person paged for an incident by one step of one loop: written once (the unique
    constraint makes a second write impossible), whatever races or retries happen."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="pages")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    step = models.PositiveSmallIntegerField()
    loop = models.PositiveSmallIntegerField()
    round = models.PositiveSmallIntegerField(default=0)
    paged_at = models.DateTimeField()

    class Meta:
        ordering = ["paged_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "user", "step", "loop", "round"],
                name="page_once_per_user_step_loop",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"page of {self.user} for {self.incident} (step {self.step + 1}, loop {self.loop + 1})"
        )


class Notification(models.Model):
    """The outbox: one message to send to one contact method, when its rule says.

    pending → sending → sent | failed | skipped (skipped once the incident is acknowledged).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    page = models.ForeignKey(
        Page, on_delete=models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    contact_method = models.ForeignKey(
        "oncall.ContactMethod", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    channel = models.CharField(max_length=16)
    rule_delay_minutes = models.PositiveIntegerField(default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    due_at = models.DateTimeField(db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    provider_answer = models.CharField(max_length=500, blank=True)
    bundled_into = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="bundled"
    )

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"], name="notification_due")]
        constraints = [
            models.UniqueConstraint(
                fields=["page", "contact_method", "rule_delay_minutes"],
                name="notification_once_per_page_rule",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} to {self.user} ({self.status})"
