"""Reads behind the reports page and its CSV: response times by ISO week, incidents per service
and the noisiest alert sources. Each a fixed number of queries whatever the amount of data.

Weeks are ISO weeks (Monday to Sunday) in the reader's time zone: an incident triggered at
23:30 UTC on a Sunday belongs to the next week for a reader in Tokyo. The durations are derived
from the incidents' stored milestones (triggered → acknowledged, triggered → resolved), as in
`incidents.selectors.response_report`, whose `ResponseStats` these reads return too.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from django.db.models import Count, Max, Q, Value
from django.db.models.functions import Coalesce, Lower, NullIf

from oncall.models import Team

from .models import Alert, Incident
from .selectors import Durations, ResponseStats

TeamIds = Collection[int] | None

# How many rows the "noisiest sources" tables show.
NOISY_LIMIT = 10


@dataclass(frozen=True)
class Week:
    """An ISO week: its Monday, and a label like "2025-W19"."""

    monday: date

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    @property
    def label(self) -> str:
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def short_label(self) -> str:
        """ "5 May": the Monday, for the chart's axis."""
        return f"{self.monday.day} {self.monday:%b}"


def weeks_between(start: date, end: date) -> list[Week]:
    """The ISO weeks that overlap the days start…end (both included), in order."""
    if end < start:
        return []
    monday = start - timedelta(days=start.weekday())
    weeks = []
    while monday <= end:
        weeks.append(Week(monday))
        monday += timedelta(days=7)
    return weeks


def week_of(moment: datetime, zone: tzinfo) -> date:
    """The Monday of the ISO week holding `moment` in `zone`."""
    local = moment.astimezone(zone).date()
    return local - timedelta(days=local.weekday())


@dataclass(frozen=True)
class ServiceWeekly:
    service_id: int
    name: str
    stats: ResponseStats  # over the whole range
    weekly: list[ResponseStats]  # one per week of the report, in order


@dataclass(frozen=True)
class TeamWeekly:
    team_id: int
    name: str
    stats: ResponseStats
    weekly: list[ResponseStats]
    services: list[ServiceWeekly]


@dataclass(frozen=True)
class WeeklyReport:
    """Response times over [start, end] (local days, both included) per team and per service,
    for the whole range and for each ISO week of it."""

    start: date
    end: date
    weeks: list[Week]
    teams: list[TeamWeekly]
    total: ResponseStats
    total_weekly: list[ResponseStats]

    @property
    def incidents(self) -> int:
        return self.total.incidents


