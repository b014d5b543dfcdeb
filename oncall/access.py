"""Who may see and change what: the one place team visibility is decided (docs/permissions.md).

Roles come from memberships: a lead edits their teams' objects in the admin, a responder acts on
their teams' incidents, an observer reads published postmortems and reports. Superusers may do
everything. Results are cached on the user object for the length of a request.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from .models import Membership, Role, Team

AnyUser = AbstractBaseUser | AnonymousUser


def _roles(user: AnyUser) -> dict[int, str]:
    """{team id: role} for the user, read once per user object."""
    if not user.is_authenticated:
        return {}
    cached = getattr(user, "_oncall_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        user._oncall_roles = cached
    return cached


def forget_roles(user: AnyUser) -> None:
    """Drop the cached roles after a membership of this user changed."""
    if hasattr(user, "_oncall_roles"):
        del user._oncall_roles


def team_ids(user: AnyUser, *roles: str) -> set[int]:
    """Ids of the teams where the user holds one of `roles` (any role when none are given)."""
    return {tid for tid, role in _roles(user).items() if not roles or role in roles}


def lead_team_ids(user: AnyUser) -> set[int]:
    return team_ids(user, Role.LEAD)


def acting_team_ids(user: AnyUser) -> set[int]:
    """Teams whose incidents the user may act on: where they lead or respond."""
    return team_ids(user, Role.LEAD, Role.RESPONDER)


def is_lead(user: AnyUser, team: Team | int | None = None) -> bool:
    """Lead of `team`, or of any team when no team is given."""
    if team is None:
        return bool(lead_team_ids(user))
    return _team_id(team) in lead_team_ids(user)


def can_administer(user: AnyUser) -> bool:
    """May open the admin at all: superusers, staff and team leads."""
    return bool(user.is_active and (user.is_superuser or user.is_staff or is_lead(user)))


def can_edit_team(user: AnyUser, team: Team | int) -> bool:
    return bool(user.is_superuser or is_lead(user, team))


def can_act_on_team(user: AnyUser, team: Team | int) -> bool:
    """May act on the team's incidents: acknowledge, escalate, resolve, add notes."""
    return bool(user.is_superuser or _team_id(team) in acting_team_ids(user))


def can_read_team(user: AnyUser, team: Team | int) -> bool:
    """May see the team's services, schedules and incidents (observers may not)."""
    return can_act_on_team(user, team)


def is_observer_only(user: AnyUser) -> bool:
    """An executive: member of teams only as an observer, so reads reports and postmortems only."""
    roles = set(_roles(user).values())
    return not user.is_superuser and roles == {Role.OBSERVER}


def visible_team_ids(user: AnyUser) -> set[int] | None:
    """Teams whose operational data the user sees; None means all (superuser)."""
    if user.is_superuser:
        return None
    return acting_team_ids(user)


def _team_id(team: Team | int) -> int:
    return team if isinstance(team, int) else team.pk


OBSERVER_REASON = (
    "Observers read their teams' reports and published postmortems. Services, incidents and "
    "escalation policies are for the teams' leads and responders."
)


def require_operational(user: AnyUser, team: Team | int) -> None:
    """For one object of a team's operational side (a service, incident or escalation policy):
    return if the user may see it and act on it; raise PermissionDenied (403, saying why) for an
    observer of the team, and Http404 for anybody else, so that another team's object answers
    exactly as a missing one does."""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    if can_act_on_team(user, team):
        return
    if _team_id(team) in team_ids(user):
        raise PermissionDenied(OBSERVER_REASON)
    raise Http404("No such object.")
