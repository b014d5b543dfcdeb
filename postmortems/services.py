"""Every change to a postmortem: create from incidents, edit, review, publish, amend.

Pages, the API, the admin and Celery tasks call these functions, so each rule lives here once.
Each runs in a transaction, locks the postmortem row where a transition depends on its state,
and refuses what is not allowed with `PostmortemError` (the message is for a person to read).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from incidents.models import Incident, Integration, Page, Service, TimelineEntry
from oncall import access, notify
from oncall.models import ContactKind, ContactMethod, Membership, Role, Urgency
from oncall.services import profile_for

from .models import (
    ActionItem,
    Amendment,
    Postmortem,
    PostmortemReminder,
    ReviewComment,
    ReviewRequest,
    TimelineItem,
)

User = get_user_model()
logger = logging.getLogger(__name__)

# How far a timeline item may lie from the outage window before it is taken for a typo.
TIMELINE_SLACK = dt.timedelta(days=365)
# The fields of a postmortem a person writes (the API, the edit page and amendments use these).
EDITABLE_FIELDS = (
    "title",
    "urgency",
    "started_at",
    "ended_at",
    "time_zone",
    "impact",
    "users_affected_percent",
    "summary_root_cause",
    "root_cause",
    "resolution",
    "improvements",
    "services",
)
TEXT_LIMIT = 50_000


class PostmortemError(Exception):
    """A refused change: the transition is not allowed, the person may not do it, or the input
    makes no sense. `message` is for a person to read; `field` names the form field at fault
    when there is one."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class PostmortemPermissionError(PostmortemError):
    """The person may not make this change (the API answers 403)."""


# --- who may do what ---------------------------------------------------------------------------


def can_write(user: AbstractUser, postmortem_or_team) -> bool:
    """Leads and responders of the team write and review its postmortems; observers read."""
    team_id = _team_id(postmortem_or_team)
    return bool(user.is_authenticated and access.can_act_on_team(user, team_id))


def can_lead(user: AbstractUser, postmortem_or_team) -> bool:
    team_id = _team_id(postmortem_or_team)
    return bool(user.is_authenticated and (user.is_superuser or access.is_lead(user, team_id)))


def can_publish(user: AbstractUser, postmortem: Postmortem) -> bool:
    """The author or a lead of the team publishes (a lead even without an approval)."""
    is_author = postmortem.author_id == user.pk and can_write(user, postmortem)
    return bool(user.is_authenticated and (is_author or can_lead(user, postmortem)))


def has_approval(postmortem: Postmortem) -> bool:
    """At least one approval by somebody other than the author."""
    return (
        postmortem.reviews.filter(state=ReviewRequest.State.APPROVED)
        .exclude(reviewer_id=postmortem.author_id)
        .exists()
    )


def _team_id(obj) -> int:
    if isinstance(obj, Postmortem):
        return obj.team_id
    return obj if isinstance(obj, int) else obj.pk


def _require_write(user: AbstractUser, postmortem_or_team) -> None:
    if not can_write(user, postmortem_or_team):
        raise PostmortemPermissionError(
            "Only the team's leads and responders write and review its postmortems."
        )


def _locked(postmortem: Postmortem) -> Postmortem:
    return Postmortem.objects.select_for_update().get(pk=postmortem.pk)


def _name(user: AbstractUser | None) -> str:
    if user is None:
        return "Oncall"
    try:
        return user.profile.name
    except ObjectDoesNotExist:  # no profile row: fall back on the account name
        return user.get_username()


# --- create from incidents ---------------------------------------------------------------------


@transaction.atomic
def postmortem_create_from_incidents(
    *, user: AbstractUser, incidents: Iterable[Incident]
) -> Postmortem:
    """A draft filled from the incidents' data: the outage window, affected services, who was
    paged and who acknowledged, and the timeline. Returns the existing postmortem if one of the
    incidents already has one, so an incident never gets two."""
    ids = sorted({i.pk if isinstance(i, Incident) else int(i) for i in incidents})
    if not ids:
        raise PostmortemError("Choose at least one incident.")
    rows = list(
        Incident.objects.select_for_update(of=("self",))
        .filter(pk__in=ids)
        .select_related("service__team", "integration", "acknowledged_by__profile")
        .order_by("triggered_at", "id")
    )
    if len(rows) != len(ids):
        raise PostmortemError("One of the incidents does not exist.")
    team_ids = {i.service.team_id for i in rows}
    if len(team_ids) > 1:
        raise PostmortemError("A postmortem covers incidents of one team only.")
    team = rows[0].service.team
    _require_write(user, team)
    existing = Postmortem.objects.filter(incidents__in=rows).order_by("id").first()
    if existing is not None:
        return existing
    still_open = [i for i in rows if i.status != Incident.Status.RESOLVED]
    if still_open:
        raise PostmortemError(
            f"Incident #{still_open[0].pk} is still {still_open[0].status}: "
            "resolve it before writing its postmortem."
        )
    services = []
    for incident in rows:
        if incident.service not in services:
            services.append(incident.service)
    postmortem = Postmortem.objects.create(
        team=team,
        title=rows[0].title[:200],
        author=user,
        urgency=Urgency.HIGH if any(i.urgency == Urgency.HIGH for i in rows) else Urgency.LOW,
        started_at=min(i.triggered_at for i in rows),
        ended_at=max(i.resolved_at for i in rows),
        time_zone=profile_for(user).time_zone,
        impact=_impact_from(rows, services),
    )
    postmortem.incidents.set(rows)
    postmortem.services.set(services)
    TimelineItem.objects.bulk_create(_timeline_from(postmortem, rows))
    return postmortem


