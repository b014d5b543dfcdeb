"""Reads of services and incidents for the pages: each a fixed number of queries.

`team_ids` arguments come from `oncall.access`: a set of team ids the reader may see, or None
for "every team" (a superuser).
"""

import statistics
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Prefetch, Q, QuerySet
from django.db.models.functions import Lower

from oncall import access
from oncall.models import Role, Team

from .models import Incident, Integration, Service

TeamIds = Collection[int] | None

OPEN_STATUSES = tuple(Incident.OPEN_STATUSES)

# The incident list's status filters: name → statuses (None: every status).
STATUS_FILTERS: dict[str, tuple[str, ...] | None] = {
    "open": OPEN_STATUSES,
    "triggered": (Incident.Status.TRIGGERED,),
    "acknowledged": (Incident.Status.ACKNOWLEDGED,),
    "resolved": (Incident.Status.RESOLVED,),
    "all": None,
}
DEFAULT_STATUS_FILTER = "open"


def _in_teams(queryset: QuerySet, team_ids: TeamIds, lookup: str) -> QuerySet:
    if team_ids is None:
        return queryset
    return queryset.filter(**{f"{lookup}__in": team_ids})


def _open_incident_count() -> Count:
    return Count("incidents", filter=Q(incidents__status__in=OPEN_STATUSES))


# --- home --------------------------------------------------------------------------------------


@dataclass
class TeamOverview:
    """One team on the home page. `services` is empty when the reader may not see them
    (an observer of the team): observers get the team's name and a way to its reports."""

    team: Team
    role: str | None
    can_read: bool
    services: list[Service] = field(default_factory=list)

    @property
    def open_incidents(self) -> int:
        return sum(service.open_incidents for service in self.services)

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role else ""


def team_overview(*, user: AbstractBaseUser) -> list[TeamOverview]:
    """The reader's teams (every team for a superuser), each with its services and their open
    incident counts. Two queries (after the reader's roles, which are cached per request)."""
    member_of = access.team_ids(user)
    if user.is_superuser:
        teams = Team.objects.all()
    else:
        teams = Team.objects.filter(pk__in=member_of)
    readable = access.visible_team_ids(user)
    overview = {
        team.pk: TeamOverview(
            team=team,
            role=_role_in(user, team.pk),
            can_read=readable is None or team.pk in readable,
        )
        for team in teams.order_by(Lower("name"), "id")
    }
    readable_here = [tid for tid, row in overview.items() if row.can_read]
    services = (
        Service.objects.filter(team_id__in=readable_here)
        .annotate(open_incidents=_open_incident_count())
        .order_by(Lower("name"), "id")
    )
    for service in services:
        overview[service.team_id].services.append(service)
    return list(overview.values())


def _role_in(user: AbstractBaseUser, team_id: int) -> str | None:
    for role in Role.values:
        if team_id in access.team_ids(user, role):
            return role
    return None


# --- services ----------------------------------------------------------------------------------


def service_list(*, team_ids: TeamIds) -> list[Service]:
    """Services with team, escalation policy, open incident count and integrations: two queries."""
    services = (
        _in_teams(Service.objects.all(), team_ids, "team_id")
        .select_related("team", "escalation_policy")
        .annotate(open_incidents=_open_incident_count())
        .prefetch_related(
            Prefetch("integrations", queryset=Integration.objects.order_by(Lower("name"), "id"))
        )
        .order_by(Lower("team__name"), "team_id", Lower("name"), "id")
    )
    return list(services)


# --- incidents ---------------------------------------------------------------------------------


def incident_counts(*, team_ids: TeamIds) -> dict[str, int]:
    """How many incidents of the teams are in each status, plus "open" and "all": one query."""
    counts = _in_teams(Incident.objects.all(), team_ids, "service__team_id").aggregate(
        **{status: Count("id", filter=Q(status=status)) for status in Incident.Status.values}
    )
    counts = {status: counts[status] or 0 for status in Incident.Status.values}
    counts["open"] = sum(counts[status] for status in OPEN_STATUSES)
    counts["all"] = sum(counts[status] for status in Incident.Status.values)
    return counts


