"""Writes about schedules: layers and their versions, overrides, calendar tokens."""

import math
import secrets
import zoneinfo
from collections.abc import Sequence
from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.html import format_html

from oncall import notify
from oncall.models import ContactKind, ContactMethod, Role, Team

from . import selectors
from .models import (
    CalendarToken,
    Layer,
    LayerMember,
    LayerRestriction,
    LayerVersion,
    Override,
    Schedule,
    ShiftReminder,
)


@transaction.atomic
def schedule_create(*, team: Team, name: str, time_zone: str, description: str = "") -> Schedule:
    schedule = Schedule(team=team, name=name, time_zone=time_zone, description=description)
    schedule.full_clean()
    schedule.save()
    return schedule


@transaction.atomic
def schedule_create_default(*, team: Team) -> Schedule:
    """Every new team gets a schedule named after it, in the time zone of its first lead, with a
    weekly rotation of its leads and responders handing off on Mondays at 09:00."""
    memberships = list(
        team.memberships.filter(role__in=[Role.LEAD, Role.RESPONDER])
        .select_related("user__profile")
        .order_by("created_at", "id")
    )
    lead = next((m for m in memberships if m.role == Role.LEAD), None)
    time_zone = "UTC"
    if lead is not None and hasattr(lead.user, "profile"):
        time_zone = lead.user.profile.time_zone
    schedule = Schedule.objects.filter(team=team, name=f"{team.name} on-call").first()
    if schedule is not None:
        return schedule
    schedule = schedule_create(team=team, name=f"{team.name} on-call", time_zone=time_zone)
    if memberships:
        now = timezone.now().astimezone(schedule.zone)
        monday = now.date().toordinal() - now.weekday()
        start = datetime.combine(
            datetime.fromordinal(monday).date(), time(9, 0), tzinfo=schedule.zone
        )
        layer_create(
            schedule=schedule,
            name="Weekly",
            start=start,
            turn_unit=Layer.TurnUnit.WEEKS,
            turn_count=1,
            handoff_time=time(9, 0),
            members=[m.user for m in memberships],
        )
    return schedule


def layer_validate(*, turn_count: int | None, members: Sequence[AbstractUser], start, end) -> None:
    """The rules a rotation must follow, with messages for the field that breaks them."""
    errors: dict[str, list[str]] = {}
    if turn_count is None or turn_count < 1:
        errors["turn_count"] = ["A turn must be at least 1 hour, day or week long."]
    if not members:
        errors["members"] = ["A rotation needs at least one member."]
    if start and end and end <= start:
        errors["end"] = ["The rotation must end after it starts."]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def layer_create(
    *,
    schedule: Schedule,
    name: str,
    start: datetime,
    turn_unit: str,
    turn_count: int,
    handoff_time: time,
    members: Sequence[AbstractUser],
    priority: int | None = None,
    end: datetime | None = None,
    restrictions: Sequence[tuple[Sequence[int], time, time]] = (),
    now: datetime | None = None,
) -> Layer:
    """A new rotation on top of the schedule's existing layers (unless a priority is given)."""
    layer_validate(turn_count=turn_count, members=members, start=start, end=end)
    if priority is None:
        top = schedule.layers.order_by("-priority").values_list("priority", flat=True).first()
        priority = 1 if top is None else top + 1
    layer = Layer(
        schedule=schedule,
        name=name,
        priority=priority,
        start=start,
        end=end,
        turn_unit=turn_unit,
        turn_count=turn_count,
        handoff_time=handoff_time,
    )
    layer.full_clean()
    layer.save()
    LayerMember.objects.bulk_create(
        LayerMember(layer=layer, user=user, position=i) for i, user in enumerate(members)
    )
    LayerRestriction.objects.bulk_create(
        LayerRestriction(
            layer=layer,
            weekdays=",".join(str(d) for d in sorted(days)),
            start_time=start_time,
            end_time=end_time,
        )
        for days, start_time, end_time in restrictions
    )
    layer_record_version(layer=layer, now=now)
    return layer