def _impact_from(incidents: list[Incident], services: list[Service]) -> str:
    """The impact paragraph to start from: affected services, who was paged, who acknowledged."""
    paged = (
        Page.objects.filter(incident__in=incidents)
        .select_related("user__profile")
        .order_by("paged_at", "id")
    )
    paged_names = list(dict.fromkeys(_name(p.user) for p in paged))
    acked = [
        f"{_name(i.acknowledged_by)} ({i.acknowledged_at:%Y-%m-%d %H:%M} UTC)"
        for i in incidents
        if i.acknowledged_by_id
    ]
    lines = ["Affected services: " + ", ".join(s.name for s in services) + "."]
    lines.append("Paged: " + (", ".join(paged_names) if paged_names else "nobody was paged") + ".")
    lines.append("Acknowledged by: " + (", ".join(acked) if acked else "nobody acknowledged") + ".")
    return "\n".join(lines)


_ESCALATION_KINDS = {
    TimelineEntry.Kind.ESCALATED,
    TimelineEntry.Kind.NOTIFIED,
    TimelineEntry.Kind.REASSIGNED,
    TimelineEntry.Kind.UNACKNOWLEDGED,
}


def _monitor_detail(integration: Integration) -> str:
    """What the built-in monitor watched, for the "detected" line: the URL an HTTP check asks,
    the interval of a heartbeat."""
    if integration.kind == Integration.Kind.HTTP_CHECK:
        check = getattr(integration, "http_check", None)
        if check is not None:
            return f", checking {check.url} for HTTP {check.expected_status}"
    if integration.kind == Integration.Kind.HEARTBEAT:
        heartbeat = getattr(integration, "heartbeat", None)
        if heartbeat is not None:
            return f": no heartbeat within {heartbeat.interval_minutes} min"
    return ""


def _timeline_from(postmortem: Postmortem, incidents: list[Incident]) -> list[TimelineItem]:
    """Timeline items from the incidents' own timelines: first alert and which integration or
    monitor detected it, notifications and escalations, acknowledgements, notes, resolution."""
    entries = (
        TimelineEntry.objects.filter(incident__in=incidents)
        .select_related(
            "actor__profile",
            "incident__integration__http_check",
            "incident__integration__heartbeat",
            "incident__service",
        )
        .order_by("at", "id")
    )
    prefix_needed = len(incidents) > 1
    postmortem_items = []
    position = 0
    for entry in entries:
        incident = entry.incident
        prefix = f"Incident #{incident.pk}: " if prefix_needed else ""
        who = _name(entry.actor) if entry.actor_id else None
        kind = detection = None
        text = ""
        if entry.kind == TimelineEntry.Kind.TRIGGERED:
            kind = TimelineItem.Kind.DETECTED
            integration: Integration | None = incident.integration
            if integration is not None:
                detection = TimelineItem.Detection.MONITORING
                text = (
                    f"First alert on {incident.service.name}: {incident.title}. "
                    f"Detected by the {integration.get_kind_display()} integration "
                    f"“{integration.name}”{_monitor_detail(integration)}."
                )
            else:
                detection = TimelineItem.Detection.ENGINEER
                text = f"Incident opened on {incident.service.name}" + (f" by {who}" if who else "")
                text += f": {incident.title}."
        elif entry.kind in _ESCALATION_KINDS:
            kind = TimelineItem.Kind.ESCALATED
            text = entry.message + (f" (by {who})" if who else "")
        elif entry.kind == TimelineEntry.Kind.ACKNOWLEDGED:
            kind = TimelineItem.Kind.ACTION
            text = f"Acknowledged by {who or 'Oncall'} via {entry.get_channel_display()}."
        elif entry.kind == TimelineEntry.Kind.NOTE:
            kind = TimelineItem.Kind.ACTION
            text = f"Note by {who or 'Oncall'}: {entry.message}"
        elif entry.kind == TimelineEntry.Kind.RESOLVED:
            kind = TimelineItem.Kind.RESOLVED
            note = "" if entry.message in ("", "Resolved") else f": {entry.message}"
            text = f"Resolved by {who or 'the integration'}{note}."
        if kind is None:
            continue  # repeated alerts, failed deliveries, warnings: noise in a postmortem
        postmortem_items.append(
            TimelineItem(
                postmortem=postmortem,
                at=entry.at,
                kind=kind,
                detection=detection or "",
                text=(prefix + text)[:2000],
                position=position,
            )
        )
        position += 1
    return postmortem_items


# --- editing -----------------------------------------------------------------------------------


def _require_editable(postmortem: Postmortem) -> None:
    if postmortem.status == Postmortem.Status.PUBLISHED:
        raise PostmortemError(
            "This postmortem is published: change it through an amendment, giving a reason."
        )


def _apply_fields(postmortem: Postmortem, fields: dict) -> dict:
    """Set the given fields on the postmortem, validate, and return {field: (old, new)} for
    those that changed. `services` is a list of Service objects (of the team)."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise PostmortemError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    changes: dict = {}
    services = fields.pop("services", None)
    for name, value in fields.items():
        if isinstance(value, str):
            value = value.strip() if name in ("title", "time_zone") else value
            if len(value) > TEXT_LIMIT:
                raise PostmortemError(
                    f"{_label(name)} is too long (at most {TEXT_LIMIT:,} characters).",
                    field=name,
                )
        old = getattr(postmortem, name)
        if old != value:
            changes[name] = (_plain(old), _plain(value))
            setattr(postmortem, name, value)
    if not (postmortem.title or "").strip():
        raise PostmortemError("Give the postmortem a title.", field="title")
    if (
        postmortem.started_at
        and postmortem.ended_at
        and postmortem.ended_at < postmortem.started_at
    ):
        raise PostmortemError("The outage ends before it starts.", field="ended_at")
    try:
        postmortem.full_clean(exclude=["team", "author", "published_by"])
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise PostmortemError(
            f"{_label(field)}: {' '.join(messages)}" if field != "__all__" else messages[0],
            field=None if field == "__all__" else field,
        ) from error
    if services is not None:
        services = list(services)
        if any(s.team_id != postmortem.team_id for s in services):
            raise PostmortemError(
                "Affected services must be the team's own services.", field="services"
            )
        old_ids = sorted(postmortem.services.values_list("pk", flat=True))
        new_ids = sorted(s.pk for s in services)
        if old_ids != new_ids:
            changes["services"] = (
                sorted(Service.objects.filter(pk__in=old_ids).values_list("name", flat=True)),
                sorted(s.name for s in services),
            )
            changes["_services"] = services
    return changes


def _label(field: str) -> str:
    try:
        return str(Postmortem._meta.get_field(field).verbose_name).capitalize()
    except FieldDoesNotExist:
        return field.replace("_", " ").capitalize()


def _plain(value):
    """A JSON-friendly copy of a field value (for amendments)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _save_changes(postmortem: Postmortem, changes: dict) -> None:
    services = changes.pop("_services", None)
    postmortem.save()
    if services is not None:
        postmortem.services.set(services)


