"""Writes about services, integrations and escalation policies."""

from collections.abc import Iterable, Sequence

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from oncall.models import Role, Team
from schedules.models import Schedule

from .models import EscalationPolicy, EscalationStep, Integration, Service, new_integration_key

DEFAULT_POLICY_NAME = "Default"


@transaction.atomic
def escalation_policy_create(
    *, team: Team, name: str, description: str = "", repeat_count: int = 0
) -> EscalationPolicy:
    policy = EscalationPolicy(
        team=team, name=name, description=description, repeat_count=repeat_count
    )
    policy.full_clean()
    policy.save()
    return policy


@transaction.atomic
def escalation_step_add(
    *,
    policy: EscalationPolicy,
    delay_minutes: int,
    users: Iterable[AbstractUser] = (),
    schedules: Iterable[Schedule] = (),
    teams: Iterable[Team] = (),
) -> EscalationStep:
    """Append a step to the end of a policy. A step must reach somebody."""
    users, schedules, teams = list(users), list(schedules), list(teams)
    if not (users or schedules or teams):
        raise ValidationError("A step needs at least one target: a user, a schedule or a team.")
    last = policy.steps.order_by("-position").values_list("position", flat=True).first()
    step = EscalationStep(
        policy=policy, delay_minutes=delay_minutes, position=0 if last is None else last + 1
    )
    step.full_clean()
    step.save()
    step.target_users.set(users)
    step.target_schedules.set(schedules)
    step.target_teams.set(teams)
    return step


@transaction.atomic
def service_create(
    *,
    team: Team,
    name: str,
    escalation_policy: EscalationPolicy,
    description: str = "",
    status: str = Service.Status.ACTIVE,
) -> Service:
    service = Service(
        team=team,
        name=name,
        description=description,
        escalation_policy=escalation_policy,
        status=status,
    )
    service.full_clean()
    service_check_pageable(status=status, policy=escalation_policy, team=team)
    service.save()
    return service


@transaction.atomic
def service_update(
    *,
    service: Service,
    name: str | None = None,
    description: str | None = None,
    escalation_policy: EscalationPolicy | None = None,
    status: str | None = None,
) -> Service:
    """Change a service; an active one must still be able to page somebody."""
    service = Service.objects.select_for_update().get(pk=service.pk)
    for field, value in (
        ("name", name),
        ("description", description),
        ("escalation_policy", escalation_policy),
        ("status", status),
    ):
        if value is not None:
            setattr(service, field, value)
    service.full_clean()
    service_check_pageable(
        status=service.status, policy=service.escalation_policy, team=service.team
    )
    service.save()
    return service


def service_check_pageable(
    *,
    status: str,
    policy: EscalationPolicy | None,
    team: Team | None,
    step_count: int | None = None,
) -> None:
    """An active service must be able to page somebody: its policy is the team's and has steps."""
    if policy is None:
        return
    errors: dict[str, list[str]] = {}
    if team is not None and policy.team_id != team.pk:
        errors["escalation_policy"] = ["Choose one of this team's escalation policies."]
    if step_count is None:
        step_count = policy.steps.count() if policy.pk else 0
    if status == Service.Status.ACTIVE and step_count == 0:
        errors.setdefault("escalation_policy", []).append(
            f"“{policy.name}” has no steps, so an active service would page nobody. "
            "Add a step to the policy or choose another one."
        )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def integration_create(*, service: Service, name: str, kind: str) -> Integration:
    """An integration with a fresh random secret key."""
    integration = Integration(service=service, name=name, kind=kind)
    integration.full_clean()
    integration.save()
    return integration


@transaction.atomic
def integration_rotate_key(*, integration: Integration) -> Integration:
    """Give the integration a new secret key. The old one stops working at once."""
    integration = Integration.objects.select_for_update().get(pk=integration.pk)
    integration.key = new_integration_key()
    integration.key_rotated_at = timezone.now()
    integration.save(update_fields=["key", "key_rotated_at", "updated_at"])
    return integration


@transaction.atomic
def team_paging_defaults_create(*, team: Team) -> Service:
    """What a new team gets so that an alert pages somebody from the first minute:
    a "Default" escalation policy — the team's schedule, then its leads (the whole team when it
    has no lead yet) — and a default service with an Events API v2 integration."""
    policy = EscalationPolicy.objects.filter(team=team, name=DEFAULT_POLICY_NAME).first()
    if policy is None:
        policy = escalation_policy_create(
            team=team,
            name=DEFAULT_POLICY_NAME,
            description="Created with the team: the on-call schedule, then the team's leads.",
            repeat_count=1,
        )
        schedules: Sequence[Schedule] = list(team.schedules.order_by("created_at", "id")[:1])
        if schedules:
            escalation_step_add(policy=policy, delay_minutes=15, schedules=schedules)
        leads = [m.user for m in team.memberships.filter(role=Role.LEAD).select_related("user")]
        if leads:
            escalation_step_add(policy=policy, delay_minutes=15, users=leads)
        else:
            escalation_step_add(policy=policy, delay_minutes=15, teams=[team])
    service = Service.objects.filter(team=team).order_by("created_at", "id").first()
    if service is None:
        service = service_create(
            team=team,
            name=f"{team.name} default service",
            description="Created with the team. Point your monitoring at its integration.",
            escalation_policy=policy,
        )
        integration_create(service=service, name="Events API v2", kind=Integration.Kind.EVENTS_V2)
    return service
