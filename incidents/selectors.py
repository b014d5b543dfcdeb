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


def role_in(user: AbstractBaseUser, team_id: int) -> str | None:
    """The reader's role in the team (lead, responder, observer), or None."""
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


# The incident list page reads through incidents/list_selectors.py; STATUS_FILTERS above stays
# here, shared with the REST API's `status` parameter.


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
class Durations:
    """Counts and durations (seconds) of some incidents, turned into ResponseStats."""

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
    by_service: dict[int, Durations] = {service["id"]: Durations() for service in services}
    by_team: dict[int, Durations] = {team["id"]: Durations() for team in teams}
    total = Durations()
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


# --- REST API ----------------------------------------------------------------------------------
# The API's reads. Team visibility comes from `oncall.access`, as for the pages.


def incident_for_user(*, user: AbstractBaseUser, pk: int, for_write: bool = False) -> Incident:
    """The incident `pk` as the API shows it, if the user may see it — and, with `for_write`,
    act on it: today the same people, its team's leads and responders, and superusers.

    An observer of its team gets PermissionDenied (403), anybody else Http404, as for a missing
    incident. One query (the incident with its service); `incident_api_queryset` loads what the
    API shows of it."""
    from django.http import Http404

    incident = Incident.objects.select_related("service").filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident.")
    access.require_operational(user, incident.service.team_id)
    return incident


def _users_with_profiles() -> QuerySet:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.select_related("profile")


def incident_api_queryset() -> QuerySet:
    """Incidents with what the API shows of each, in a fixed number of queries however many:
    service, team and milestone people joined, the last step that paged people as annotations,
    the assignees (with their profiles) prefetched. Newest first."""
    from django.db.models import OuterRef, Subquery

    from .models import Page

    last_page = Page.objects.filter(incident=OuterRef("pk")).order_by("-paged_at", "-id")
    return (
        Incident.objects.select_related(
            "service__team", "acknowledged_by__profile", "resolved_by__profile"
        )
        .annotate(
            last_paged_step=Subquery(last_page.values("step")[:1]),
            last_paged_loop=Subquery(last_page.values("loop")[:1]),
        )
        .prefetch_related(
            Prefetch("assignees", queryset=_users_with_profiles().order_by("username", "id"))
        )
        .order_by("-triggered_at", "-id")
    )


def team_for_reader(value: str, team_ids: TeamIds) -> Team | None:
    """The team named by `value` (its id or its slug) among `team_ids` (None: every team), or
    None when there is no such team there. One query."""
    value = (value or "").strip()
    if not value:
        return None
    lookup = Q(slug=value)
    if value.isascii() and value.isdigit() and len(value) <= 18:
        lookup |= Q(pk=int(value))
    return _in_teams(Team.objects.filter(lookup), team_ids, "pk").order_by("pk").first()