def day_bounds(start: date, end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """[start 00:00, the day after end 00:00) in `zone`: the instants of the local days."""
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def _in_teams(queryset, team_ids: TeamIds, lookup: str):
    return queryset if team_ids is None else queryset.filter(**{f"{lookup}__in": team_ids})


def weekly_report(*, team_ids: TeamIds, start: date, end: date, zone: tzinfo) -> WeeklyReport:
    """MTTA, MTTR and counts of the incidents triggered on the local days start…end, per team
    and per service (those without incidents too), over the range and per ISO week.

    Two queries whatever the number of teams, services, weeks and incidents: the teams joined
    to their services, then the incidents' milestone timestamps."""
    weeks = weeks_between(start, end)
    week_index = {week.monday: i for i, week in enumerate(weeks)}
    begin, finish = day_bounds(start, end, zone)
    rows = (
        _in_teams(Team.objects.all(), team_ids, "pk")
        .order_by(Lower("name"), "id", Lower("services__name"), "services__id")
        .values_list("id", "name", "services__id", "services__name")
    )
    teams: dict[int, str] = {}
    services_of: dict[int, list[tuple[int, str]]] = {}
    team_of: dict[int, int] = {}
    for team_id, name, service_id, service_name in rows:
        teams.setdefault(team_id, name)
        services_of.setdefault(team_id, [])
        if service_id is not None:
            services_of[team_id].append((service_id, service_name))
            team_of[service_id] = team_id

    def buckets() -> tuple[Durations, list[Durations]]:
        return Durations(), [Durations() for _ in weeks]

    by_service = {service_id: buckets() for service_id in team_of}
    by_team = {team_id: buckets() for team_id in teams}
    total = buckets()
    incidents = _in_teams(
        Incident.objects.filter(triggered_at__gte=begin, triggered_at__lt=finish),
        team_ids,
        "service__team_id",
    ).values_list("service_id", "triggered_at", "acknowledged_at", "resolved_at")
    for service_id, triggered_at, acknowledged_at, resolved_at in incidents.iterator():
        index = week_index.get(week_of(triggered_at, zone))
        for bucket in (by_service.get(service_id), by_team.get(team_of.get(service_id)), total):
            if bucket is None:
                continue
            bucket[0].add(triggered_at, acknowledged_at, resolved_at)
            if index is not None:
                bucket[1][index].add(triggered_at, acknowledged_at, resolved_at)

    def weekly(bucket) -> list[ResponseStats]:
        return [times.stats() for times in bucket[1]]

    return WeeklyReport(
        start=start,
        end=end,
        weeks=weeks,
        teams=[
            TeamWeekly(
                team_id=team_id,
                name=name,
                stats=by_team[team_id][0].stats(),
                weekly=weekly(by_team[team_id]),
                services=[
                    ServiceWeekly(
                        service_id=service_id,
                        name=service_name,
                        stats=by_service[service_id][0].stats(),
                        weekly=weekly(by_service[service_id]),
                    )
                    for service_id, service_name in services_of[team_id]
                ],
            )
            for team_id, name in teams.items()
        ],
        total=total[0].stats(),
        total_weekly=weekly(total),
    )


# --- the noisiest alert sources ---------------------------------------------------------------


@dataclass(frozen=True)
class NoisyIntegration:
    integration_id: int
    name: str
    kind: str
    service_id: int
    service_name: str
    team_name: str
    alerts: int


@dataclass(frozen=True)
class NoisyKey:
    """Alerts grouped by what they are about: their dedup key, or their summary when they came
    without one."""

    key: str
    is_dedup_key: bool
    title: str  # a summary seen under that key (the alphabetically last one)
    service_id: int
    service_name: str
    team_name: str
    alerts: int


@dataclass(frozen=True)
class NoisySources:
    integrations: list[NoisyIntegration]
    keys: list[NoisyKey]

    @property
    def empty(self) -> bool:
        return not self.integrations and not self.keys


def noisy_sources(
    *, team_ids: TeamIds, start: datetime, end: datetime, limit: int = NOISY_LIMIT
) -> NoisySources:
    """The integrations and the dedup keys (or alert summaries) that sent the most alerts
    received in [start, end), with their service: two queries, each over an index on the
    alerts' arrival time. Alerts of a deleted integration belong to no team and are left out."""
    from .models import Integration

    alerts = _in_teams(
        Alert.objects.filter(
            received_at__gte=start, received_at__lt=end, integration__isnull=False
        ),
        team_ids,
        "integration__service__team_id",
    )
    kinds = dict(Integration.Kind.choices)
    integrations = [
        NoisyIntegration(
            integration_id=row["integration_id"],
            name=row["integration__name"],
            kind=kinds.get(row["integration__kind"], row["integration__kind"]),
            service_id=row["integration__service_id"],
            service_name=row["integration__service__name"],
            team_name=row["integration__service__team__name"],
            alerts=row["alerts"],
        )
        for row in alerts.values(
            "integration_id",
            "integration__name",
            "integration__kind",
            "integration__service_id",
            "integration__service__name",
            "integration__service__team__name",
        )
        .annotate(alerts=Count("id"))
        .order_by("-alerts", Lower("integration__name"), "integration_id")[:limit]
    ]
    keyed = (
        alerts.annotate(
            about=Coalesce(NullIf("dedup_key", Value("")), NullIf("summary", Value("")))
        )
        .filter(about__isnull=False)
        .values(
            "about",
            "integration__service_id",
            "integration__service__name",
            "integration__service__team__name",
        )
        .annotate(
            alerts=Count("id"),
            title=Max("summary"),
            with_key=Count("id", filter=~Q(dedup_key="")),
        )
        .order_by("-alerts", "about", "integration__service_id")[:limit]
    )
    keys = [
        NoisyKey(
            key=row["about"],
            is_dedup_key=row["with_key"] > 0,
            title=row["title"] or "",
            service_id=row["integration__service_id"],
            service_name=row["integration__service__name"],
            team_name=row["integration__service__team__name"],
            alerts=row["alerts"],
        )
        for row in keyed
    ]
    return NoisySources(integrations=integrations, keys=keys)