@transaction.atomic
def postmortem_update(*, postmortem: Postmortem, user: AbstractUser, **fields) -> Postmortem:
    """Edit a postmortem that is not yet published (any lead or responder of the team)."""
    _require_write(user, postmortem)
    postmortem = _locked(postmortem)
    _require_editable(postmortem)
    changes = _apply_fields(postmortem, fields)
    _save_changes(postmortem, changes)
    return postmortem


# One save of the amend page may change fields, timeline items and action items: inside
# `amendment_recorded` those changes gather into one Amendment instead of one per service call.
_open_amendment: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "open_amendment", default=None
)


def _record_amendment(
    postmortem: Postmortem, user: AbstractUser, reason: str, before: dict, after: dict
) -> Amendment | None:
    gathering = _open_amendment.get()
    if gathering is not None and gathering["postmortem_id"] == postmortem.pk:
        for key, value in before.items():
            gathering["before"].setdefault(key, value)  # the content before the first change
        gathering["after"].update(after)
        return None
    return Amendment.objects.create(
        postmortem=postmortem,
        author=user,
        at=timezone.now(),
        reason=reason,
        before=before,
        after=after,
    )


@contextlib.contextmanager
def amendment_recorded(*, postmortem: Postmortem, user: AbstractUser, reason: str):
    """Run several changes to a published postmortem as one amendment (who, when, why, the
    content before and after). Nothing is recorded if nothing changed or the block raises."""
    gathering = {"postmortem_id": postmortem.pk, "before": {}, "after": {}, "amendment": None}
    token = _open_amendment.set(gathering)
    try:
        with transaction.atomic():
            yield gathering
            _open_amendment.reset(token)
            token = None
            changed = {
                key
                for key in gathering["after"]
                if gathering["after"][key] != gathering["before"].get(key)
            }
            if changed:
                gathering["amendment"] = Amendment.objects.create(
                    postmortem=postmortem,
                    author=user,
                    at=timezone.now(),
                    reason=(reason or "").strip(),
                    before={key: gathering["before"][key] for key in changed},
                    after={key: gathering["after"][key] for key in changed},
                )
    finally:
        if token is not None:
            _open_amendment.reset(token)


@transaction.atomic
def postmortem_amend(
    *, postmortem: Postmortem, user: AbstractUser, reason: str, **fields
) -> Amendment | None:
    """Change a published postmortem, recording who, when, why and the content before and
    after (the history is kept)."""
    _require_write(user, postmortem)
    reason = (reason or "").strip()
    if not reason:
        raise PostmortemError("Say why the published postmortem changes.", field="reason")
    postmortem = _locked(postmortem)
    if postmortem.status != Postmortem.Status.PUBLISHED:
        raise PostmortemError("Only a published postmortem is amended: edit the draft instead.")
    changes = _apply_fields(postmortem, fields)
    visible = {k: v for k, v in changes.items() if not k.startswith("_")}
    if not visible:
        raise PostmortemError("Nothing changed: there is nothing to amend.")
    _save_changes(postmortem, changes)
    return _record_amendment(
        postmortem,
        user,
        reason,
        before={k: old for k, (old, new) in visible.items()},
        after={k: new for k, (old, new) in visible.items()},
    )


def _items_snapshot(postmortem: Postmortem, what: str) -> list[dict]:
    if what == "timeline_items":
        return [
            {"at": i.at.isoformat(), "kind": i.kind, "detection": i.detection, "text": i.text}
            for i in postmortem.timeline_items.all()
        ]
    return [
        {
            "title": i.title,
            "owner": i.owner.get_username(),
            "due_date": i.due_date.isoformat(),
            "status": i.status,
            "url": i.url,
        }
        for i in postmortem.action_items.select_related("owner").all()
    ]


class _ItemChange:
    """Wraps a change to timeline or action items: on a published postmortem it needs a reason
    and is recorded as an amendment with the list before and after."""

    def __init__(self, postmortem: Postmortem, user: AbstractUser, what: str, reason: str):
        self.postmortem, self.user, self.what = postmortem, user, what
        self.reason = (reason or "").strip()
        self.published = postmortem.status == Postmortem.Status.PUBLISHED
        if self.published and not self.reason:
            raise PostmortemError(
                "This postmortem is published: give a reason, the change is recorded as an "
                "amendment.",
                field="reason",
            )
        self.before = _items_snapshot(postmortem, what) if self.published else None

    def done(self) -> None:
        if not self.published:
            return
        after = _items_snapshot(self.postmortem, self.what)
        if after == self.before:
            return
        _record_amendment(
            self.postmortem,
            self.user,
            self.reason,
            before={self.what: self.before},
            after={self.what: after},
        )


