"""Writes about people and teams. Views, admin, commands and tests all go through these."""

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import transaction
from django.utils.module_loading import import_string
from django.utils.text import slugify

from . import access
from .models import (
    ContactMethod,
    Membership,
    NotificationRule,
    Profile,
    Role,
    Team,
    Urgency,
    normalize_phone,
)

User = get_user_model()


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str = "",
    password: str | None = None,
    display_name: str = "",
    time_zone: str = "UTC",
    phone: str = "",
    is_superuser: bool = False,
) -> AbstractUser:
    """A person with a profile, ready to be put in teams."""
    if is_superuser:
        user = User.objects.create_superuser(username=username, email=email, password=password)
    else:
        user = User.objects.create_user(username=username, email=email, password=password)
    profile = Profile(
        user=user, display_name=display_name, time_zone=time_zone, phone=normalize_phone(phone)
    )
    profile.full_clean(exclude=["user"])
    profile.save()
    return user


def profile_for(user: AbstractUser) -> Profile:
    """The user's profile, made with defaults the first time it is asked for."""
    try:
        return user.profile
    except Profile.DoesNotExist:
        profile, _ = Profile.objects.get_or_create(user=user)
        user.profile = profile
        return profile


@transaction.atomic
def profile_update(*, user: AbstractUser, display_name: str, time_zone: str, phone: str) -> Profile:
    profile = profile_for(user)
    profile.display_name = display_name
    profile.time_zone = time_zone
    profile.phone = normalize_phone(phone)
    profile.full_clean(exclude=["user"])
    profile.save()
    return profile


@transaction.atomic
def team_create(
    *,
    name: str,
    description: str = "",
    members: Iterable[tuple[AbstractUser, str]] = (),
    slug: str | None = None,
) -> Team:
    """A team that can be paged from the first minute: members, then the default schedule,
    escalation policy and service with an events-v2 integration (see `team_setup_defaults`)."""
    team = Team(name=name, slug=slug or slugify(name), description=description)
    team.full_clean()
    team.save()
    for user, role in members:
        membership_set(team=team, user=user, role=role)
    team_setup_defaults(team=team)
    return team


def team_setup_defaults(*, team: Team) -> None:
    """Run the set-up every new team gets (settings.ONCALL_TEAM_SETUP), as PagerDuty does:
    a schedule, an escalation policy (the schedule, then the leads) and a default service."""
    for path in settings.ONCALL_TEAM_SETUP:
        import_string(path)(team=team)


@transaction.atomic
def membership_set(*, team: Team, user: AbstractUser, role: str) -> Membership:
    """Put `user` in `team` with `role`, or change their role there."""
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}")
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    access.forget_roles(user)
    return membership


@transaction.atomic
def membership_remove(*, team: Team, user: AbstractUser) -> None:
    Membership.objects.filter(team=team, user=user).delete()
    access.forget_roles(user)


@transaction.atomic
def api_token_reset(*, user: AbstractUser) -> str:
    """A new REST API token for the user; the old one stops working at once. The key is
    returned to be shown once, and is never logged."""
    from rest_framework.authtoken.models import Token

    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key


@transaction.atomic
def contact_method_create(
    *, user: AbstractUser, kind: str, address: str, label: str = "", verified: bool = False
) -> ContactMethod:
    method = ContactMethod(user=user, kind=kind, address=address, label=label, verified=verified)
    method.full_clean()
    method.save()
    return method


@transaction.atomic
def contact_method_delete(*, method: ContactMethod) -> None:
    """Remove a contact method and the notification rules that used it."""
    method.delete()


@transaction.atomic
def notification_rule_create(
    *, user: AbstractUser, contact_method: ContactMethod, delay_minutes: int, urgency: str
) -> NotificationRule:
    rule = NotificationRule(
        user=user, contact_method=contact_method, delay_minutes=delay_minutes, urgency=urgency
    )
    rule.full_clean()
    rule.save()
    return rule


@transaction.atomic
def notification_rule_delete(*, rule: NotificationRule) -> None:
    rule.delete()


@transaction.atomic
def notification_rules_default(*, user: AbstractUser, contact_method: ContactMethod) -> None:
    """A new person's first rules: straight away on the given method, for both urgencies."""
    for urgency in Urgency.values:
        if not NotificationRule.objects.filter(user=user, urgency=urgency).exists():
            notification_rule_create(
                user=user, contact_method=contact_method, delay_minutes=0, urgency=urgency
            )


def contact_method_send_test(*, method: ContactMethod):
    """Send one test message to a contact method now ("Send a test notification" on the profile
    page), with the sender's timeout, and return its `notify.SendResult`: sent, or failed with
    the provider's answer. Nothing is stored; the person sees the answer at once."""
    from django.urls import reverse

    from . import notify

    name = method.user.get_full_name() or method.user.get_username()
    text = (
        f"This is a test notification from Oncall for {name}, through your "
        f"{method.get_kind_display()} contact method{f' ({method.label})' if method.label else ''}."
        " It works: this is how you will be paged. Nothing is wrong."
    )
    message = notify.Message(
        subject="[Oncall] Test notification",
        text=text,
        url=settings.BASE_URL + reverse("profile:detail"),
        event="test",
        data={"contact_method": method.pk, "kind": method.kind, "user": method.user_id},
    )
    return notify.send(method, message)
