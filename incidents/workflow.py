"""Incident workflow: trigger, acknowledge, escalate, reassign, note, resolve — and the engine.

Every action on an incident is one function here, called alike by pages, the API, admin
actions, e-mail links, ingest and Celery tasks, so each rule lives in one place. Each runs in
a transaction, locks the incident row, refuses an illegal transition with `IncidentStateError`,
writes its timeline entry, and queues Celery work only after commit.

Escalation state lives on the incident (`current_step`, `loop`, `next_escalation_at`);
`incident_advance` is safe to call any number of times, from any worker, late or early.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db import IntegrityError, transaction
from django.db.models import Q

from oncall.models import ContactMethod, NotificationRule, Role, Urgency
from schedules import selectors as schedule_selectors

from .models import (
    Channel,
    EscalationPolicy,
    Incident,
    Integration,
    Notification,
    Page,
    Service,
    TimelineEntry,
)

User = get_user_model()
LEADS_FALLBACK_STEP = 99  # the Page.step of "nobody else could be reached: page the leads"


class IncidentStateError(Exception):
    """The action is not allowed in the incident's current state (e.g. acknowledging a resolved
    incident). The message says why, for a person to read."""


# --- helpers -----------------------------------------------------------------------------------


def timeline_add(
    *,
    incident: Incident,
    kind: str,
    at: datetime,
    actor: AbstractUser | None = None,
    channel: str = Channel.SYSTEM,
    message: str = "",
    data: dict | None = None,
) -> TimelineEntry:
    return TimelineEntry.objects.create(
        incident=incident,
        kind=kind,
        at=at,
        actor=actor,
        channel=channel,
        message=message,
        data=data or {},
    )


def policy_snapshot(policy: EscalationPolicy | None) -> dict:
    """The policy as plain data, frozen into the incident when it is triggered or reassigned."""
    if policy is None:
        return {"steps": [], "repeat_count": 0}
    steps = policy.steps.order_by("position", "id").prefetch_related(
        "target_users", "target_schedules", "target_teams"
    )
    return {
        "id": policy.pk,
        "name": policy.name,
        "repeat_count": policy.repeat_count,
        "steps": [
            {
                "delay_minutes": step.delay_minutes,
                "users": [u.pk for u in step.target_users.all()],
                "schedules": [s.pk for s in step.target_schedules.all()],
                "teams": [t.pk for t in step.target_teams.all()],
            }
            for step in steps
        ],
    }


def _locked(incident: Incident | int) -> Incident:
    pk = incident if isinstance(incident, int) else incident.pk
    return Incident.objects.select_for_update().select_related("service").get(pk=pk)


def _after_commit_advance(incident: Incident) -> None:
    from . import tasks

    if incident.next_escalation_at is not None:
        when = incident.next_escalation_at
        pk = incident.pk
        transaction.on_commit(lambda: tasks.queue_advance(pk, when))


def _after_commit_send() -> None:
    from . import tasks

    transaction.on_commit(tasks.queue_send_notifications)


def _skip_pending_notifications(incident: Incident, at: datetime, reason: str) -> int:
    return Notification.objects.filter(
        incident=incident, status=Notification.Status.PENDING
    ).update(status=Notification.Status.SKIPPED, provider_answer=reason[:500], last_attempt_at=at)


# --- trigger -----------------------------------------------------------------------------------


@transaction.atomic
def incident_trigger(
    *,
    service: Service,
    title: str,
    at: datetime,
    integration: Integration | None = None,
    dedup_key: str = "",
    urgency: str | None = None,
    details: dict | None = None,
    actor: AbstractUser | None = None,
    channel: str = Channel.INTEGRATION,
) -> Incident:
    """Open an incident and start paging through the service's escalation policy (a snapshot of
    it). A service in maintenance records the incident but pages nobody."""
    policy = service.escalation_policy
    incident = Incident.objects.create(
        service=service,
        integration=integration,
        title=title[:1024] or "(no summary)",
        details=details or {},
        urgency=urgency or service.default_urgency,
        dedup_key=dedup_key[:255],
        triggered_at=at,
        alert_count=0,
        escalation_policy=policy,
        policy_snapshot=policy_snapshot(policy),
        next_escalation_at=at,
    )
    source = f" by {integration.name}" if integration else ""
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.TRIGGERED,
        at=at,
        actor=actor,
        channel=channel,
        message=f"Triggered{source}: {incident.title}",
        data={"integration": integration.pk if integration else None},
    )
    if service.status == Service.Status.MAINTENANCE:
        incident.next_escalation_at = None
        incident.save(update_fields=["next_escalation_at", "updated_at"])
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.WARNING,
            at=at,
            message=f"{service.name} is in maintenance: the incident is recorded, nobody is paged.",
        )
    _after_commit_advance(incident)
    return incident


# --- people's actions --------------------------------------------------------------------------


@transaction.atomic
def incident_acknowledge(
    *, incident: Incident, by: AbstractUser | None, via: str, at: datetime
) -> Incident:
    """Someone is on it: escalation stops and pending pages are skipped."""
    incident = _locked(incident)
    if incident.status != Incident.Status.TRIGGERED:
        raise IncidentStateError(
            f"Incident #{incident.pk} is {incident.status}: nothing to acknowledge."
        )
    incident.status = Incident.Status.ACKNOWLEDGED
    if incident.acknowledged_at is None:  # the MTTA milestone is the first acknowledgement
        incident.acknowledged_at = at
        incident.acknowledged_by = by
    incident.next_escalation_at = None
    timeout = incident.service.ack_timeout_minutes
    incident.ack_timeout_at = at + timedelta(minutes=timeout) if timeout else None
    incident.save()
    skipped = _skip_pending_notifications(incident, at, "incident acknowledged")
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ACKNOWLEDGED,
        at=at,
        actor=by,
        channel=via,
        message="Acknowledged"
        + (f"; {skipped} pending notification(s) skipped" if skipped else ""),
    )
    return incident


@transaction.atomic
def incident_unacknowledge_if_due(*, incident: Incident | int, now: datetime) -> Incident | None:
    """An acknowledgement that timed out without a resolution: trigger again and escalate from
    the first step, as PagerDuty does. Harmless if not due."""
    incident = _locked(incident)
    if (
        incident.status != Incident.Status.ACKNOWLEDGED
        or incident.ack_timeout_at is None
        or incident.ack_timeout_at > now
    ):
        return None
    incident.status = Incident.Status.TRIGGERED
    incident.ack_timeout_at = None
    incident.current_step = 0
    incident.loop = 0
    incident.round += 1
    incident.next_escalation_at = now
    incident.save()
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.UNACKNOWLEDGED,
        at=now,
        message="Acknowledged but not resolved in time: triggered again, escalating from step 1.",
    )
    _after_commit_advance(incident)
    return incident


@transaction.atomic
def incident_resolve(
    *, incident: Incident, by: AbstractUser | None, via: str, at: datetime, note: str = ""
) -> Incident:
    incident = _locked(incident)
    if incident.status == Incident.Status.RESOLVED:
        raise IncidentStateError(f"Incident #{incident.pk} is already resolved.")
    incident.status = Incident.Status.RESOLVED
    incident.resolved_at = at
    incident.resolved_by = by
    incident.next_escalation_at = None
    incident.ack_timeout_at = None
    incident.save()
    _skip_pending_notifications(incident, at, "incident resolved")
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.RESOLVED,
        at=at,
        actor=by,
        channel=via,
        message=note or "Resolved",
    )
    return incident


@transaction.atomic
def incident_escalate(
    *,
    incident: Incident,
    by: AbstractUser | None,
    via: str,
    at: datetime,
    to_step: int | None = None,
) -> Incident:
    """Escalate by hand, now: to the next step, or to a chosen one (0-based)."""
    incident = _locked(incident)
    if incident.status == Incident.Status.RESOLVED:
        raise IncidentStateError(f"Incident #{incident.pk} is resolved: nothing to escalate.")
    steps = incident.policy_snapshot.get("steps", [])
    if not steps:
        raise IncidentStateError("The incident's escalation policy has no steps.")
    if to_step is None:
        fired = _last_fired_step(incident)
        to_step = min(fired + 1, len(steps) - 1) if fired is not None else 0
    if not 0 <= to_step < len(steps):
        raise IncidentStateError(f"Step {to_step + 1} does not exist: the policy has {len(steps)}.")
    incident.status = Incident.Status.TRIGGERED
    incident.ack_timeout_at = None
    incident.current_step = to_step
    incident.round += 1
    incident.next_escalation_at = at
    incident.save()
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.ESCALATED,
        at=at,
        actor=by,
        channel=via,
        message=f"Escalated by hand to step {to_step + 1}",
        data={"step": to_step},
    )
    _after_commit_advance(incident)
    return incident


@transaction.atomic
def incident_reassign(
    *,
    incident: Incident,
    by: AbstractUser | None,
    via: str,
    at: datetime,
    user: AbstractUser | None = None,
    policy: EscalationPolicy | None = None,
) -> Incident:
    """Hand the incident to one person (paged now) or to another escalation policy (from its
    first step). Either way it is triggered again until someone acknowledges."""
    if (user is None) == (policy is None):
        raise IncidentStateError("Reassign to exactly one person or one escalation policy.")
    incident = _locked(incident)
    if incident.status == Incident.Status.RESOLVED:
        raise IncidentStateError(
            f"Incident #{incident.pk} is resolved: reassigning makes no sense."
        )
    if user is not None:
        snapshot = {
            "name": f"Reassigned to {user}",
            "repeat_count": 0,
            "steps": [{"delay_minutes": 30, "users": [user.pk], "schedules": [], "teams": []}],
        }
        target = str(user)
        incident.escalation_policy = None
    else:
        snapshot = policy_snapshot(policy)
        target = f"escalation policy {policy.name}"
        incident.escalation_policy = policy
    incident.policy_snapshot = snapshot
    incident.status = Incident.Status.TRIGGERED
    incident.current_step = 0
    incident.loop = 0
    incident.round += 1
    incident.next_escalation_at = at
    incident.ack_timeout_at = None
    incident.save()
    incident.assignees.clear()
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.REASSIGNED,
        at=at,
        actor=by,
        channel=via,
        message=f"Reassigned to {target}",
    )
    _after_commit_advance(incident)
    return incident


@transaction.atomic
def incident_add_note(
    *, incident: Incident, by: AbstractUser | None, via: str, at: datetime, text: str
) -> TimelineEntry:
    text = (text or "").strip()
    if not text:
        raise IncidentStateError("A note needs some text.")
    if len(text) > 10_000:
        raise IncidentStateError("A note may be at most 10,000 characters.")
    incident = _locked(incident)
    return timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.NOTE,
        at=at,
        actor=by,
        channel=via,
        message=text,
    )


@transaction.atomic
def incident_set_urgency(
    *, incident: Incident, by: AbstractUser | None, via: str, at: datetime, urgency: str
) -> Incident:
    if urgency not in Urgency.values:
        raise IncidentStateError(f"Urgency must be one of {', '.join(Urgency.values)}.")
    incident = _locked(incident)
    if incident.urgency == urgency:
        return incident
    incident.urgency = urgency
    incident.save(update_fields=["urgency", "updated_at"])
    timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.URGENCY,
        at=at,
        actor=by,
        channel=via,
        message=f"Urgency set to {urgency}",
    )
    return incident


# --- the escalation engine ---------------------------------------------------------------------


def _last_fired_step(incident: Incident) -> int | None:
    page = (
        Page.objects.filter(incident=incident, round=incident.round, loop=incident.loop)
        .exclude(step=LEADS_FALLBACK_STEP)
        .order_by("-step")
        .first()
    )
    return page.step if page else None


def resolve_step_targets(step: dict, at: datetime) -> list[AbstractUser]:
    """The people a step reaches at `at`: its users, whoever is on call on its schedules, and
    the leads and responders of its teams, each once, in that order."""
    ids: list[int] = list(step.get("users", []))
    schedule_ids = step.get("schedules", [])
    if schedule_ids:
        from schedules.models import Schedule

        schedules = list(Schedule.objects.filter(pk__in=schedule_ids))
        for shift in schedule_selectors.who_is_on_call_many(schedules, at).values():
            if shift is not None:
                ids.append(shift.user_id)
    team_ids = step.get("teams", [])
    if team_ids:
        from oncall.models import Membership

        ids += list(
            Membership.objects.filter(
                team_id__in=team_ids, role__in=[Role.LEAD, Role.RESPONDER]
            ).values_list("user_id", flat=True)
        )
    seen: dict[int, None] = dict.fromkeys(ids)
    users = {u.pk: u for u in User.objects.filter(pk__in=seen, is_active=True)}
    return [users[pk] for pk in seen if pk in users]


def _page(incident: Incident, users: Iterable[AbstractUser], step: int, at: datetime) -> list:
    """Page each user once for this step, loop and round: a Page row (unique) and a Notification per
    notification rule of the incident's urgency (every contact method at once if the person set
    no rule). Returns the users actually reachable (with at least one contact method)."""
    users = list(users)
    methods: dict[int, list[ContactMethod]] = {}
    for method in ContactMethod.objects.filter(user__in=users):
        methods.setdefault(method.user_id, []).append(method)
    rules: dict[int, list[NotificationRule]] = {}
    for rule in NotificationRule.objects.filter(user__in=users, urgency=incident.urgency):
        rules.setdefault(rule.user_id, []).append(rule)
    reached = []
    for user in users:
        if user.pk not in methods:
            continue
        try:
            with transaction.atomic():
                page = Page.objects.create(
                    incident=incident,
                    user=user,
                    step=step,
                    loop=incident.loop,
                    round=incident.round,
                    paged_at=at,
                )
        except IntegrityError:  # already paged for this step and loop: nothing to do
            reached.append(user)
            continue
        by_id = {m.pk: m for m in methods[user.pk]}
        plan = [
            (by_id[r.contact_method_id], r.delay_minutes)
            for r in rules.get(user.pk, [])
            if r.contact_method_id in by_id
        ]
        if not plan:
            plan = [(m, 0) for m in methods[user.pk]]
        Notification.objects.bulk_create(
            Notification(
                page=page,
                incident=incident,
                user=user,
                contact_method=method,
                channel=method.kind,
                rule_delay_minutes=delay,
                due_at=at + timedelta(minutes=delay),
            )
            for method, delay in plan
        )
        reached.append(user)
    return reached


def _team_leads(incident: Incident) -> list[AbstractUser]:
    return list(
        User.objects.filter(
            memberships__team_id=incident.service.team_id,
            memberships__role=Role.LEAD,
            is_active=True,
        )
    )


@transaction.atomic
def incident_advance(*, incident: Incident | int, now: datetime) -> Incident | None:
    """Fire the incident's due escalation step, if any, and schedule the next one.

    Does nothing for an acknowledged or resolved incident, or one not yet due, so a stale or
    duplicate task is harmless. A step whose targets reach nobody writes a warning and the next
    step fires at once; if no step of the policy reaches anybody, the team's leads are paged.
    """
    incident = _locked(incident)
    if (
        incident.status != Incident.Status.TRIGGERED
        or incident.next_escalation_at is None
        or incident.next_escalation_at > now
    ):
        return None
    snapshot = incident.policy_snapshot or {}
    steps = snapshot.get("steps", [])
    repeat = int(snapshot.get("repeat_count", 0))
    reached_anybody = Page.objects.filter(incident=incident).exists()
    start_loop = incident.loop
    tried = 0
    while tried < max(len(steps), 1):
        tried += 1
        if not steps:
            break
        index = incident.current_step
        step = steps[index]
        users = resolve_step_targets(step, now)
        reached = _page(incident, users, index, now)
        delay = timedelta(minutes=int(step.get("delay_minutes", 0)))
        # Where to go next: the following step, or the first step of the next loop, or nowhere.
        if index + 1 < len(steps):
            incident.current_step, next_loop = index + 1, incident.loop
        elif incident.loop < repeat:
            incident.current_step, next_loop = 0, incident.loop + 1
        else:
            next_loop = None
        if reached:
            reached_anybody = True
            incident.assignees.set(reached)
            names = ", ".join(str(u) for u in reached)
            timeline_add(
                incident=incident,
                kind=TimelineEntry.Kind.ESCALATED,
                at=now,
                message=f"Step {index + 1} (loop {incident.loop + 1}): paged {names}",
                data={"step": index, "loop": incident.loop, "users": [u.pk for u in reached]},
            )
            if next_loop is None:
                incident.next_escalation_at = None
            else:
                incident.loop = next_loop
                incident.next_escalation_at = now + delay
            break
        timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.WARNING,
            at=now,
            message=f"Step {index + 1} reaches nobody (no one on call, or no contact method): "
            "moving on at once.",
            data={"step": index, "loop": incident.loop},
        )
        if next_loop is None:
            incident.next_escalation_at = None
            break
        if next_loop != incident.loop and reached_anybody:
            # A new loop only makes sense if somebody was reached before: wait out the delay.
            incident.loop = next_loop
            incident.next_escalation_at = now + delay
            break
        incident.loop = next_loop
    if not reached_anybody:
        incident.loop = start_loop
        leads = _team_leads(incident)
        reached = _page(incident, leads, LEADS_FALLBACK_STEP, now)
        incident.assignees.set(reached)
        if reached:
            timeline_add(
                incident=incident,
                kind=TimelineEntry.Kind.ESCALATED,
                at=now,
                message="No step reached anybody: paged the team's leads, "
                + ", ".join(str(u) for u in reached),
                data={"step": LEADS_FALLBACK_STEP, "users": [u.pk for u in reached]},
            )
        else:
            timeline_add(
                incident=incident,
                kind=TimelineEntry.Kind.WARNING,
                at=now,
                message="Nobody could be paged: no step and no team lead has a contact method.",
            )
        incident.next_escalation_at = None
    incident.save()
    _after_commit_advance(incident)
    _after_commit_send()
    return incident


def incidents_due(now: datetime, limit: int = 200) -> list[int]:
    """Ids of incidents whose escalation or acknowledgement timeout is overdue (the sweep)."""
    return list(
        Incident.objects.filter(
            Q(status=Incident.Status.TRIGGERED, next_escalation_at__lte=now)
            | Q(status=Incident.Status.ACKNOWLEDGED, ack_timeout_at__lte=now)
        )
        .order_by("next_escalation_at")
        .values_list("pk", flat=True)[:limit]
    )
