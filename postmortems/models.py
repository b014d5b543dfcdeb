"""Postmortems: from a resolved incident to a reviewed, published report.

A postmortem belongs to one team, covers one or more incidents and follows a fixed format (issue
summary, timeline, root cause and resolution, corrective and preventative measures). Every change
goes through `postmortems.services`; who may read what is decided in `postmortems.selectors`.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from oncall.models import BaseModel, Team, Urgency, validate_time_zone


class Postmortem(BaseModel):
    """What happened, why, and what the team will change so it does not happen again.

    draft → in review → changes requested | approved → published; a published postmortem
    changes only through an `Amendment`.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        APPROVED = "approved", "Approved"
        PUBLISHED = "published", "Published"

    # Statuses in which the author (and the team) may still edit the text freely.
    EDITABLE_STATUSES = (
        Status.DRAFT,
        Status.IN_REVIEW,
        Status.CHANGES_REQUESTED,
        Status.APPROVED,
    )
    # The transitions, written once: services refuse anything else.
    TRANSITIONS = {
        Status.DRAFT: (Status.IN_REVIEW, Status.PUBLISHED),
        Status.IN_REVIEW: (Status.CHANGES_REQUESTED, Status.APPROVED, Status.PUBLISHED),
        Status.CHANGES_REQUESTED: (Status.IN_REVIEW, Status.APPROVED, Status.PUBLISHED),
        Status.APPROVED: (Status.IN_REVIEW, Status.CHANGES_REQUESTED, Status.PUBLISHED),
        Status.PUBLISHED: (),
    }

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="postmortems")
    title = models.CharField(max_length=200)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="postmortems_authored"
    )
    incidents = models.ManyToManyField("incidents.Incident", blank=True, related_name="postmortems")
    services = models.ManyToManyField(
        "incidents.Service",
        blank=True,
        related_name="postmortems",
        verbose_name="affected services",
    )
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.HIGH)
    # The outage window. Stored in UTC; shown in `time_zone`, the zone the summary is written in.
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone of the start and end times, e.g. Europe/Paris.",
    )
    # 1. Issue summary — what executives read first.
    impact = models.TextField(
        blank=True,
        help_text="Markdown. What was down or slow, what users experienced.",
    )
    users_affected_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        verbose_name="users affected (%)",
    )
    summary_root_cause = models.TextField(
        blank=True, verbose_name="root cause (short)", help_text="Markdown. One or two sentences."
    )
    # 3. Root cause and resolution, in detail.
    root_cause = models.TextField(blank=True, help_text="Markdown. What caused the issue.")
    resolution = models.TextField(blank=True, help_text="Markdown. How it was fixed.")
    # 4. Corrective and preventative measures, broadly (the tasks are ActionItems).
    improvements = models.TextField(
        blank=True,
        verbose_name="corrective and preventative measures",
        help_text="Markdown. What can be improved, broadly.",
    )
    published_at = models.DateTimeField(null=True, blank=True, db_index=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    publish_override_reason = models.TextField(
        blank=True,
        help_text="Why a lead published without an approval (empty if approved).",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["team", "status"], name="postmortem_team_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "draft",
                        "in_review",
                        "changes_requested",
                        "approved",
                        "published",
                    ]
                ),
                name="postmortem_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(started_at__isnull=True)
                | Q(ended_at__isnull=True)
                | Q(ended_at__gte=F("started_at")),
                name="postmortem_ends_after_start",
                violation_error_message="The outage ends before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(users_affected_percent__isnull=True)
                | Q(users_affected_percent__gte=0, users_affected_percent__lte=100),
                name="postmortem_users_affected_percent_range",
                violation_error_message="Users affected is a percentage, from 0 to 100.",
            ),
            models.CheckConstraint(
                condition=~Q(status="published") | Q(published_at__isnull=False),
                name="postmortem_published_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def duration(self):
        """How long the outage lasted (a timedelta), or None while a bound is missing."""
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    @property
    def is_published(self) -> bool:
        return self.status == self.Status.PUBLISHED

    @property
    def is_editable(self) -> bool:
        """Whether the text may change without an amendment."""
        return self.status in self.EDITABLE_STATUSES


class TimelineItem(models.Model):
    """One bullet of the timeline: "time — one or two sentences", of one kind."""

    class Kind(models.TextChoices):
        DETECTED = "detected", "Detected"
        ACTION = "action", "Action taken"
        MISLEADING = "misleading", "Misleading investigation path"
        ESCALATED = "escalated", "Escalated"
        RESOLVED = "resolved", "Resolved"
        OTHER = "other", "Other"

    class Detection(models.TextChoices):
        MONITORING = "monitoring", "Monitoring alert"
        ENGINEER = "engineer", "An engineer noticed"
        CUSTOMER = "customer", "A customer complained"

    postmortem = models.ForeignKey(
        Postmortem, on_delete=models.CASCADE, related_name="timeline_items"
    )
    at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ACTION)
    detection = models.CharField(
        max_length=16,
        choices=Detection.choices,
        blank=True,
        help_text="How it was detected (for a 'detected' item).",
    )
    text = models.TextField(max_length=2000, help_text="One or two sentences (Markdown).")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["at", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=["detected", "action", "misleading", "escalated", "resolved", "other"]
                ),
                name="timeline_item_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(detection__in=["", "monitoring", "engineer", "customer"]),
                name="timeline_item_detection_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} UTC — {self.text[:60]}"