def incident_search(
    *,
    team_ids: TeamIds,
    statuses: Collection[str] | None = None,
    team_id: int | None = None,
    service_ids: Collection[int] | None = None,
    urgency: str | None = None,
    assigned_to: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet:
    """The incidents of `team_ids` matching every filter given, newest first; lazy, for a
    paginator. `since` (inclusive) and `until` (exclusive) bound the time it was triggered."""
    incidents = _in_teams(incident_api_queryset(), team_ids, "service__team_id")
    if statuses is not None:
        incidents = incidents.filter(status__in=statuses)
    if team_id is not None:
        incidents = incidents.filter(service__team_id=team_id)
    if service_ids is not None:
        incidents = incidents.filter(service_id__in=service_ids)
    if urgency is not None:
        incidents = incidents.filter(urgency=urgency)
    if assigned_to is not None:
        incidents = incidents.filter(assignees=assigned_to)
    if since is not None:
        incidents = incidents.filter(triggered_at__gte=since)
    if until is not None:
        incidents = incidents.filter(triggered_at__lt=until)
    return incidents


def incident_timeline(*, incident: Incident) -> QuerySet:
    from .models import TimelineEntry

    return (
        TimelineEntry.objects.filter(incident=incident)
        .select_related("actor__profile")
        .order_by("at", "id")
    )


def incident_notifications(*, incident: Incident) -> QuerySet:
    from .models import Notification

    return (
        Notification.objects.filter(incident=incident)
        .select_related("user__profile", "contact_method", "page")
        .order_by("due_at", "id")
    )


def incident_alerts(*, incident: Incident) -> QuerySet:
    from .models import Alert

    return (
        Alert.objects.filter(incident=incident)
        .select_related("integration")
        .order_by("-received_at", "-id")
    )


def service_api_queryset(*, team_ids: TeamIds, team_id: int | None = None) -> QuerySet:
    """Services with team, escalation policy, open incident count and integrations: two
    queries however many. Ordered by team, then name."""
    services = (
        _in_teams(Service.objects.all(), team_ids, "team_id")
        .select_related("team", "escalation_policy")
        .annotate(open_incidents=_open_incident_count())
        .prefetch_related(
            Prefetch("integrations", queryset=Integration.objects.order_by(Lower("name"), "id"))
        )
        .order_by(Lower("team__name"), "team_id", Lower("name"), "id")
    )
    if team_id is not None:
        services = services.filter(team_id=team_id)
    return services


def escalation_policy_api_queryset(*, team_ids: TeamIds, team_id: int | None = None) -> QuerySet:
    """Escalation policies with their team, their steps in order with each step's users,
    schedules and teams, and the services using them: seven queries however many."""
    from schedules.models import Schedule

    from .models import EscalationPolicy, EscalationStep

    steps = EscalationStep.objects.order_by("position", "id").prefetch_related(
        Prefetch("target_users", queryset=_users_with_profiles().order_by("username", "id")),
        Prefetch("target_schedules", queryset=Schedule.objects.order_by(Lower("name"), "id")),
        Prefetch("target_teams", queryset=Team.objects.order_by(Lower("name"), "id")),
    )
    policies = (
        _in_teams(EscalationPolicy.objects.all(), team_ids, "team_id")
        .select_related("team")
        .prefetch_related(
            Prefetch("steps", queryset=steps),
            Prefetch("services", queryset=Service.objects.order_by(Lower("name"), "id")),
        )
        .order_by(Lower("team__name"), "team_id", Lower("name"), "id")
    )
    if team_id is not None:
        policies = policies.filter(team_id=team_id)
    return policies


# --- MTTA / MTTR with percentiles --------------------------------------------------------------


def percentile(values: Collection[float], fraction: float) -> float | None:
    """The `fraction` (0–1) percentile of `values` by linear interpolation between the closest
    ranks (numpy's default, Excel's PERCENTILE.INC): p90 of 1…10 is 9.1. None for no values."""
    if not values:
        return None
    if not 0 <= fraction <= 1:
        raise ValueError("fraction must be between 0 and 1")
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class DurationStats:
    """Mean, median and 90th percentile of some durations; all None when there are none."""

    count: int = 0
    mean: timedelta | None = None
    median: timedelta | None = None
    p90: timedelta | None = None

    @classmethod
    def of(cls, seconds: list[float]) -> "DurationStats":
        if not seconds:
            return cls()
        return cls(
            count=len(seconds),
            mean=timedelta(seconds=statistics.fmean(seconds)),
            median=timedelta(seconds=statistics.median(seconds)),
            p90=timedelta(seconds=percentile(seconds, 0.9)),
        )


@dataclass(frozen=True)
class ResponseTimes:
    """Counts, MTTA (triggered → first acknowledged, over the incidents acknowledged) and MTTR
    (triggered → resolved, over the incidents resolved) of a set of incidents."""

    incidents: int
    acknowledged: int
    resolved: int
    mtta: DurationStats
    mttr: DurationStats


@dataclass(frozen=True)
class ServiceResponseTimes:
    service_id: int
    name: str
    times: ResponseTimes


@dataclass(frozen=True)
class TeamResponseTimes:
    team_id: int
    name: str
    slug: str
    times: ResponseTimes
    services: list[ServiceResponseTimes]


@dataclass(frozen=True)
class ResponseTimesReport:
    start: datetime
    end: datetime
    teams: list[TeamResponseTimes]
    total: ResponseTimes


def _response_times(durations: Durations) -> ResponseTimes:
    return ResponseTimes(
        incidents=durations.incidents,
        acknowledged=len(durations.to_acknowledge),
        resolved=len(durations.to_resolve),
        mtta=DurationStats.of(durations.to_acknowledge),
        mttr=DurationStats.of(durations.to_resolve),
    )


def response_times(
    *, team_ids: TeamIds, start: datetime, end: datetime, team_id: int | None = None
) -> ResponseTimesReport:
    """MTTA and MTTR (mean, median, p90) and counts of the incidents triggered in [start, end),
    per team, per service (those without incidents too) and over all of them; only `team_id`
    when given. Teams without services are listed with zeros.

    Two queries whatever the number of teams, services and incidents: the teams joined to their
    services, then the incidents' milestone timestamps; the maths is done here."""
    teams_query = _in_teams(Team.objects.all(), team_ids, "pk")
    incidents_query = _in_teams(
        Incident.objects.filter(triggered_at__gte=start, triggered_at__lt=end),
        team_ids,
        "service__team_id",
    )
    if team_id is not None:
        teams_query = teams_query.filter(pk=team_id)
        incidents_query = incidents_query.filter(service__team_id=team_id)
    rows = teams_query.order_by(
        Lower("name"), "id", Lower("services__name"), "services__id"
    ).values_list("id", "name", "slug", "services__id", "services__name")

    teams: dict[int, tuple[str, str]] = {}
    services_of: dict[int, list[tuple[int, str]]] = {}
    team_of: dict[int, int] = {}
    for tid, name, slug, service_id, service_name in rows:
        teams.setdefault(tid, (name, slug))
        services_of.setdefault(tid, [])
        if service_id is not None:
            services_of[tid].append((service_id, service_name))
            team_of[service_id] = tid

    by_service = {service_id: Durations() for service_id in team_of}
    by_team = {tid: Durations() for tid in teams}
    total = Durations()
    for service_id, triggered_at, acknowledged_at, resolved_at in incidents_query.values_list(
        "service_id", "triggered_at", "acknowledged_at", "resolved_at"
    ).iterator():
        for bucket in (by_service.get(service_id), by_team.get(team_of.get(service_id)), total):
            if bucket is not None:
                bucket.add(triggered_at, acknowledged_at, resolved_at)

    return ResponseTimesReport(
        start=start,
        end=end,
        teams=[
            TeamResponseTimes(
                team_id=tid,
                name=name,
                slug=slug,
                times=_response_times(by_team[tid]),
                services=[
                    ServiceResponseTimes(
                        service_id=service_id,
                        name=service_name,
                        times=_response_times(by_service[service_id]),
                    )
                    for service_id, service_name in services_of[tid]
                ],
            )
            for tid, (name, slug) in teams.items()
        ],
        total=_response_times(total),
    )
