"""Reads behind the home dashboard and the services page: each a fixed number of queries.

The dashboard answers what an engineer asks first: who is on call now and who takes over
next, what is assigned to me, and which services have open incidents. The services page adds
what is needed to wire a monitoring tool to a service (endpoints, keys for those who may see
them) and how the built-in monitors (heartbeats, HTTP checks) are doing.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Prefetch, Q, QuerySet, Window
from django.db.models.functions import Lower, RowNumber
from django.urls import reverse

from oncall import access
from oncall.models import Role, Team
from schedules import selectors as schedule_selectors
from schedules import timeline
from schedules.models import Schedule

from .models import Incident, Integration, Service
from .selectors import role_in

TeamIds = Collection[int] | None

OPEN_STATUSES = tuple(Incident.OPEN_STATUSES)

# How far ahead the dashboard looks for the next handoff. A weekly rotation hands off within a
# week; past this, the page says "no handoff in the next 5 weeks" (a one-person rotation).
NEXT_HANDOFF_HORIZON = timedelta(days=35)

# How many of a reader's open incidents the dashboard lists (the total is always shown).
MY_INCIDENTS_LIMIT = 10
# How many of a service's newest open incidents the services page lists.
SERVICE_INCIDENTS_LIMIT = 3


def _in_teams(queryset: QuerySet, team_ids: TeamIds, lookup: str) -> QuerySet:
    return queryset if team_ids is None else queryset.filter(**{f"{lookup}__in": team_ids})


# --- home ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnCall:
    """Who is on call on one schedule now, and the next handoff. `now_until` is None when the
    current person stays past the horizon; `next_name`/`next_from` are None when no handoff is
    known before it (or when a gap follows the current shift: `gap_next`)."""

    schedule_id: int
    schedule_name: str
    now_name: str | None
    now_until: datetime | None
    next_name: str | None
    next_from: datetime | None
    gap_next: bool = False


@dataclass
class TeamPanel:
    """One team on the home page. Operational parts (`services`, `on_call`) stay empty for a
    team the reader only observes."""

    team: Team
    role: str | None
    can_read: bool
    services: list[Service] = field(default_factory=list)
    on_call: list[OnCall] = field(default_factory=list)

    @property
    def open_incidents(self) -> int:
        return sum(service.open_incidents for service in self.services)

    @property
    def role_label(self) -> str:
        return Role(self.role).label if self.role else ""


def home_panels(*, user: AbstractBaseUser, now: datetime) -> list[TeamPanel]:
    """The reader's teams (every team for a superuser), each with its services and their
    triggered / acknowledged counts, and who is on call on each schedule now and next.

    Seven queries at most (after the reader's roles, cached per request), whatever the number
    of teams, services, schedules, rotations and incidents: teams, services with counts,
    schedules, their rotations (three), the names of the people on call."""
    teams = (
        Team.objects.all()
        if user.is_superuser
        else Team.objects.filter(pk__in=access.team_ids(user))
    )
    readable = access.visible_team_ids(user)
    panels = {
        team.pk: TeamPanel(
            team=team,
            role=role_in(user, team.pk),
            can_read=readable is None or team.pk in readable,
        )
        for team in teams.order_by(Lower("name"), "id")
    }
    readable_here = [team_id for team_id, panel in panels.items() if panel.can_read]
    if not readable_here:
        return list(panels.values())
    services = (
        Service.objects.filter(team_id__in=readable_here)
        .annotate(
            triggered=Count("incidents", filter=Q(incidents__status=Incident.Status.TRIGGERED)),
            acknowledged=Count(
                "incidents", filter=Q(incidents__status=Incident.Status.ACKNOWLEDGED)
            ),
        )
        .order_by(Lower("name"), "id")
    )
    for service in services:
        service.open_incidents = service.triggered + service.acknowledged
        panels[service.team_id].services.append(service)
    for team_id, on_call in on_call_by_team(team_ids=readable_here, now=now).items():
        panels[team_id].on_call = on_call
    return list(panels.values())


def on_call_by_team(*, team_ids: Collection[int], now: datetime) -> dict[int, list[OnCall]]:
    """{team id: who is on call now and next on each of its schedules}: five queries for any
    number of schedules (schedules, three for the rotations, one for the names)."""
    end = now + NEXT_HANDOFF_HORIZON
    schedules = schedule_selectors.schedules_with_rotations(
        Schedule.objects.filter(team_id__in=team_ids).order_by(Lower("name"), "id"), now, end
    )
    found: list[tuple[Schedule, timeline.Stretch | None, timeline.Stretch | None, bool]] = []
    for schedule in schedules:
        final = schedule_selectors.final_schedule(schedule, now, end)
        current, following = timeline.now_and_next(final.shifts, now, end)
        # A gap right after the current shift: the next handoff is to nobody.
        gap_next = current is not None and current.end is not None and following is None
        found.append((schedule, current, following, gap_next))
    user_ids = {s.user_id for _, c, f, _ in found for s in (c, f) if s is not None}
    people = schedule_selectors.people(user_ids) if user_ids else {}

    def name(stretch: timeline.Stretch | None) -> str | None:
        if stretch is None:
            return None
        person = people.get(stretch.user_id)
        return person.name if person is not None else f"User {stretch.user_id}"

    result: dict[int, list[OnCall]] = {team_id: [] for team_id in team_ids}
    for schedule, current, following, gap_next in found:
        result.setdefault(schedule.team_id, []).append(
            OnCall(
                schedule_id=schedule.pk,
                schedule_name=schedule.name,
                now_name=name(current),
                now_until=current.end if current is not None else None,
                next_name=name(following),
                next_from=following.start if following is not None else None,
                gap_next=gap_next,
            )
        )
    return result


@dataclass(frozen=True)
class MyIncidents:
    incidents: list[Incident]
    total: int


def my_open_incidents(
    *, user: AbstractBaseUser, team_ids: TeamIds, limit: int = MY_INCIDENTS_LIMIT
) -> MyIncidents:
    """The open incidents assigned to the reader in the teams they may see, newest first (at
    most `limit`), and how many there are in all: one query (the total is a window count)."""
    rows = list(
        _in_teams(
            Incident.objects.filter(assignees=user, status__in=OPEN_STATUSES),
            team_ids,
            "service__team_id",
        )
        .select_related("service__team")
        .annotate(total=Window(Count("id")))
        .order_by("-triggered_at", "-id")[:limit]
    )
    return MyIncidents(incidents=rows, total=rows[0].total if rows else 0)


# --- services -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where a monitoring tool sends alerts to an integration, as the services page shows it.
    `url` holds the key only when the reader may see keys; `masked_url` never does."""

    url: str
    masked_url: str
    key_in_body: bool  # Events API v2: the key goes in the JSON body as routing_key
    method: str


_KEY_PLACEHOLDER = "KEY-PLACEHOLDER"


def integration_endpoint(integration: Integration, *, show_key: bool) -> Endpoint | None:
    """The absolute ingest URL of the integration (from settings.BASE_URL); None for an HTTP
    check, which the portal runs itself and which receives nothing."""
    base = settings.BASE_URL
    kind = integration.kind
    if kind == Integration.Kind.EVENTS_V2:
        url = base + reverse("events-v2-enqueue")
        return Endpoint(url=url, masked_url=url, key_in_body=True, method="POST")
    names = {
        Integration.Kind.ALERTMANAGER: "ingest:alertmanager",
        Integration.Kind.WEBHOOK: "ingest:webhook",
        Integration.Kind.HEARTBEAT: "ingest:heartbeat",
    }
    if kind not in names:
        return None
    masked = base + reverse(names[kind], args=[_KEY_PLACEHOLDER])
    masked = masked.replace(_KEY_PLACEHOLDER, integration.key_hint)
    url = base + reverse(names[kind], args=[integration.key]) if show_key else masked
    method = "GET or POST" if kind == Integration.Kind.HEARTBEAT else "POST"
    return Endpoint(url=url, masked_url=masked, key_in_body=False, method=method)


def service_page(*, team_ids: TeamIds) -> list[Service]:
    """The services of the teams, by team then name, each with its team, escalation policy,
    triggered / acknowledged counts, integrations (with their heartbeat or HTTP check) and
    its few newest open incidents (`newest_open`): three queries however many."""
    services = list(
        _in_teams(Service.objects.all(), team_ids, "team_id")
        .select_related("team", "escalation_policy")
        .annotate(
            triggered=Count("incidents", filter=Q(incidents__status=Incident.Status.TRIGGERED)),
            acknowledged=Count(
                "incidents", filter=Q(incidents__status=Incident.Status.ACKNOWLEDGED)
            ),
        )
        .prefetch_related(
            Prefetch(
                "integrations",
                queryset=Integration.objects.select_related("heartbeat", "http_check").order_by(
                    Lower("name"), "id"
                ),
            )
        )
        .order_by(Lower("team__name"), "team_id", Lower("name"), "id")
    )
    by_id = {service.pk: service for service in services}
    for service in services:
        service.open_incidents = service.triggered + service.acknowledged
        service.newest_open = []
    if by_id:
        newest = (
            Incident.objects.filter(service_id__in=by_id, status__in=OPEN_STATUSES)
            .annotate(
                rank=Window(
                    RowNumber(),
                    partition_by=[F("service_id")],
                    order_by=[F("triggered_at").desc(), F("id").desc()],
                )
            )
            .filter(rank__lte=SERVICE_INCIDENTS_LIMIT)
            .order_by("service_id", "rank")
        )
        for incident in newest:
            by_id[incident.service_id].newest_open.append(incident)
    return services
