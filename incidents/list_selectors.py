"""Reads of the incident list page and its live updates: each a fixed number of queries.

The list shows the incidents of the reader's teams (`team_ids` from `oncall.access`: a set of
team ids, or None for every team) that match `ListFilters`, whose `service_ids` carry the
reader's scope. The counts per status honour every
filter except the status itself, so the status tabs say what each tab would show. The counts
and the page's (id, last change) pairs make the list's version marker: the live poll compares
it with the one the page was drawn from, so an unchanged list costs two small queries and a
tiny answer.
"""

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Lower

from oncall.models import Team, Urgency

from .models import Incident, Page
from .selectors import DEFAULT_STATUS_FILTER, STATUS_FILTERS

TeamIds = Collection[int] | None

DEFAULT_SORT = "newest"
# name → label, as the "Sort by" menu offers them; the orderings are in `_ordering`.
SORTS: dict[str, str] = {
    "newest": "Newest first",
    "oldest": "Oldest first",
    "urgency": "Urgency, then newest",
    "status": "Status (triggered first), then newest",
}

# How many incidents newly assigned to the reader one live answer carries at most: a burst
# beyond this is a storm that the list itself shows; nobody reads 20 desktop notifications.
ASSIGNED_LIMIT = 20
# How many of the reader's pages one live answer reads past the marker; the next poll goes on
# from where this one stopped, so a stale marker costs a few polls, never a long query.
PAGES_READ_LIMIT = 200


@dataclass(frozen=True)
class ListFilters:
    """What the reader asked the list for, already checked. `service_ids` are the services whose
    incidents may be listed: the reader's, narrowed by the team and service filters (None: every
    service, for a superuser who narrowed nothing); see `list_scope`. `since` (inclusive) and
    `until` (exclusive) are aware datetimes."""

    service_ids: tuple[int, ...] | None = None
    status: str = DEFAULT_STATUS_FILTER
    urgency: str | None = None
    assigned_to: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = DEFAULT_SORT


@dataclass
class ServiceChoice:
    id: int
    name: str


@dataclass
class TeamChoice:
    """A team the reader may filter by, with its services (for the Service menu's groups)."""

    id: int
    name: str
    slug: str
    services: list[ServiceChoice] = field(default_factory=list)


def list_filter_choices(*, team_ids: TeamIds) -> list[TeamChoice]:
    """The reader's teams with their services, by name: the only teams and services the filter
    menus offer and accept. One query (teams left-joined to their services)."""
    teams = Team.objects.all() if team_ids is None else Team.objects.filter(pk__in=team_ids)
    rows = teams.order_by(Lower("name"), "id", Lower("services__name"), "services__id").values_list(
        "id", "name", "slug", "services__id", "services__name"
    )
    choices: dict[int, TeamChoice] = {}
    for team_id, name, slug, service_id, service_name in rows:
        team = choices.setdefault(team_id, TeamChoice(id=team_id, name=name, slug=slug))
        if service_id is not None:
            team.services.append(ServiceChoice(id=service_id, name=service_name))
    return list(choices.values())


def list_scope(
    *, teams: list[TeamChoice], every_team: bool, team_id: int | None, service_id: int | None
) -> tuple[int, ...] | None:
    """The services the list reads, as `ListFilters.service_ids`: the chosen service, else the
    chosen team's services, else every service of the reader's teams (`teams`, from
    `list_filter_choices`) — or None, no limit, when the reader sees `every_team` and chose
    neither.

    Filtering the incidents by service ids rather than by their service's team spares the
    join: the counts and the pages are then read from the incident indexes alone."""
    if service_id is not None:
        return (service_id,)
    if team_id is not None:
        return tuple(s.id for team in teams if team.id == team_id for s in team.services)
    if every_team:
        return None
    return tuple(s.id for team in teams for s in team.services)


def _matching(*, filters: ListFilters) -> QuerySet:
    """The incidents matching every filter but the status."""
    incidents = Incident.objects.all()
    if filters.service_ids is not None:
        incidents = incidents.filter(service_id__in=filters.service_ids)
    if filters.urgency is not None:
        incidents = incidents.filter(urgency=filters.urgency)
    if filters.assigned_to is not None:
        incidents = incidents.filter(assignees=filters.assigned_to)
    if filters.since is not None:
        incidents = incidents.filter(triggered_at__gte=filters.since)
    if filters.until is not None:
        incidents = incidents.filter(triggered_at__lt=filters.until)
    return incidents


def incident_list_counts(*, filters: ListFilters) -> dict[str, int]:
    """How many incidents match the filters in each status (whatever the status filter says),
    plus "open" and "all": what the status tabs show. One aggregate query."""
    statuses = Incident.Status.values
    counted = _matching(filters=filters).aggregate(
        **{status: Count("id", filter=Q(status=status)) for status in statuses}
    )
    counts = {status: counted[status] or 0 for status in statuses}
    counts["open"] = sum(counts[status] for status in Incident.OPEN_STATUSES)
    counts["all"] = sum(counts[status] for status in statuses)
    return counts


