"""Reads for the incident page (`incidents/incident_views.py`): one incident with everything an
engineer handles it from, in a fixed number of queries however long its timeline, however many
alerts and notifications it has.

Kept apart from `selectors.py` (the lists, the API and the reports) so the page's needs — the
escalation policy in words, the reassignment choices, the live version marker — stay together.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Lower

from oncall import access
from oncall.models import Role, Team
from schedules.models import Schedule

from .models import Alert, EscalationPolicy, Incident, Notification, Page, TimelineEntry
from .workflow import LEADS_FALLBACK_STEP

ALERTS_SHOWN = 50  # the raw alerts listed on the page, newest first; the rest are counted

User = get_user_model()


def person_name(user: AbstractBaseUser | None) -> str:
    """A person as the portal names them: display name, full name or username."""
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    if profile is not None and profile.display_name:
        return profile.display_name
    return user.get_full_name() or user.get_username()


def _name_of(username: str, first_name: str, last_name: str, display_name: str | None) -> str:
    """`person_name` from the columns alone (the timeline reads them with its rows)."""
    if display_name:
        return display_name
    return f"{first_name} {last_name}".strip() or username


def _users_with_profiles() -> QuerySet:
    return User.objects.select_related("profile")


# --- the version marker ----------------------------------------------------------------------


def incident_version(*, incident_id: int) -> str | None:
    """What the live endpoint compares: changes whenever anything shown on the page changes
    (every change writes a timeline entry; status, urgency and alert count are added for the
    writes that don't, such as an alert attached by ingest). One query; None if gone."""
    row = (
        Incident.objects.filter(pk=incident_id)
        .annotate(last_entry=_last_entry_id())
        .values_list("last_entry", "status", "urgency", "alert_count", "round")
        .first()
    )
    if row is None:
        return None
    return version_of(*row)


def _last_entry_id() -> Subquery:
    """The incident's newest timeline entry id, read through the `incident` index for the one
    incident (a join and GROUP BY over every entry would turn each row of it into work)."""
    newest = TimelineEntry.objects.filter(incident=OuterRef("pk")).order_by("-id")
    return Subquery(newest.values("id")[:1])


def version_of(last_entry: int | None, status: str, urgency: str, alerts: int, round_: int) -> str:
    return f"{last_entry or 0}.{status}.{urgency}.{alerts}.{round_}"


def version_entry_id(version: str) -> int | None:
    """The last timeline entry id a client's version marker says it has seen (None: unreadable)."""
    head = (version or "").split(".", 1)[0]
    if head.isascii() and head.isdigit() and len(head) <= 18:
        return int(head)
    return None


# --- the page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepView:
    """One step of the incident's escalation policy (its snapshot), in words."""

    number: int  # from 1
    delay_minutes: int
    targets: str


KIND_LABELS = dict(TimelineEntry.Kind.choices)


@dataclass(slots=True)
class TimelineRow:
    """One timeline entry as the page shows it: plain values read with `values_list` and the
    actor's name joined in, not a model object with its actor and profile (a long timeline
    spent most of the page's time building those)."""

    pk: int
    at: datetime
    kind: str
    channel: str
    message: str
    data: dict
    actor_id: int | None
    actor_name: str

    def get_kind_display(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)


@dataclass(slots=True)
class AlertRow:
    """One raw alert as the page lists it (plain values, its integration's name joined in)."""

    pk: int
    received_at: datetime
    action: str
    outcome: str
    summary: str
    dedup_key: str
    integration_name: str
    payload: object  # as received: usually a dict


@dataclass
class NotificationCount:
    channel: str
    status: str
    count: int


@dataclass
class IncidentPage:
    """Everything the incident page shows of one incident."""

    incident: Incident
    timeline: list[TimelineRow]
    alerts: list[AlertRow]
    alerts_total: int
    steps: list[StepView]
    repeat_count: int
    policy_name: str
    last_paged_step: int | None  # 0-based Page.step; LEADS_FALLBACK_STEP for the leads
    last_paged_loop: int | None
    fired_step: int | None  # the highest step that paged in this round and loop
    notification_counts: list[NotificationCount]
    version: str
    reassign_users: list = field(default_factory=list)
    reassign_policies: list[EscalationPolicy] = field(default_factory=list)
    can_act: bool = False

    @property
    def loops(self) -> int:
        return self.repeat_count + 1

    @property
    def paged_by_leads_fallback(self) -> bool:
        return self.last_paged_step == LEADS_FALLBACK_STEP

    @property
    def last_step(self) -> StepView | None:
        if self.last_paged_step is None or self.paged_by_leads_fallback:
            return None
        if 0 <= self.last_paged_step < len(self.steps):
            return self.steps[self.last_paged_step]
        return None

    @property
    def next_step(self) -> StepView | None:
        """The step that fires at `next_escalation_at`."""
        incident = self.incident
        if incident.next_escalation_at is None:
            return None
        if 0 <= incident.current_step < len(self.steps):
            return self.steps[incident.current_step]
        return None

    @property
    def hand_escalation_step(self) -> StepView | None:
        """The step "escalate" without a choice goes to: the one after the last that paged in
        this round (`workflow.incident_escalate`), or the first."""
        if not self.steps:
            return None
        fired = self.fired_step
        if fired is None:
            return self.steps[0]
        return self.steps[min(fired + 1, len(self.steps) - 1)]

    @property
    def alerts_hidden(self) -> int:
        return max(self.alerts_total - len(self.alerts), 0)

    @property
    def notifications_sent(self) -> int:
        return sum(c.count for c in self.notification_counts if c.status == "sent")

    @property
    def notifications_failed(self) -> int:
        return sum(c.count for c in self.notification_counts if c.status == "failed")


def _incident_queryset() -> QuerySet:
    last_page = Page.objects.filter(incident=OuterRef("pk")).order_by("-paged_at", "-id")
    return Incident.objects.select_related(
        "service__team",
        "integration",
        "acknowledged_by__profile",
        "resolved_by__profile",
    ).annotate(
        last_entry=_last_entry_id(),
        last_paged_step=Subquery(last_page.values("step")[:1]),
        last_paged_loop=Subquery(last_page.values("loop")[:1]),
        fired_step=Subquery(
            Page.objects.filter(
                incident=OuterRef("pk"), round=OuterRef("round"), loop=OuterRef("loop")
            )
            .exclude(step=LEADS_FALLBACK_STEP)
            .order_by("-step")
            .values("step")[:1]
        ),
    )


def _step_words(step: dict, users: dict, schedules: dict, teams: dict) -> str:
    parts = [person_name(users[pk]) for pk in step.get("users", []) if pk in users]
    parts += [
        f"whoever is on call on {schedules[pk].name}"
        for pk in step.get("schedules", [])
        if pk in schedules
    ]
    parts += [
        f"every lead and responder of {teams[pk].name}"
        for pk in step.get("teams", [])
        if pk in teams
    ]
    missing = (
        len(step.get("users", []))
        + len(step.get("schedules", []))
        + len(step.get("teams", []))
        - len(parts)
    )
    if missing:
        parts.append(f"{missing} target(s) since deleted")
    if not parts:
        return "nobody"
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _steps(snapshot: dict) -> list[StepView]:
    """The snapshot's steps with their targets named: three queries at most (users, schedules,
    teams), none for a kind no step names."""
    raw = [step for step in snapshot.get("steps", []) if isinstance(step, dict)]
    user_ids = {pk for step in raw for pk in step.get("users", [])}
    schedule_ids = {pk for step in raw for pk in step.get("schedules", [])}
    team_ids = {pk for step in raw for pk in step.get("teams", [])}
    users = {u.pk: u for u in _users_with_profiles().filter(pk__in=user_ids)} if user_ids else {}
    schedules = (
        {s.pk: s for s in Schedule.objects.filter(pk__in=schedule_ids)} if schedule_ids else {}
    )
    teams = {t.pk: t for t in Team.objects.filter(pk__in=team_ids)} if team_ids else {}
    return [
        StepView(
            number=index + 1,
            delay_minutes=int(step.get("delay_minutes", 0)),
            targets=_step_words(step, users, schedules, teams),
        )
        for index, step in enumerate(raw)
    ]


def require_page_access(*, user: AbstractBaseUser, incident: Incident) -> None:
    """Return if `user` may open `incident`'s page and act on it. Otherwise PermissionDenied (the
    403 page, saying why): an observer of its team reads reports only, and someone following a
    colleague's link to another team's incident learns whose it is (the API answers 404 there)."""
    from django.core.exceptions import PermissionDenied

    team_id = incident.service.team_id
    if not access.can_act_on_team(user, team_id) and team_id not in access.team_ids(user):
        raise PermissionDenied(
            f"Incident #{incident.pk} belongs to {incident.service.team.name}, a team you are "
            "not a member of. Ask one of its leads to add you if you need to work on it."
        )
    access.require_operational(user, team_id)


def incident_for_page(*, user: AbstractBaseUser, pk: int) -> Incident:
    """The incident `pk` (with its service and team) if `user` may open its page: one query."""
    from django.http import Http404

    incident = Incident.objects.select_related("service__team").filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident.")
    require_page_access(user=user, incident=incident)
    return incident


def incident_page(*, user: AbstractBaseUser, pk: int) -> IncidentPage:
    """The incident `pk` for its page, if `user` may see it: Http404 for a missing incident,
    PermissionDenied (403, saying why) for another team's incident or an observer of its team.

    A fixed number of queries: the incident (service, team, milestone people joined in; the
    last page and the last timeline entry by subqueries), its assignees, timeline (with its
    actors' names), newest alerts, notification counts, the policy's targets, and — for
    people who may act — the team's leads and responders and escalation policies."""
    incident = _incident_queryset().filter(pk=pk).first()
    if incident is None:
        from django.http import Http404

        raise Http404("No such incident.")
    require_page_access(user=user, incident=incident)
    assignees = list(
        _users_with_profiles().filter(assigned_incidents=incident).order_by("username", "id")
    )
    timeline = timeline_rows(incident_id=incident.pk)
    alerts = alert_rows(incident_id=incident.pk, limit=ALERTS_SHOWN + 1)
    alerts_total = max(incident.alert_count, len(alerts))
    if len(alerts) > ALERTS_SHOWN:
        alerts = alerts[:ALERTS_SHOWN]
        alerts_total = max(alerts_total, ALERTS_SHOWN + 1)
    counts = [
        NotificationCount(channel=row["channel"], status=row["status"], count=row["n"])
        for row in Notification.objects.filter(incident=incident)
        .values("channel", "status")
        .annotate(n=Count("id"))
        .order_by("channel", "status")
    ]
    snapshot = incident.policy_snapshot if isinstance(incident.policy_snapshot, dict) else {}
    page = IncidentPage(
        incident=incident,
        timeline=timeline,
        alerts=alerts,
        alerts_total=alerts_total,
        steps=_steps(snapshot),
        repeat_count=int(snapshot.get("repeat_count", 0) or 0),
        policy_name=str(snapshot.get("name", "")),
        last_paged_step=incident.last_paged_step,
        last_paged_loop=incident.last_paged_loop,
        fired_step=incident.fired_step,
        notification_counts=counts,
        version=version_of(
            incident.last_entry,
            incident.status,
            incident.urgency,
            incident.alert_count,
            incident.round,
        ),
        can_act=access.can_act_on_team(user, incident.service.team_id),
    )
    incident.assignee_list = assignees
    incident.assignee_names = [person_name(person) for person in assignees]
    if page.can_act and incident.status != Incident.Status.RESOLVED:
        page.reassign_users = reassign_users(team_id=incident.service.team_id)
        page.reassign_policies = reassign_policies(team_id=incident.service.team_id)
    return page


def timeline_rows(*, incident_id: int) -> list[TimelineRow]:
    """The incident's whole timeline, newest first: one query, the actors' names joined in,
    each actor named once."""
    rows = (
        TimelineEntry.objects.filter(incident_id=incident_id)
        .order_by("-at", "-id")
        .values_list(
            "id",
            "at",
            "kind",
            "channel",
            "message",
            "data",
            "actor_id",
            "actor__username",
            "actor__first_name",
            "actor__last_name",
            "actor__profile__display_name",
        )
    )
    names: dict[int, str] = {}
    timeline = []
    for pk, at, kind, channel, message, data, actor_id, username, first, last, display in rows:
        if actor_id is None:
            name = ""
        else:
            name = names.get(actor_id)
            if name is None:
                name = names[actor_id] = _name_of(username, first, last, display)
        timeline.append(TimelineRow(pk, at, kind, channel, message, data, actor_id, name))
    return timeline


def alert_rows(*, incident_id: int, limit: int) -> list[AlertRow]:
    """The incident's newest `limit` alerts with their integration's name: one query."""
    rows = (
        Alert.objects.filter(incident_id=incident_id)
        .order_by("-received_at", "-id")
        .values_list(
            "id",
            "received_at",
            "action",
            "outcome",
            "summary",
            "dedup_key",
            "integration__name",
            "payload",
        )[:limit]
    )
    return [
        AlertRow(pk, received_at, action, outcome, summary, dedup_key, integration or "", payload)
        for pk, received_at, action, outcome, summary, dedup_key, integration, payload in rows
    ]


def reassign_users(*, team_id: int) -> list:
    """The people an incident of the team may be handed to: its active leads and responders,
    by name. One query."""
    return list(
        _users_with_profiles()
        .filter(
            is_active=True,
            memberships__team_id=team_id,
            memberships__role__in=[Role.LEAD, Role.RESPONDER],
        )
        .distinct()
        .order_by(Lower("profile__display_name"), Lower("username"), "id")
    )


def reassign_policies(*, team_id: int) -> list[EscalationPolicy]:
    """The team's escalation policies that have steps (one without steps would page nobody).
    One query."""
    return list(
        EscalationPolicy.objects.filter(team_id=team_id)
        .annotate(step_count=Count("steps"))
        .filter(step_count__gt=0)
        .order_by(Lower("name"), "id")
    )
