"""Reads for the incident page (`incidents/incident_views.py`): one incident with everything an
engineer handles it from, in a fixed number of queries however long its timeline, however many
alerts and notifications it has.

Kept apart from `selectors.py` (the lists, the API and the reports) so the page's needs — the
escalation policy in words, the reassignment choices, the live version marker — stay together.
"""

import json
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
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


def _users_with_profiles() -> QuerySet:
    return User.objects.select_related("profile")


# --- the version marker ----------------------------------------------------------------------


def incident_version(*, incident_id: int) -> str | None:
    """What the live endpoint compares: changes whenever anything shown on the page changes
    (every change writes a timeline entry; status, urgency and alert count are added for the
    writes that don't, such as an alert attached by ingest). One query; None if gone."""
    row = (
        Incident.objects.filter(pk=incident_id)
        .annotate(last_entry=Max("timeline__id"))
        .values_list("last_entry", "status", "urgency", "alert_count", "round")
        .first()
    )
    if row is None:
        return None
    return version_of(*row)


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


@dataclass
class NotificationCount:
    channel: str
    status: str
    count: int


@dataclass
class IncidentPage:
    """Everything the incident page shows of one incident."""

    incident: Incident
    timeline: list[TimelineEntry]
    alerts: list[Alert]
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
        last_entry=Max("timeline__id"),
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

    A fixed number of queries: the incident (service, team, milestone people, the last page and
    the last timeline entry joined in), its assignees, timeline, newest alerts, notification
    counts, the policy's targets, and — for people who may act — the team's leads and
    responders and escalation policies."""
    incident = _incident_queryset().filter(pk=pk).first()
    if incident is None:
        from django.http import Http404

        raise Http404("No such incident.")
    require_page_access(user=user, incident=incident)
    assignees = list(
        _users_with_profiles().filter(assigned_incidents=incident).order_by("username", "id")
    )
    timeline = list(
        TimelineEntry.objects.filter(incident=incident)
        .select_related("actor__profile")
        .order_by("-at", "-id")
    )
    alerts = list(
        Alert.objects.filter(incident=incident)
        .select_related("integration")
        .order_by("-received_at", "-id")[: ALERTS_SHOWN + 1]
    )
    alerts_total = max(incident.alert_count, len(alerts))
    if len(alerts) > ALERTS_SHOWN:
        alerts = alerts[:ALERTS_SHOWN]
        alerts_total = max(alerts_total, ALERTS_SHOWN + 1)
    for alert in alerts:
        alert.pretty_payload = json.dumps(alert.payload, indent=2, ensure_ascii=False)
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


def new_entries(*, incident_id: int, after_id: int, limit: int = 5) -> list[TimelineEntry]:
    """The newest timeline entries after `after_id` (for the live region's announcement)."""
    return list(
        TimelineEntry.objects.filter(incident_id=incident_id, id__gt=after_id)
        .select_related("actor__profile")
        .order_by("-id")[:limit]
    )