@transaction.atomic
def layer_record_version(*, layer: Layer, now: datetime | None = None) -> LayerVersion | None:
    """Freeze the layer's current configuration as in force from now on (from its start, if it
    has not started yet or this is its first configuration). Shifts before that moment keep the
    configuration they had, so changing the member order or the turn length affects only what
    is still to come. Returns None when nothing changed."""
    now = now or timezone.now()
    layer = Layer.objects.select_for_update().get(pk=layer.pk)
    member_ids = list(layer.members.order_by("position", "id").values_list("user_id", flat=True))
    layer_validate(
        turn_count=layer.turn_count, members=member_ids, start=layer.start, end=layer.end
    )
    restrictions = [
        {
            "weekdays": sorted(r.weekday_set),
            "start": r.start_time.isoformat(),
            "end": r.end_time.isoformat(),
        }
        for r in layer.restrictions.all()
    ]
    config = {
        "rotation_start": layer.start,
        "turn_unit": layer.turn_unit,
        "turn_count": layer.turn_count,
        "handoff_time": layer.handoff_time,
        "member_ids": member_ids,
        "restrictions": restrictions,
    }
    # A layer's first configuration holds from its start (a new rotation may be back-dated to
    # its natural handoff); every later one from now, so past shifts stay as they were.
    first = not layer.versions.exists()
    effective_from = layer.start if first else max(now, layer.start)
    # Versions that had not taken effect yet are replaced by this one.
    layer.versions.filter(effective_from__gte=effective_from).delete()
    current = layer.versions.order_by("-effective_from").first()
    if current is not None and all(getattr(current, k) == v for k, v in config.items()):
        return None
    return LayerVersion.objects.create(layer=layer, effective_from=effective_from, **config)


def override_validate(
    *, schedule: Schedule, user: AbstractUser | None, start, end, exclude_pk: int | None = None
) -> None:
    errors: dict[str, list[str]] = {}
    if start and end and end <= start:
        errors["end"] = ["The override must end after it starts."]
    elif start and end and user is not None:
        clash = (
            Override.objects.filter(schedule=schedule, user=user, start__lt=end, end__gt=start)
            .exclude(pk=exclude_pk)
            .first()
        )
        if clash is not None:
            errors["start"] = [
                f"{user} already covers this schedule from "
                f"{timezone.localtime(clash.start, schedule.zone):%Y-%m-%d %H:%M} to "
                f"{timezone.localtime(clash.end, schedule.zone):%Y-%m-%d %H:%M} "
                f"({schedule.time_zone}); overrides of one person may not overlap."
            ]
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def override_create(
    *,
    schedule: Schedule,
    user: AbstractUser,
    start: datetime,
    end: datetime,
    created_by: AbstractUser | None,
    reason: str = "",
) -> Override:
    """`user` covers `schedule` from `start` to `end`, over every layer."""
    # Lock the schedule so two overlapping overrides of one person can't both pass the check.
    Schedule.objects.select_for_update().get(pk=schedule.pk)
    override_validate(schedule=schedule, user=user, start=start, end=end)
    override = Override(
        schedule=schedule, user=user, start=start, end=end, created_by=created_by, reason=reason
    )
    override.full_clean()
    override.save()
    return override


@transaction.atomic
def override_take_shift(
    *, schedule: Schedule, user: AbstractUser, start: datetime, end: datetime, now: datetime
) -> Override:
    """ "Take this shift": `user` covers [start, end), provided it is not over and is still,
    all of it, one other person's shift. The refusal says why, for a person to read."""
    if end <= now:
        raise ValidationError("That shift is over already.")
    final = selectors.final_schedule(schedule, start, end)
    holders = {s.user_id for s in final.shifts}
    if final.gaps or len(holders) != 1 or user.pk in holders:
        raise ValidationError(
            "That shift has changed since the page was shown; here is the schedule as it is now."
        )
    (holder,) = holders
    names = selectors.people({holder})
    holder_name = names[holder].name if holder in names else "someone"
    return override_create(
        schedule=schedule,
        user=user,
        start=start,
        end=end,
        created_by=user,
        reason=f"Took {holder_name}’s shift",
    )


@transaction.atomic
def override_delete(*, override: Override) -> None:
    override.delete()


def calendar_token_for(user: AbstractUser) -> str:
    """The user's calendar feed secret, made the first time it is asked for."""
    token, _ = CalendarToken.objects.get_or_create(
        user=user, defaults={"token": secrets.token_urlsafe(32)}
    )
    return token.token


@transaction.atomic
def calendar_token_reset(*, user: AbstractUser) -> str:
    """A new secret for the user's feeds: every URL with the old one stops working at once."""
    new = secrets.token_urlsafe(32)
    CalendarToken.objects.update_or_create(user=user, defaults={"token": new})
    return new


# ---- shift reminders: "your on-call shift starts in 1 hour" and "starts now" ----
# (Imported here rather than at the top: this section was appended while others edit the file.)


SHIFT_REMINDER_LEAD = timedelta(minutes=60)  # "starts in …" for shifts starting this soon
SHIFT_REMINDER_GRACE = timedelta(minutes=10)  # "starts now" for shifts that started this recently
# A phone call for a reminder is too much: every other channel gets it.
SHIFT_REMINDER_KINDS = (ContactKind.EMAIL, ContactKind.SMS, ContactKind.SLACK, ContactKind.WEBHOOK)


def _user_zone(user) -> zoneinfo.ZoneInfo:
    try:
        return user.profile.zone
    except ObjectDoesNotExist:
        return zoneinfo.ZoneInfo("UTC")