def _check_timeline_time(postmortem: Postmortem, at: dt.datetime) -> None:
    if at is None or timezone.is_naive(at):
        raise PostmortemError("Give the time of the timeline item, with its date.", field="at")
    start = postmortem.started_at or postmortem.created_at or timezone.now()
    end = postmortem.ended_at or start
    if at < start - TIMELINE_SLACK or at > end + TIMELINE_SLACK:
        raise PostmortemError(
            f"{at:%Y-%m-%d %H:%M} UTC is more than a year away from the outage "
            f"({start:%Y-%m-%d} – {end:%Y-%m-%d}): check the date.",
            field="at",
        )


def timeline_item_check(
    *, postmortem: Postmortem, at: dt.datetime, text: str, kind: str, detection: str = ""
) -> tuple[str, str]:
    """Refuse a timeline item that makes no sense (PostmortemError naming the field); return the
    cleaned text and detection. Used by `timeline_item_save` and by forms before saving."""
    text = (text or "").strip()
    if not text:
        raise PostmortemError("Write what happened, in one or two sentences.", field="text")
    if len(text) > 2000:
        raise PostmortemError(
            "Keep a timeline item to one or two sentences (at most 2,000 characters).",
            field="text",
        )
    if kind not in TimelineItem.Kind.values:
        raise PostmortemError(
            f"Kind must be one of {', '.join(TimelineItem.Kind.values)}.", field="kind"
        )
    detection = detection or ""
    if detection and detection not in TimelineItem.Detection.values:
        raise PostmortemError(
            f"How it was detected must be one of {', '.join(TimelineItem.Detection.values)}.",
            field="detection",
        )
    if detection and kind != TimelineItem.Kind.DETECTED:
        raise PostmortemError(
            "“How it was detected” goes with a “detected” item only.", field="detection"
        )
    _check_timeline_time(postmortem, at)
    return text, detection


@transaction.atomic
def timeline_item_save(
    *,
    postmortem: Postmortem,
    user: AbstractUser,
    at: dt.datetime,
    text: str,
    kind: str = TimelineItem.Kind.ACTION,
    detection: str = "",
    position: int | None = None,
    item: TimelineItem | None = None,
    reason: str = "",
) -> TimelineItem:
    """Add a timeline item, or change `item`. On a published postmortem it needs a reason and
    becomes an amendment."""
    _require_write(user, postmortem)
    postmortem = _locked(postmortem)
    if item is not None and item.postmortem_id != postmortem.pk:
        raise PostmortemError("That timeline item belongs to another postmortem.")
    change = _ItemChange(postmortem, user, "timeline_items", reason)
    text, detection = timeline_item_check(
        postmortem=postmortem, at=at, text=text, kind=kind, detection=detection
    )
    if item is None:
        item = TimelineItem(postmortem=postmortem)
        if position is None:
            last = postmortem.timeline_items.order_by("-position").first()
            position = last.position + 1 if last else 0
    item.at, item.kind, item.detection, item.text = at, kind, detection, text
    if position is not None:
        if position < 0:
            raise PostmortemError("Position can't be negative.", field="position")
        item.position = position
    item.save()
    change.done()
    return item


@transaction.atomic
def timeline_item_delete(*, item: TimelineItem, user: AbstractUser, reason: str = "") -> None:
    postmortem = _locked(item.postmortem)
    _require_write(user, postmortem)
    change = _ItemChange(postmortem, user, "timeline_items", reason)
    TimelineItem.objects.filter(pk=item.pk).delete()
    change.done()


def _check_owner(postmortem: Postmortem, owner: AbstractUser | None) -> None:
    if owner is None:
        raise PostmortemError("Every action item needs an owner.", field="owner")
    if not owner.is_active:
        raise PostmortemError(f"{_name(owner)} can no longer sign in.", field="owner")
    if not (
        owner.is_superuser
        or owner.memberships.filter(
            team_id=postmortem.team_id, role__in=[Role.LEAD, Role.RESPONDER]
        ).exists()
    ):
        raise PostmortemError(
            f"{_name(owner)} is not a lead or responder of {postmortem.team}: "
            "choose an owner from the team.",
            field="owner",
        )


def _earliest_due(postmortem: Postmortem) -> dt.date | None:
    if postmortem.started_at is None:
        return None
    return timezone.localtime(postmortem.started_at, _zone(postmortem)).date()