class ActionItem(BaseModel):
    """A specific task that makes the next outage less likely or shorter, with an owner and a
    due date ("patch the Nginx server", "add monitoring on server memory")."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    postmortem = models.ForeignKey(
        Postmortem, on_delete=models.CASCADE, related_name="action_items"
    )
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="action_items"
    )
    due_date = models.DateField()
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    url = models.URLField(
        max_length=500, blank=True, verbose_name="tracker link", help_text="Optional outside link."
    )
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reminded_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["due_date", "id"]
        indexes = [models.Index(fields=["status", "due_date"], name="action_item_status_due")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "done"]), name="action_item_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(done_at__isnull=False),
                name="action_item_done_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        """Open and past its due date (in the portal's time zone)."""
        return self.status == self.Status.OPEN and self.due_date < timezone.localdate()


class ReviewRequest(models.Model):
    """A peer asked to review a postmortem, and what they decided.

    One row per reviewer and postmortem: asking again after changes reopens it (back to pending).
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="postmortem_reviews"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    requested_at = models.DateTimeField()
    state = models.CharField(
        max_length=20, choices=State.choices, default=State.PENDING, db_index=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="The reviewer's overall note.")
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["requested_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["postmortem", "reviewer"], name="review_once_per_reviewer"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "approved", "changes_requested"]),
                name="review_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"review of {self.postmortem} by {self.reviewer} ({self.state})"


class ReviewComment(models.Model):
    """A reviewer's remark on one section; the author sees it and marks it resolved."""

    class Section(models.TextChoices):
        SUMMARY = "summary", "Issue summary"
        TIMELINE = "timeline", "Timeline"
        ROOT_CAUSE = "root_cause", "Root cause and resolution"
        MEASURES = "measures", "Corrective and preventative measures"

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="postmortem_comments"
    )
    section = models.CharField(max_length=16, choices=Section.choices)
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField()
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(section__in=["summary", "timeline", "root_cause", "measures"]),
                name="review_comment_section_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_section_display()}: {self.body[:60]}"


class Amendment(models.Model):
    """A recorded change to a published postmortem: who, when, why, and the content before
    and after, so the history is kept (oldest first)."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="amendments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="postmortem_amendments"
    )
    at = models.DateTimeField()
    reason = models.TextField()
    before = models.JSONField(default=dict, help_text="The changed fields before the amendment.")
    after = models.JSONField(default=dict, help_text="The changed fields after the amendment.")

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="amendment_has_reason"),
        ]

    def __str__(self) -> str:
        return f"amendment of {self.postmortem} at {self.at:%Y-%m-%d %H:%M} UTC"

    @property
    def changed_fields(self) -> list[str]:
        return sorted(set(self.before) | set(self.after))


class PostmortemReminder(models.Model):
    """One reminder sent: the unique constraint makes a second one for the same thing, person
    and day impossible, so running the reminder task twice sends once."""

    class Kind(models.TextChoices):
        REVIEW = "review", "Review pending"
        MISSING = "missing", "Postmortem missing for an incident"
        ACTION_ITEM = "action_item", "Action item overdue"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The review request, incident or action item the reminder is about.
    object_id = models.PositiveBigIntegerField()
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    sent_on = models.DateField()
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "object_id", "recipient", "sent_on"],
                name="postmortem_reminder_once_a_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.object_id} to {self.recipient} on {self.sent_on}"
