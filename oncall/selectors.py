"""Reads about people: how a person can be reached, for the profile page and the home nudge."""

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef

from .models import ContactMethod, NotificationRule, Urgency


@dataclass(frozen=True)
class Reachability:
    """Whether the portal could page this person at all: the home page nudges until it can."""

    has_contact_method: bool
    has_high_urgency_rule: bool

    @property
    def complete(self) -> bool:
        return self.has_contact_method and self.has_high_urgency_rule


def reachability(*, user: AbstractBaseUser) -> Reachability:
    """One query, whatever the number of methods and rules."""
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            _method=Exists(ContactMethod.objects.filter(user=OuterRef("pk"))),
            _high=Exists(
                NotificationRule.objects.filter(user=OuterRef("pk"), urgency=Urgency.HIGH)
            ),
        )
        .values("_method", "_high")
        .first()
    ) or {"_method": False, "_high": False}
    return Reachability(has_contact_method=row["_method"], has_high_urgency_rule=row["_high"])


@dataclass
class ContactSettings:
    """A person's contact methods and their notification rules by urgency, each by delay."""

    methods: list[ContactMethod]
    rules: dict[str, list[NotificationRule]] = field(default_factory=dict)


def contact_settings(*, user: AbstractBaseUser) -> ContactSettings:
    """Two queries: the methods, then the rules (each with its method)."""
    methods = list(ContactMethod.objects.filter(user=user).order_by("kind", "id"))
    by_id = {m.pk: m for m in methods}
    rules: dict[str, list[NotificationRule]] = {urgency: [] for urgency in Urgency.values}
    for rule in NotificationRule.objects.filter(user=user).order_by(
        "urgency", "delay_minutes", "id"
    ):
        rule.contact_method = by_id.get(rule.contact_method_id) or rule.contact_method
        rules.setdefault(rule.urgency, []).append(rule)
    return ContactSettings(methods=methods, rules=rules)