def _zone(postmortem: Postmortem) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(postmortem.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def action_item_check(
    *, postmortem: Postmortem, title: str, owner: AbstractUser | None, due_date
) -> str:
    """Refuse an action item that makes no sense: no title, an owner from outside the team, a due
    date before the incident started (PostmortemError naming the field). Returns the title."""
    title = (title or "").strip()
    if not title:
        raise PostmortemError(
            "Say what is to be done, e.g. “add monitoring on server memory”.", field="title"
        )
    if len(title) > 300:
        raise PostmortemError("Keep the title under 300 characters.", field="title")
    _check_owner(postmortem, owner)
    if not isinstance(due_date, dt.date):
        raise PostmortemError("Give a due date.", field="due_date")
    earliest = _earliest_due(postmortem)
    if earliest is not None and due_date < earliest:
        raise PostmortemError(
            f"The due date {due_date:%Y-%m-%d} is before the incident started "
            f"({earliest:%Y-%m-%d}).",
            field="due_date",
        )
    return title


@transaction.atomic
def action_item_save(
    *,
    postmortem: Postmortem,
    user: AbstractUser,
    title: str,
    owner: AbstractUser,
    due_date: dt.date,
    url: str = "",
    item: ActionItem | None = None,
    reason: str = "",
) -> ActionItem:
    """Add an action item, or change `item`: an owner from the team, a due date not before the
    incident. On a published postmortem it needs a reason and becomes an amendment."""
    _require_write(user, postmortem)
    postmortem = _locked(postmortem)
    if item is not None and item.postmortem_id != postmortem.pk:
        raise PostmortemError("That action item belongs to another postmortem.")
    change = _ItemChange(postmortem, user, "action_items", reason)
    title = action_item_check(postmortem=postmortem, title=title, owner=owner, due_date=due_date)
    if item is None:
        item = ActionItem(postmortem=postmortem)
    item.title, item.owner, item.due_date, item.url = title, owner, due_date, (url or "").strip()
    try:
        item.full_clean(exclude=["postmortem", "owner", "done_by"])
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise PostmortemError(" ".join(messages), field=field) from error
    item.save()
    change.done()
    return item


@transaction.atomic
def action_item_delete(*, item: ActionItem, user: AbstractUser, reason: str = "") -> None:
    postmortem = _locked(item.postmortem)
    _require_write(user, postmortem)
    change = _ItemChange(postmortem, user, "action_items", reason)
    ActionItem.objects.filter(pk=item.pk).delete()
    change.done()


def _require_item_closer(item: ActionItem, user: AbstractUser) -> None:
    if not (
        user.is_authenticated and (item.owner_id == user.pk or can_lead(user, item.postmortem))
    ):
        raise PostmortemPermissionError(
            "Only the action item's owner or a lead of the team closes or reopens it."
        )


@transaction.atomic
def action_item_close(*, item: ActionItem, user: AbstractUser) -> ActionItem:
    """Mark an action item done (its owner, or a lead of the team), whatever the postmortem's
    status: the work usually happens after publication."""
    item = ActionItem.objects.select_for_update().select_related("postmortem").get(pk=item.pk)
    _require_item_closer(item, user)
    if item.status == ActionItem.Status.DONE:
        raise PostmortemError(f"“{item.title}” is already done.")
    item.status = ActionItem.Status.DONE
    item.done_at = timezone.now()
    item.done_by = user
    item.save(update_fields=["status", "done_at", "done_by", "updated_at"])
    return item


@transaction.atomic
def action_item_reopen(*, item: ActionItem, user: AbstractUser) -> ActionItem:
    item = ActionItem.objects.select_for_update().select_related("postmortem").get(pk=item.pk)
    _require_item_closer(item, user)
    if item.status == ActionItem.Status.OPEN:
        raise PostmortemError(f"“{item.title}” is already open.")
    item.status = ActionItem.Status.OPEN
    item.done_at = None
    item.done_by = None
    item.save(update_fields=["status", "done_at", "done_by", "updated_at"])
    return item


# --- review ------------------------------------------------------------------------------------


def _status_from_reviews(postmortem: Postmortem) -> str:
    """Any changes requested → changes requested; else an approval by a non-author → approved;
    else in review."""
    states = set(
        postmortem.reviews.exclude(reviewer_id=postmortem.author_id).values_list("state", flat=True)
    )
    if ReviewRequest.State.CHANGES_REQUESTED in states:
        return Postmortem.Status.CHANGES_REQUESTED
    if ReviewRequest.State.APPROVED in states:
        return Postmortem.Status.APPROVED
    return Postmortem.Status.IN_REVIEW


@transaction.atomic
def review_request(
    *, postmortem: Postmortem, user: AbstractUser, reviewers: Iterable[AbstractUser]
) -> list[ReviewRequest]:
    """Ask peers to review (the author or a lead of the team). Asking someone again after they
    decided reopens their review."""
    postmortem = _locked(postmortem)
    if not (postmortem.author_id == user.pk and can_write(user, postmortem)) and not can_lead(
        user, postmortem
    ):
        raise PostmortemPermissionError("Only the author or a lead of the team asks for a review.")
    _require_editable(postmortem)
    reviewers = list(dict.fromkeys(reviewers))
    if not reviewers:
        raise PostmortemError("Choose at least one reviewer.", field="reviewers")
    for reviewer in reviewers:
        if reviewer.pk == postmortem.author_id:
            raise PostmortemError(
                "The author can't review their own postmortem: ask a peer.", field="reviewers"
            )
        if (
            not reviewer.is_active
            or not reviewer.memberships.filter(
                team_id=postmortem.team_id, role__in=[Role.LEAD, Role.RESPONDER]
            ).exists()
        ):
            raise PostmortemError(
                f"{_name(reviewer)} is not a lead or responder of {postmortem.team}.",
                field="reviewers",
            )
    now = timezone.now()
    requests = []
    for reviewer in reviewers:
        review, created = ReviewRequest.objects.get_or_create(
            postmortem=postmortem,
            reviewer=reviewer,
            defaults={"requested_by": user, "requested_at": now},
        )
        if not created:
            review.state = ReviewRequest.State.PENDING
            review.requested_by = user
            review.requested_at = now
            review.decided_at = None
            review.reminded_at = None
            review.save()
        requests.append(review)
    postmortem.status = _status_from_reviews(postmortem)
    if postmortem.status == Postmortem.Status.CHANGES_REQUESTED:
        postmortem.status = Postmortem.Status.IN_REVIEW  # the author answered: look again
    postmortem.save(update_fields=["status", "updated_at"])
    _queue("notify_review_requested", [r.pk for r in requests])
    return requests


@transaction.atomic
def review_decide(
    *, postmortem: Postmortem, user: AbstractUser, decision: str, note: str = ""
) -> ReviewRequest:
    """A reviewer approves or requests changes; the postmortem's status follows the reviews."""
    postmortem = _locked(postmortem)
    if decision not in (ReviewRequest.State.APPROVED, ReviewRequest.State.CHANGES_REQUESTED):
        raise PostmortemError("Decide “approved” or “changes_requested”.", field="decision")
    if postmortem.author_id == user.pk:
        raise PostmortemPermissionError(
            "You wrote this postmortem: a peer has to approve it, not its author."
        )
    if postmortem.status == Postmortem.Status.PUBLISHED:
        raise PostmortemError("This postmortem is already published.")
    review = ReviewRequest.objects.filter(postmortem=postmortem, reviewer=user).first()
    if review is None:
        raise PostmortemPermissionError("You were not asked to review this postmortem.")
    if not can_write(user, postmortem):
        raise PostmortemPermissionError(
            "Only the team's leads and responders review its postmortems."
        )
    note = (note or "").strip()
    if len(note) > 5000:
        raise PostmortemError("Keep the note under 5,000 characters.", field="note")
    review.state = decision
    review.note = note
    review.decided_at = timezone.now()
    review.save(update_fields=["state", "note", "decided_at"])
    postmortem.status = _status_from_reviews(postmortem)
    postmortem.save(update_fields=["status", "updated_at"])
    _queue("notify_review_decided", review.pk)
    return review


@transaction.atomic
def review_comment_add(
    *, postmortem: Postmortem, user: AbstractUser, section: str, body: str
) -> ReviewComment:
    """A remark on one section, by a reviewer or anyone of the team; the author sees it."""
    _require_write(user, postmortem)
    postmortem = _locked(postmortem)
    if postmortem.status == Postmortem.Status.PUBLISHED:
        raise PostmortemError("This postmortem is published: its review is over.")
    if section not in ReviewComment.Section.values:
        raise PostmortemError(
            f"Section must be one of {', '.join(ReviewComment.Section.values)}.", field="section"
        )
    body = (body or "").strip()
    if not body:
        raise PostmortemError("Write the comment.", field="body")
    if len(body) > 5000:
        raise PostmortemError("Keep a comment under 5,000 characters.", field="body")
    return ReviewComment.objects.create(
        postmortem=postmortem, author=user, section=section, body=body, created_at=timezone.now()
    )


@transaction.atomic
def review_comment_resolve(
    *, comment: ReviewComment, user: AbstractUser, resolved: bool = True
) -> ReviewComment:
    """Mark a comment dealt with (or not): the postmortem's author, the comment's author or a
    lead of the team."""
    postmortem = comment.postmortem
    if not (
        (user.pk in (postmortem.author_id, comment.author_id) and can_write(user, postmortem))
        or can_lead(user, postmortem)
    ):
        raise PostmortemPermissionError(
            "Only the author, the commenter or a lead of the team resolves a comment."
        )
    comment.resolved = resolved
    comment.resolved_by = user if resolved else None
    comment.resolved_at = timezone.now() if resolved else None
    comment.save(update_fields=["resolved", "resolved_by", "resolved_at"])
    return comment


# --- publish -----------------------------------------------------------------------------------


@transaction.atomic
def postmortem_publish(
    *, postmortem: Postmortem, user: AbstractUser, reason: str = ""
) -> Postmortem:
    """Publish for the company to read. Needs an approval by someone other than the author and
    no outstanding request for changes; a lead of the team may publish without that, giving a
    reason that is recorded."""
    postmortem = _locked(postmortem)
    if postmortem.status == Postmortem.Status.PUBLISHED:
        raise PostmortemError("This postmortem is already published.")
    if not can_publish(user, postmortem):
        raise PostmortemPermissionError("Only the author or a lead of the team publishes.")
    missing = [
        label
        for label, value in (
            ("start time", postmortem.started_at),
            ("end time", postmortem.ended_at),
            ("impact", (postmortem.impact or "").strip()),
            ("root cause", (postmortem.summary_root_cause or postmortem.root_cause).strip()),
        )
        if not value
    ]
    if missing:
        raise PostmortemError(
            "The issue summary is what executives read first: fill in the "
            + ", ".join(missing)
            + " before publishing."
        )
    reason = (reason or "").strip()
    approved = postmortem.status == Postmortem.Status.APPROVED and has_approval(postmortem)
    if not approved:
        if not can_lead(user, postmortem):
            if postmortem.status == Postmortem.Status.CHANGES_REQUESTED:
                raise PostmortemError(
                    "A reviewer asked for changes: address them and ask for another review "
                    "before publishing."
                )
            raise PostmortemError(
                "Publishing needs at least one approval from someone other than the author."
            )
        if not reason:
            raise PostmortemError(
                "It has no approval from someone other than the author: as a lead you may "
                "publish anyway, giving the reason, which is recorded.",
                field="reason",
            )
    now = timezone.now()
    postmortem.status = Postmortem.Status.PUBLISHED
    postmortem.published_at = now
    postmortem.published_by = user
    postmortem.publish_override_reason = "" if approved else reason
    postmortem.save(
        update_fields=[
            "status",
            "published_at",
            "published_by",
            "publish_override_reason",
            "updated_at",
        ]
    )
    return postmortem


# --- reminders ---------------------------------------------------------------------------------

# Channels a reminder goes through: not voice calls (nothing is on fire), not SMS (too noisy for a
# daily nudge); e-mail, and the chat or webhook a person set up.
REMINDER_KINDS = (ContactKind.EMAIL, ContactKind.SLACK, ContactKind.WEBHOOK)
# Incidents resolved longer ago than this (past the due days) are no longer nagged about.
MISSING_POSTMORTEM_WINDOW = dt.timedelta(days=30)


@dataclass
class _Due:
    """Things one person is reminded of in one message."""

    user: AbstractUser
    reviews: list = dataclass_field(default_factory=list)
    incidents: list = dataclass_field(default_factory=list)
    action_items: list = dataclass_field(default_factory=list)

    def things(self) -> list[tuple[str, int]]:
        return (
            [(PostmortemReminder.Kind.REVIEW, r.pk) for r in self.reviews]
            + [(PostmortemReminder.Kind.MISSING, i.pk) for i in self.incidents]
            + [(PostmortemReminder.Kind.ACTION_ITEM, a.pk) for a in self.action_items]
        )


def _url(name: str, pk: int, fallback: str) -> str:
    try:
        path = reverse(name, args=[pk])
    except NoReverseMatch:
        path = fallback
    return f"{settings.BASE_URL}{path}"


def reminders_due(*, now: dt.datetime) -> dict[int, _Due]:
    """Who is to be reminded of what at `now`: reviewers of review requests pending for more
    than POSTMORTEM_REVIEW_REMINDER_DAYS; whoever acknowledged or resolved a high-urgency
    incident resolved more than POSTMORTEM_DUE_DAYS ago that still has no postmortem (the team's
    leads when nobody did); owners of overdue open action items. A fixed number of queries."""
    from .selectors import incidents_without_postmortem

    due: dict[int, _Due] = {}

    def add(user, what: str, thing) -> None:
        if user is None or not user.is_active:
            return
        getattr(due.setdefault(user.pk, _Due(user=user)), what).append(thing)

    review_days = dt.timedelta(days=settings.POSTMORTEM_REVIEW_REMINDER_DAYS)
    reviews = (
        ReviewRequest.objects.filter(
            state=ReviewRequest.State.PENDING, requested_at__lte=now - review_days
        )
        .exclude(postmortem__status=Postmortem.Status.PUBLISHED)
        .filter(  # still a lead or responder of the team: nobody else can review it now
            Exists(
                Membership.objects.filter(
                    team_id=OuterRef("postmortem__team_id"),
                    user_id=OuterRef("reviewer_id"),
                    role__in=[Role.LEAD, Role.RESPONDER],
                )
            )
        )
        .select_related("reviewer__profile", "postmortem__author__profile")
        .order_by("requested_at", "id")
    )
    for review in reviews:
        add(review.reviewer, "reviews", review)

    due_days = dt.timedelta(days=settings.POSTMORTEM_DUE_DAYS)
    incidents = list(
        incidents_without_postmortem(resolved_before=now - due_days).filter(
            resolved_at__gt=now - due_days - MISSING_POSTMORTEM_WINDOW
        )
    )
    team_ids = {i.service.team_id for i in incidents}
    acting = {}  # team id → {user id: user} of its leads and responders
    leads = {}  # team id → [leads]
    for membership in Membership.objects.filter(
        team_id__in=team_ids, role__in=[Role.LEAD, Role.RESPONDER], user__is_active=True
    ).select_related("user__profile"):
        acting.setdefault(membership.team_id, {})[membership.user_id] = membership.user
        if membership.role == Role.LEAD:
            leads.setdefault(membership.team_id, []).append(membership.user)
    for incident in incidents:
        members = acting.get(incident.service.team_id, {})
        authors = [
            members[uid]
            for uid in dict.fromkeys([incident.acknowledged_by_id, incident.resolved_by_id])
            if uid in members
        ]
        for user in authors or leads.get(incident.service.team_id, []):
            add(user, "incidents", incident)

    items = (
        ActionItem.objects.filter(
            status=ActionItem.Status.OPEN, due_date__lt=timezone.localdate(now)
        )
        .select_related("owner__profile", "postmortem")
        .order_by("due_date", "id")
    )
    for item in items:
        add(item.owner, "action_items", item)
    return due


def reminder_message(*, due: _Due, now: dt.datetime) -> notify.Message:
    """One message listing everything a person is reminded of today."""
    parts = []
    if due.reviews:
        parts.append(f"{len(due.reviews)} review{'s' if len(due.reviews) > 1 else ''} waiting")
    if due.incidents:
        n = len(due.incidents)
        parts.append(f"{n} postmortem{'s' if n > 1 else ''} to write")
    if due.action_items:
        n = len(due.action_items)
        parts.append(f"{n} overdue action item{'s' if n > 1 else ''}")
    subject = "Postmortems: " + ", ".join(parts)
    today = timezone.localdate(now)
    context = {
        "name": _name(due.user),
        "subject": subject,
        "reviews": [
            {
                "review": r,
                "days": (now - r.requested_at).days,
                "url": _url(
                    "postmortems:detail", r.postmortem_id, f"/postmortems/{r.postmortem_id}/"
                ),
            }
            for r in due.reviews
        ],
        "incidents": [
            {
                "incident": i,
                "days": (now - i.resolved_at).days,
                "url": _url("incidents:detail", i.pk, f"/incidents/{i.pk}/"),
            }
            for i in due.incidents
        ],
        "action_items": [
            {
                "item": a,
                "days": (today - a.due_date).days,
                "url": _url(
                    "postmortems:detail", a.postmortem_id, f"/postmortems/{a.postmortem_id}/"
                ),
            }
            for a in due.action_items
        ],
        "action_items_url": f"{settings.BASE_URL}/postmortems/action-items/",
    }
    return notify.Message(
        subject=subject,
        text=render_to_string("postmortems/email/reminder.txt", context).strip(),
        html=render_to_string("postmortems/email/reminder.html", context),
        url=context["action_items_url"] if due.action_items else "",
        event="postmortem.reminder",
        data={
            "reviews": [r.postmortem_id for r in due.reviews],
            "incidents_without_postmortem": [i.pk for i in due.incidents],
            "overdue_action_items": [a.pk for a in due.action_items],
        },
    )


def _methods_of(user_ids: list[int]) -> dict[int, list[ContactMethod]]:
    """{user id: their contact methods that postmortem mail goes to}, in one query."""
    methods: dict[int, list[ContactMethod]] = {}
    for method in ContactMethod.objects.filter(
        user_id__in=user_ids, kind__in=REMINDER_KINDS
    ).order_by("id"):
        methods.setdefault(method.user_id, []).append(method)
    return methods


def _deliver(user: AbstractUser, methods: list[ContactMethod], message: notify.Message) -> int:
    """Send to each of the person's methods, and to their account e-mail address when they set
    up no e-mail method. A failure is logged (never the address's secret parts) and the others
    still go; returns how many were accepted."""
    targets = list(methods)
    if not any(m.kind == ContactKind.EMAIL for m in targets) and user.email:
        targets.insert(0, ContactMethod(user=user, kind=ContactKind.EMAIL, address=user.email))
    accepted = 0
    for method in targets:
        result = notify.send(method, message)
        if result.ok:
            accepted += 1
        else:
            logger.warning(
                "postmortem %s to user %s by %s failed: %s",
                message.event,
                user.pk,
                method.kind,
                result.detail,
            )
    return accepted


def postmortem_reminders_send(*, now: dt.datetime) -> int:
    """Send today's postmortem reminders; returns how many people got one.

    Each thing (review request, incident, action item) is reminded at most once a day per person:
    its PostmortemReminder row is committed before sending (a unique constraint turns away a
    second run or a racing worker), so running twice sends once. A crash between the two loses
    that day's reminder rather than sending it twice. Not atomic on purpose: it talks to mail
    servers, which no transaction should wait on.
    """
    due = reminders_due(now=now)
    if not due:
        return 0
    today = timezone.localdate(now)
    methods = _methods_of(list(due))
    sent = 0
    for user_id, person in due.items():
        fresh = _Due(user=person.user)
        for kind, object_id in person.things():
            try:
                with transaction.atomic():
                    PostmortemReminder.objects.create(
                        kind=kind,
                        object_id=object_id,
                        recipient_id=user_id,
                        sent_on=today,
                        sent_at=now,
                    )
            except IntegrityError:  # reminded today already
                continue
            what = {
                PostmortemReminder.Kind.REVIEW: ("reviews", person.reviews),
                PostmortemReminder.Kind.MISSING: ("incidents", person.incidents),
                PostmortemReminder.Kind.ACTION_ITEM: ("action_items", person.action_items),
            }[kind]
            getattr(fresh, what[0]).extend(t for t in what[1] if t.pk == object_id)
        if not fresh.things():
            continue
        _deliver(person.user, methods.get(user_id, []), reminder_message(due=fresh, now=now))
        if fresh.reviews:
            ReviewRequest.objects.filter(pk__in=[r.pk for r in fresh.reviews]).update(
                reminded_at=now
            )
        if fresh.action_items:
            ActionItem.objects.filter(pk__in=[a.pk for a in fresh.action_items]).update(
                reminded_on=today
            )
        sent += 1
    return sent


# --- review notifications ----------------------------------------------------------------------


def _postmortem_url(postmortem_id: int) -> str:
    return _url("postmortems:detail", postmortem_id, f"/postmortems/{postmortem_id}/")


def _queue(task_name: str, *args) -> None:
    """Queue a notification task once the transaction commits. A broker that is down is
    logged, not raised: the change itself is saved, and the daily reminders catch up."""
    from . import tasks

    def send() -> None:
        try:
            getattr(tasks, task_name).delay(*args)
        except Exception:  # noqa: BLE001 - kombu/redis errors vary; nothing is lost
            logger.warning("could not queue %s", task_name, exc_info=True)

    transaction.on_commit(send)


def review_requested_notify(*, review_ids: list[int]) -> int:
    """Tell each reviewer, at once, that they were asked to review (and where). Returns how many
    reviewers were told; a review decided or withdrawn meanwhile is skipped."""
    reviews = list(
        ReviewRequest.objects.filter(pk__in=review_ids, state=ReviewRequest.State.PENDING)
        .exclude(postmortem__status=Postmortem.Status.PUBLISHED)
        .select_related("reviewer__profile", "requested_by__profile", "postmortem__team")
        .order_by("id")
    )
    methods = _methods_of([r.reviewer_id for r in reviews])
    told = 0
    for review in reviews:
        postmortem = review.postmortem
        context = {
            "name": _name(review.reviewer),
            "asker": _name(review.requested_by),
            "postmortem": postmortem,
            "url": _postmortem_url(postmortem.pk),
        }
        subject = f"Review requested: {postmortem.title}"
        message = notify.Message(
            subject=subject[:200],
            text=render_to_string("postmortems/email/review_requested.txt", context).strip(),
            html=render_to_string("postmortems/email/review_requested.html", context),
            url=context["url"],
            event="postmortem.review_requested",
            data={"postmortem": postmortem.pk, "review": review.pk},
        )
        if _deliver(review.reviewer, methods.get(review.reviewer_id, []), message):
            told += 1
    return told


def review_decided_notify(*, review_id: int) -> int:
    """Tell the author what a reviewer decided, with their note. Returns 1 when told."""
    review = (
        ReviewRequest.objects.filter(pk=review_id)
        .exclude(state=ReviewRequest.State.PENDING)
        .select_related("reviewer__profile", "postmortem__author__profile")
        .first()
    )
    if review is None:
        return 0
    postmortem = review.postmortem
    author = postmortem.author
    if not author.is_active:
        return 0
    approved = review.state == ReviewRequest.State.APPROVED
    context = {
        "name": _name(author),
        "reviewer": _name(review.reviewer),
        "approved": approved,
        "review": review,
        "postmortem": postmortem,
        "url": _postmortem_url(postmortem.pk),
    }
    verb = "approved" if approved else "requested changes to"
    message = notify.Message(
        subject=f"{_name(review.reviewer)} {verb} “{postmortem.title}”"[:200],
        text=render_to_string("postmortems/email/review_decided.txt", context).strip(),
        html=render_to_string("postmortems/email/review_decided.html", context),
        url=context["url"],
        event="postmortem.review_decided",
        data={"postmortem": postmortem.pk, "review": review.pk, "decision": review.state},
    )
    return 1 if _deliver(author, _methods_of([author.pk]).get(author.pk, []), message) else 0
