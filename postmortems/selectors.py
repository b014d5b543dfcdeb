"""Reads of postmortems: who sees which, search, the action item list, the Markdown export.

Everything that shows a postmortem — pages, search, export, API, reminders — starts from
`visible_postmortems`, so a draft never reaches someone outside its team's leads and responders.
Each read runs a fixed number of queries, however many rows.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from incidents.models import Incident, Service
from oncall import access
from oncall.models import Team, Urgency

from .models import (
    ActionItem,
    Amendment,
    Postmortem,
    ReviewComment,
    ReviewRequest,
    TimelineItem,
)

# The text a full-text search looks in, with PostgreSQL weights (A most important).
SEARCH_FIELDS = (
    ("title", "A"),
    ("summary_root_cause", "A"),
    ("impact", "B"),
    ("root_cause", "B"),
    ("resolution", "C"),
    ("improvements", "C"),
)


def _users():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.select_related("profile")


def visible_postmortems(*, user: AbstractBaseUser) -> QuerySet:
    """The postmortems `user` may read: published ones for every signed-in person (they are
    written for the company), drafts only for their team's leads and responders; superusers
    read everything. Observers never see a draft."""
    if not user.is_authenticated or not user.is_active:
        return Postmortem.objects.none()
    if user.is_superuser:
        return Postmortem.objects.all()
    return Postmortem.objects.filter(
        Q(status=Postmortem.Status.PUBLISHED) | Q(team_id__in=access.acting_team_ids(user))
    )


def postmortem_list_queryset(*, user: AbstractBaseUser) -> QuerySet:
    """Visible postmortems with what a list shows of each (team, author, services), in a fixed
    number of queries. Newest outage first."""
    return (
        visible_postmortems(user=user)
        .select_related("team", "author__profile", "published_by__profile")
        .prefetch_related(Prefetch("services", queryset=Service.objects.order_by("name")))
        .order_by("-started_at", "-id")
    )


def postmortem_for_user(*, user: AbstractBaseUser, pk: int, for_write: bool = False) -> Postmortem:
    """The postmortem `pk` if the user may read it, else Http404 (a draft answers as a missing
    postmortem to anyone outside its team). With `for_write`, a reader who may not change it
    (an observer, or anybody outside the team for a published one) gets PermissionDenied."""
    postmortem = (
        visible_postmortems(user=user).select_related("team", "author__profile").filter(pk=pk)
    ).first()
    if postmortem is None:
        raise Http404("No such postmortem.")
    if for_write and not (user.is_superuser or access.can_act_on_team(user, postmortem.team_id)):
        raise PermissionDenied("Only the team's leads and responders change its postmortems.")
    return postmortem


def postmortem_detail_queryset(*, user: AbstractBaseUser) -> QuerySet:
    """Visible postmortems with everything the page shows prefetched: incidents, services,
    timeline, action items with owners, reviews, comments and amendments."""
    return (
        visible_postmortems(user=user)
        .select_related("team", "author__profile", "published_by__profile")
        .prefetch_related(
            Prefetch("services", queryset=Service.objects.order_by("name")),
            Prefetch(
                "incidents",
                queryset=Incident.objects.select_related("service").order_by("triggered_at"),
            ),
            Prefetch(
                "timeline_items", queryset=TimelineItem.objects.order_by("at", "position", "id")
            ),
            Prefetch(
                "action_items",
                queryset=ActionItem.objects.select_related(
                    "owner__profile", "done_by__profile"
                ).order_by("due_date", "id"),
            ),
            Prefetch(
                "reviews",
                queryset=ReviewRequest.objects.select_related(
                    "reviewer__profile", "requested_by__profile"
                ).order_by("requested_at", "id"),
            ),
            Prefetch(
                "comments",
                queryset=ReviewComment.objects.select_related(
                    "author__profile", "resolved_by__profile"
                ).order_by("created_at", "id"),
            ),
            Prefetch(
                "amendments",
                queryset=Amendment.objects.select_related("author__profile").order_by("at", "id"),
            ),
        )
    )


def _is_postgres() -> bool:
    return connection.vendor == "postgresql"


def _id(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, (Team, Service)):
        return value.pk
    return int(value)


def postmortem_search(
    *,
    user: AbstractBaseUser,
    q: str = "",
    team: Team | int | None = None,
    service: Service | int | None = None,
    start: dt.date | dt.datetime | None = None,
    end: dt.date | dt.datetime | None = None,
    urgency: str | None = None,
    status: str | None = None,
) -> QuerySet:
    """Visible postmortems matching the words `q` and every filter given. On PostgreSQL a
    full-text search (stemmed English words, best match first); elsewhere every word must
    appear somewhere in the text (case-insensitive), newest first. `start`/`end` are inclusive
    bounds on the day the outage started (dates) or on its start time (datetimes)."""
    postmortems = postmortem_list_queryset(user=user)
    team_id, service_id = _id(team), _id(service)
    if team_id is not None:
        postmortems = postmortems.filter(team_id=team_id)
    if service_id is not None:
        postmortems = postmortems.filter(services__id=service_id)
    if urgency:
        if urgency not in Urgency.values:
            raise ValueError(f"unknown urgency {urgency!r}")
        postmortems = postmortems.filter(urgency=urgency)
    if status:
        if status not in Postmortem.Status.values:
            raise ValueError(f"unknown status {status!r}")
        postmortems = postmortems.filter(status=status)
    if start is not None:
        if isinstance(start, dt.datetime):
            postmortems = postmortems.filter(started_at__gte=start)
        else:
            postmortems = postmortems.filter(started_at__date__gte=start)
    if end is not None:
        if isinstance(end, dt.datetime):
            postmortems = postmortems.filter(started_at__lte=end)
        else:
            postmortems = postmortems.filter(started_at__date__lte=end)
    q = (q or "").strip()[:200]
    if q:
        postmortems = _full_text(postmortems, q)
    return postmortems


def _full_text(postmortems: QuerySet, q: str) -> QuerySet:
    if _is_postgres():
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        vector = None
        for name, weight in SEARCH_FIELDS:
            part = SearchVector(name, weight=weight, config="english")
            vector = part if vector is None else vector + part
        query = SearchQuery(q, search_type="websearch", config="english")
        # Timeline texts and action item titles count too, each through an id subquery.
        in_timeline = (
            TimelineItem.objects.annotate(found=SearchVector("text", config="english"))
            .filter(found=query)
            .values("postmortem_id")
        )
        in_action_items = (
            ActionItem.objects.annotate(found=SearchVector("title", config="english"))
            .filter(found=query)
            .values("postmortem_id")
        )
        return (
            postmortems.annotate(search=vector, rank=SearchRank(vector, query))
            .filter(Q(search=query) | Q(pk__in=in_timeline) | Q(pk__in=in_action_items))
            .order_by("-rank", "-started_at", "-id")
        )
    matches = Q()
    for word in q.split()[:10]:
        word_q = Q()
        for name, _weight in SEARCH_FIELDS:
            word_q |= Q(**{f"{name}__icontains": word})
        word_q |= Q(
            pk__in=TimelineItem.objects.filter(text__icontains=word).values("postmortem_id")
        )
        word_q |= Q(pk__in=ActionItem.objects.filter(title__icontains=word).values("postmortem_id"))
        matches &= word_q
    return postmortems.filter(matches)


def open_action_items(
    *, user: AbstractBaseUser, owner: AbstractBaseUser | int | None = None
) -> QuerySet:
    """Open action items of the postmortems the user sees, soonest due first, with their
    postmortem, team and owner loaded (one query)."""
    return action_item_list(user=user, owner=owner, status=ActionItem.Status.OPEN)


def action_item_list(
    *,
    user: AbstractBaseUser,
    owner: AbstractBaseUser | int | None = None,
    status: str | None = None,
    overdue: bool | None = None,
) -> QuerySet:
    """Action items of visible postmortems, filtered; soonest due first. One query."""
    items = ActionItem.objects.filter(
        postmortem__in=visible_postmortems(user=user).values("pk")
    ).select_related("postmortem__team", "owner__profile", "done_by__profile")
    if owner is not None:
        items = items.filter(owner_id=owner if isinstance(owner, int) else owner.pk)
    if status:
        if status not in ActionItem.Status.values:
            raise ValueError(f"unknown status {status!r}")
        items = items.filter(status=status)
    today = timezone.localdate()
    if overdue is True:
        items = items.filter(status=ActionItem.Status.OPEN, due_date__lt=today)
    elif overdue is False:
        items = items.exclude(status=ActionItem.Status.OPEN, due_date__lt=today)
    return items.order_by("due_date", "id")


def incident_postmortems(
    *, user: AbstractBaseUser, incidents: Iterable[Incident | int]
) -> dict[int, Postmortem]:
    """{incident id: the visible postmortem covering it}, for links from incident pages. One
    query however many incidents."""
    ids = [i.pk if isinstance(i, Incident) else int(i) for i in incidents]
    through = Postmortem.incidents.through
    rows = through.objects.filter(
        incident_id__in=ids, postmortem__in=visible_postmortems(user=user).values("pk")
    ).select_related("postmortem")
    found: dict[int, Postmortem] = {}
    for row in rows.order_by("postmortem_id"):
        found.setdefault(row.incident_id, row.postmortem)
    return found


def incidents_without_postmortem(*, resolved_before: dt.datetime) -> QuerySet:
    """Resolved high-urgency incidents, resolved before the given time, that no postmortem
    covers yet (for the reminders)."""
    return (
        Incident.objects.filter(
            status=Incident.Status.RESOLVED,
            urgency=Urgency.HIGH,
            resolved_at__lte=resolved_before,
            postmortems__isnull=True,
        )
        .select_related("service__team", "acknowledged_by", "resolved_by")
        .order_by("resolved_at", "id")
    )


# --- the Markdown export -----------------------------------------------------------------------


def format_duration(delta: dt.timedelta | None) -> str:
    """'2 h 05 min', '45 min', '3 d 4 h 00 min'; an empty string for no duration."""
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h {minutes:02d} min"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def _zone(postmortem: Postmortem) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(postmortem.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def format_local(postmortem: Postmortem, moment: dt.datetime | None) -> str:
    """A time in the postmortem's time zone with the zone's name, e.g.
    '2026-03-02 14:05 CET (Europe/Paris)'."""
    if moment is None:
        return "—"
    local = moment.astimezone(_zone(postmortem))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _person(user) -> str:
    if user is None:
        return "—"
    try:
        return user.profile.name
    except ObjectDoesNotExist:
        return user.get_username()


def postmortem_markdown(postmortem: Postmortem) -> str:
    """The whole postmortem as one Markdown document (the download), in the fixed format.
    Callers pass a postmortem they got through `visible_postmortems`."""
    pm = postmortem
    timeline = list(pm.timeline_items.all())
    items = list(pm.action_items.all())
    services = ", ".join(s.name for s in pm.services.all()) or "—"
    incidents = ", ".join(f"#{i.pk}" for i in pm.incidents.all()) or "—"
    lines = [f"# {pm.title}", ""]
    lines.append(
        f"*Team: {pm.team.name} · Status: {pm.get_status_display()} · "
        f"{pm.get_urgency_display()} · Author: {_person(pm.author)}*"
    )
    if pm.published_at:
        lines.append(f"*Published {format_local(pm, pm.published_at)}*")
    lines += ["", "## Issue summary", ""]
    lines.append(f"- **Start:** {format_local(pm, pm.started_at)} ({pm.time_zone})")
    lines.append(f"- **End:** {format_local(pm, pm.ended_at)} ({pm.time_zone})")
    lines.append(f"- **Duration:** {format_duration(pm.duration) or '—'}")
    lines.append(f"- **Affected services:** {services}")
    lines.append(f"- **Incidents:** {incidents}")
    if pm.users_affected_percent is not None:
        lines.append(f"- **Users affected:** {pm.users_affected_percent.normalize():f} %")
    lines += ["", "### Impact", "", pm.impact.strip() or "—", ""]
    lines += ["### Root cause", "", pm.summary_root_cause.strip() or "—", ""]
    lines += ["## Timeline", ""]
    if not timeline:
        lines.append("—")
    for item in timeline:
        kind = item.get_kind_display()
        if item.detection:
            kind += f" ({item.get_detection_display().lower()})"
        text = " ".join(item.text.split())
        lines.append(f"- **{format_local(pm, item.at)}** — {kind}: {text}")
    lines += ["", "## Root cause and resolution", "", "### Root cause", ""]
    lines += [pm.root_cause.strip() or "—", "", "### Resolution", "", pm.resolution.strip() or "—"]
    lines += ["", "## Corrective and preventative measures", "", pm.improvements.strip() or "—"]
    lines += ["", "### Action items", ""]
    if not items:
        lines.append("—")
    for item in items:
        box = "x" if item.status == ActionItem.Status.DONE else " "
        link = f" ({item.url})" if item.url else ""
        lines.append(
            f"- [{box}] {item.title} — owner {_person(item.owner)}, due "
            f"{item.due_date:%Y-%m-%d}{link}"
        )
    amendments = list(pm.amendments.all()) if pm.is_published else []
    if amendments:
        lines += ["", "## Amendments", ""]
        for amendment in amendments:
            changed = ", ".join(amendment.changed_fields)
            lines.append(
                f"- {format_local(pm, amendment.at)} by {_person(amendment.author)} "
                f"({changed}): {' '.join(amendment.reason.split())}"
            )
    if pm.publish_override_reason:
        lines += [
            "",
            f"*Published by a lead without an approval: {pm.publish_override_reason}*",
        ]
    return "\n".join(lines).rstrip() + "\n"