def incident_list(*, team_ids: TeamIds, status_filter: str = DEFAULT_STATUS_FILTER) -> QuerySet:
    """The teams' incidents, newest first, with service and team; lazy, for a paginator."""
    statuses = STATUS_FILTERS[status_filter]
    incidents = _in_teams(Incident.objects.all(), team_ids, "service__team_id")
    if statuses is not None:
        incidents = incidents.filter(status__in=statuses)
    return incidents.select_related("service__team").order_by("-triggered_at", "-id")


# --- reports -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseStats:
    """Counts and response times of a set of incidents. MTTA runs from triggered to acknowledged
    (incidents that were acknowledged), MTTR from triggered to resolved (incidents resolved);
    None where there is nothing to measure."""

    incidents: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mtta_mean: timedelta | None = None
    mtta_median: timedelta | None = None
    mttr_mean: timedelta | None = None
    mttr_median: timedelta | None = None


@dataclass
class _Durations:
    incidents: int = 0
    to_acknowledge: list[float] = field(default_factory=list)
    to_resolve: list[float] = field(default_factory=list)

    def add(self, triggered_at, acknowledged_at, resolved_at) -> None:
        self.incidents += 1
        if acknowledged_at is not None:
            self.to_acknowledge.append((acknowledged_at - triggered_at).total_seconds())
        if resolved_at is not None:
            self.to_resolve.append((resolved_at - triggered_at).total_seconds())

    def stats(self) -> ResponseStats:
        return ResponseStats(
            incidents=self.incidents,
            acknowledged=len(self.to_acknowledge),
            resolved=len(self.to_resolve),
            mtta_mean=_seconds(statistics.fmean, self.to_acknowledge),
            mtta_median=_seconds(statistics.median, self.to_acknowledge),
            mttr_mean=_seconds(statistics.fmean, self.to_resolve),
            mttr_median=_seconds(statistics.median, self.to_resolve),
        )


def _seconds(function, values: list[float]) -> timedelta | None:
    return timedelta(seconds=function(values)) if values else None


@dataclass(frozen=True)
class ServiceReport:
    service_id: int
    name: str
    stats: ResponseStats


@dataclass(frozen=True)
class TeamReport:
    team_id: int
    name: str
    stats: ResponseStats
    services: list[ServiceReport]


@dataclass(frozen=True)
class ResponseReport:
    start: datetime
    end: datetime
    teams: list[TeamReport]
    total: ResponseStats


def response_report(*, team_ids: TeamIds, start: datetime, end: datetime) -> ResponseReport:
    """MTTA, MTTR and counts of the incidents triggered in [start, end), per team and per
    service (those without incidents too), and over all of them.

    Three queries whatever the number of teams, services and incidents: teams, services, then
    the incidents' milestone timestamps, from which the durations are derived here."""
    teams = list(
        _in_teams(Team.objects.all(), team_ids, "pk")
        .order_by(Lower("name"), "id")
        .values("id", "name")
    )
    services = list(
        _in_teams(Service.objects.all(), team_ids, "team_id")
        .order_by(Lower("name"), "id")
        .values("id", "name", "team_id")
    )
    incidents = _in_teams(
        Incident.objects.filter(triggered_at__gte=start, triggered_at__lt=end),
        team_ids,
        "service__team_id",
    ).values_list("service_id", "triggered_at", "acknowledged_at", "resolved_at")

    team_of = {service["id"]: service["team_id"] for service in services}
    by_service: dict[int, _Durations] = {service["id"]: _Durations() for service in services}
    by_team: dict[int, _Durations] = {team["id"]: _Durations() for team in teams}
    total = _Durations()
    for service_id, triggered_at, acknowledged_at, resolved_at in incidents.iterator():
        for bucket in (
            by_service.get(service_id),
            by_team.get(team_of.get(service_id)),
            total,
        ):
            if bucket is not None:
                bucket.add(triggered_at, acknowledged_at, resolved_at)

    services_of: dict[int, list[ServiceReport]] = {team["id"]: [] for team in teams}
    for service in services:
        services_of.setdefault(service["team_id"], []).append(
            ServiceReport(
                service_id=service["id"],
                name=service["name"],
                stats=by_service[service["id"]].stats(),
            )
        )
    return ResponseReport(
        start=start,
        end=end,
        teams=[
            TeamReport(
                team_id=team["id"],
                name=team["name"],
                stats=by_team[team["id"]].stats(),
                services=services_of[team["id"]],
            )
            for team in teams
        ],
        total=total.stats(),
    )