def list_version(*, counts: dict[str, int], stamps: Iterable[tuple[int, datetime]]) -> str:
    """The version marker of what the list page shows: the counts per status and, for each
    incident on the page, its id and last change (every workflow action saves the incident, so
    `updated_at` moves with a new status, urgency or assignee).

    Built from what the reader sees rather than from "the latest change anywhere", so a change
    committed late (saved at t1, committed after a change saved at t2 > t1) is still seen, and
    changes to incidents on other pages don't redraw this one. No query of its own."""
    digest = hashlib.blake2b(digest_size=8)
    for pk, updated_at in stamps:
        digest.update(f"{pk}:{updated_at.timestamp():.6f};".encode())
    tally = "-".join(str(counts[status]) for status in Incident.Status.values)
    return f"{tally}-{digest.hexdigest()}"


def _ordering(sort: str) -> list:
    newest = ["-triggered_at", "-id"]
    if sort == "oldest":
        return ["triggered_at", "id"]
    if sort == "urgency":
        urgency_rank = Case(
            When(urgency=Urgency.HIGH, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        return [urgency_rank, *newest]
    if sort == "status":
        status_rank = Case(
            When(status=Incident.Status.TRIGGERED, then=Value(0)),
            When(status=Incident.Status.ACKNOWLEDGED, then=Value(1)),
            default=Value(2),
            output_field=IntegerField(),
        )
        return [status_rank, *newest]
    return newest


def _listed(*, filters: ListFilters) -> QuerySet:
    incidents = _matching(filters=filters)
    statuses = STATUS_FILTERS[filters.status]
    if statuses is not None:
        incidents = incidents.filter(status__in=statuses)
    return incidents.order_by(*_ordering(filters.sort))


def _page_ids(*, filters: ListFilters, offset: int, limit: int) -> QuerySet:
    """The ids of one page, as a subquery: the offset is walked in the index alone (ids, not
    whole rows), which keeps deep pages fast."""
    return _listed(filters=filters).values("id")[offset : offset + limit]


def incident_list_page(*, filters: ListFilters, offset: int, limit: int) -> list[Incident]:
    """One page of the matching incidents in the chosen order, with service, team and assignees
    (and their profiles, for their names). Two queries."""
    from django.contrib.auth import get_user_model

    people = get_user_model().objects.select_related("profile").order_by("username", "id")
    page = (
        Incident.objects.filter(id__in=_page_ids(filters=filters, offset=offset, limit=limit))
        .select_related("service__team")
        .prefetch_related(Prefetch("assignees", queryset=people))
        .order_by(*_ordering(filters.sort))
    )
    return list(page)


def incident_list_stamps(
    *, filters: ListFilters, offset: int, limit: int
) -> list[tuple[int, datetime]]:
    """(id, updated_at) of the incidents of one page, in order, for `list_version`: what the
    live poll reads to tell whether the page changed. One small query."""
    page = Incident.objects.filter(id__in=_page_ids(filters=filters, offset=offset, limit=limit))
    return list(page.order_by(*_ordering(filters.sort)).values_list("id", "updated_at"))


# --- desktop notifications: incidents newly assigned to the reader ------------------------------


def assignment_marker(*, user: AbstractBaseUser) -> int:
    """The id of the last page (`Page` row) of the reader: the live poll asks for incidents
    assigned to them after it. One query."""
    return Page.objects.filter(user=user).aggregate(last=Max("id"))["last"] or 0


@dataclass(frozen=True)
class NewAssignments:
    incidents: list[Incident]
    marker: int


def incidents_newly_assigned(
    *, user: AbstractBaseUser, team_ids: TeamIds, after: int
) -> NewAssignments:
    """Open incidents the reader was paged for after page `after` and still holds: what a desktop
    notification announces. Every page of an incident is a `Page` row with an increasing id, so
    the id is the marker; the new marker covers every page of the reader, those skipped too
    (an incident resolved or handed on meanwhile). One query, at most ASSIGNED_LIMIT incidents,
    each once, oldest page first."""
    still_assigned = Incident.assignees.through.objects.filter(
        incident_id=OuterRef("incident_id"), user_id=user.pk
    )
    pages = (
        Page.objects.filter(user=user, id__gt=after)
        .select_related("incident__service__team")
        .annotate(still_assigned=Exists(still_assigned))
        .order_by("id")[:PAGES_READ_LIMIT]
    )
    marker = after
    found: dict[int, Incident] = {}
    for page in pages:
        marker = max(marker, page.pk)
        incident = page.incident
        if (
            page.still_assigned
            and incident.status in Incident.OPEN_STATUSES
            and (team_ids is None or incident.service.team_id in team_ids)
            and len(found) < ASSIGNED_LIMIT
        ):
            found.setdefault(incident.pk, incident)
    return NewAssignments(incidents=list(found.values()), marker=marker)
