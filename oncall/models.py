"""People and teams: who belongs where, in which role, and how each person wants to be reached."""

import re
import zoneinfo
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q


class BaseModel(models.Model):
    """Every domain row knows when it was created and last changed."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


@cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    """An IANA time zone name that this machine's zone database knows, e.g. Europe/Paris."""
    if value not in _time_zones():
        raise ValidationError(
            "%(value)s is not a known IANA time zone (for example Europe/Paris).",
            params={"value": value},
            code="invalid_time_zone",
        )


def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(_time_zones())]


PHONE_RE = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_phone(value: str) -> str:
    """Phone numbers are kept in E.164 (+ and digits); spaces, dots, dashes and brackets go."""
    return re.sub(r"[\s().-]", "", value or "")


def validate_phone(value: str) -> None:
    if not PHONE_RE.match(normalize_phone(value)):
        raise ValidationError(
            "Enter the number in international format, e.g. +44 20 7946 0958.",
            code="invalid_phone",
        )


class Team(BaseModel):
    """A group of people who share services, schedules and escalation policies."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    """What a member may do: see docs/permissions.md."""

    LEAD = "lead", "Lead"
    RESPONDER = "responder", "Responder"
    OBSERVER = "observer", "Observer"


class Membership(BaseModel):
    """A person's place in a team. Observers are the executives: they read, never act."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESPONDER)

    class Meta:
        ordering = ["team__name", "role", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_unique_team_user"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} of {self.team}"


class Profile(BaseModel):
    """What the portal needs to know about a person to page them: where they live, in time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(max_length=150, blank=True)
    time_zone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_time_zone],
        help_text="IANA time zone, e.g. Europe/Paris. Times on the pages are shown in it.",
    )
    phone = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_phone],
        help_text="International format, e.g. +44 20 7946 0958.",
    )

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.display_name or self.user.get_full_name() or self.user.get_username()

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class ContactKind(models.TextChoices):
    EMAIL = "email", "E-mail"
    SMS = "sms", "SMS"
    VOICE = "voice", "Voice call"
    SLACK = "slack", "Slack-compatible webhook"
    WEBHOOK = "webhook", "Generic webhook"


class ContactMethod(BaseModel):
    """One way to reach a person: an address on one channel."""

    Kind = ContactKind

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    label = models.CharField(max_length=100, blank=True, help_text="e.g. Work phone")
    address = models.CharField(
        max_length=500, help_text="E-mail address, phone number (+44…) or webhook URL."
    )
    verified = models.BooleanField(default=False)

    class Meta:
        ordering = ["user_id", "kind", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind", "address"], name="contact_method_unique_address"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ContactKind.values), name="contact_method_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.label or self.address}"

    def clean(self) -> None:
        super().clean()
        self.address = (self.address or "").strip()
        errors = contact_address_errors(self.kind, self.address)
        if errors:
            raise ValidationError({"address": errors})
        if self.kind in (self.Kind.SMS, self.Kind.VOICE):
            self.address = normalize_phone(self.address)


def contact_address_errors(kind: str, address: str) -> list[str]:
    """Why an address can't be used for a channel (an empty list when it can)."""
    if not address:
        return ["Enter an address."]
    if kind == ContactMethod.Kind.EMAIL:
        try:
            EmailValidator()(address)
        except ValidationError:
            return ["Enter a valid e-mail address, e.g. ada@example.com."]
    elif kind in (ContactMethod.Kind.SMS, ContactMethod.Kind.VOICE):
        if not PHONE_RE.match(normalize_phone(address)):
            return ["Enter the number in international format, e.g. +44 20 7946 0958."]
    elif kind in (ContactMethod.Kind.SLACK, ContactMethod.Kind.WEBHOOK):
        try:
            URLValidator(schemes=["http", "https"])(address)
        except ValidationError:
            return ["Enter a full http:// or https:// URL for the webhook."]
    return []


class Urgency(models.TextChoices):
    HIGH = "high", "High urgency"
    LOW = "low", "Low urgency"


class NotificationRule(BaseModel):
    """ "N minutes after I am paged, notify me via contact method X" — per urgency, as PagerDuty."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_rules"
    )
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.HIGH)
    delay_minutes = models.PositiveIntegerField(
        default=0,
        validators=[MinValueValidator(0)],
        help_text="Minutes after you are paged.",
    )
    contact_method = models.ForeignKey(
        ContactMethod, on_delete=models.CASCADE, related_name="notification_rules"
    )

    class Meta:
        ordering = ["user_id", "urgency", "delay_minutes", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "urgency", "delay_minutes", "contact_method"],
                name="notification_rule_unique",
            ),
            models.CheckConstraint(
                condition=Q(delay_minutes__gte=0), name="notification_rule_delay_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(urgency__in=Urgency.values),
                name="notification_rule_urgency_valid",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.get_urgency_display()}: after {self.delay_minutes} min "
            f"via {self.contact_method}"
        )

    def clean(self) -> None:
        super().clean()
        if self.contact_method_id and self.user_id and self.contact_method.user_id != self.user_id:
            raise ValidationError(
                {"contact_method": "Choose one of this person's own contact methods."}
            )