def shift_reminder_message(
    *, shift: selectors.ShiftStart, kind: str, now: datetime, zone: zoneinfo.ZoneInfo
) -> notify.Message:
    """What a reminder says, with times in the person's own zone."""
    schedule = shift.schedule
    url = f"{settings.BASE_URL}/schedules/{schedule.pk}/"
    if kind == ShiftReminder.Kind.SOON:
        minutes = math.ceil((shift.start - now).total_seconds() / 60)
        at = timezone.localtime(shift.start, zone)
        sentence = (
            f"Your on-call shift on {schedule.name} starts in {minutes} "
            f"minute{'' if minutes == 1 else 's'}, at {at:%H:%M} {zone.key}"
        )
        event = "shift.starting_soon"
    else:
        minutes = 0
        if shift.end is None:
            sentence = f"Your on-call shift on {schedule.name} starts now, until further notice"
        else:
            until = timezone.localtime(shift.end, zone)
            sentence = (
                f"Your on-call shift on {schedule.name} starts now, "
                f"until {until:%a %d %b %H:%M} {zone.key}"
            )
        event = "shift.started"
    return notify.Message(
        subject=sentence,
        text=f"{sentence}.",
        html=format_html('<p>{}.</p><p><a href="{}">Open the schedule</a></p>', sentence, url),
        url=url,
        event=event,
        data={
            "kind": kind,
            "schedule": {"id": schedule.pk, "name": schedule.name},
            "user": shift.user_id,
            "shift_start": shift.start.isoformat(),
            "shift_end": shift.end.isoformat() if shift.end else None,
            "minutes": minutes,
        },
    )


def shift_reminders_send(*, now: datetime) -> int:
    """Remind everybody whose on-call shift starts within the hour ("starts in N minutes") or
    has just started ("starts now"), through their e-mail, SMS, Slack and webhook contact methods.

    Run every minute by Celery beat; returns how many reminders were sent (one per person, shift
    and kind, whatever each contact method answered). Each reminder goes out once: its
    ShiftReminder row is committed first (a unique constraint turns away a second run or a racing
    worker), then it is sent and the per-method outcome stored on the row. A crash between the
    two loses the reminder (a row without outcome) rather than sending it twice.

    Not atomic on purpose: it talks to the outside world, which no transaction should wait on.
    Finding what is due costs a fixed number of queries, whatever the number of schedules.
    """
    since, until = now - SHIFT_REMINDER_GRACE, now + SHIFT_REMINDER_LEAD
    due = [
        (shift, ShiftReminder.Kind.SOON if shift.start > now else ShiftReminder.Kind.NOW)
        for shift in selectors.shifts_starting(after=since, until=until)
    ]
    if not due:
        return 0
    done = set(
        ShiftReminder.objects.filter(
            schedule_id__in={shift.schedule.pk for shift, _ in due},
            shift_start__gt=since,
            shift_start__lte=until,
        ).values_list("schedule_id", "user_id", "shift_start", "kind")
    )
    due = [
        (shift, kind)
        for shift, kind in due
        if (shift.schedule.pk, shift.user_id, shift.start, kind) not in done
    ]
    if not due:
        return 0
    # "Starts now, until …": the end of a shift longer than the window just computed.
    ends = selectors.shift_ends(
        [s for s, kind in due if kind == ShiftReminder.Kind.NOW and s.end is None]
    )
    users = {
        user.pk: user
        for user in get_user_model()
        .objects.filter(pk__in={shift.user_id for shift, _ in due})
        .select_related("profile")
        .prefetch_related(
            Prefetch(
                "contact_methods",
                queryset=ContactMethod.objects.filter(kind__in=SHIFT_REMINDER_KINDS),
                to_attr="reminder_methods",
            )
        )
    }
    sent = 0
    for shift, kind in due:
        user = users.get(shift.user_id)
        if user is None:  # deleted since the schedule was read
            continue
        key = (shift.schedule.pk, shift.user_id, shift.start)
        if key in ends:
            shift = selectors.ShiftStart(
                schedule=shift.schedule, user_id=shift.user_id, start=shift.start, end=ends[key]
            )
        try:
            with transaction.atomic():
                reminder = ShiftReminder.objects.create(
                    schedule=shift.schedule, user=user, shift_start=shift.start, kind=kind
                )
        except IntegrityError:  # another run got there first
            continue
        message = shift_reminder_message(shift=shift, kind=kind, now=now, zone=_user_zone(user))
        outcome = []
        for method in user.reminder_methods:
            result = notify.send(method, message)
            outcome.append(
                {"method": method.pk, "kind": method.kind, "ok": result.ok, "detail": result.detail}
            )
        ShiftReminder.objects.filter(pk=reminder.pk).update(outcome=outcome)
        sent += 1
    return sent
