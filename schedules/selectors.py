"""Reads about schedules: who is on call when, over the pure rotation maths in rotation.py.

Each read loads what it needs in a fixed number of queries, whatever the number of schedules,
layers or overrides, and hands plain values to `schedules.rotation`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.db.models import Count, QuerySet

from oncall import access

from . import rotation
from .models import Layer, LayerVersion, Override, Schedule


def schedule_list(*, team_ids: set[int] | None) -> QuerySet[Schedule]:
    """Schedules of the given teams (all when None) with their team and number of layers,
    in one query."""
    schedules = Schedule.objects.select_related("team").annotate(layer_count=Count("layers"))
    if team_ids is not None:
        schedules = schedules.filter(team_id__in=team_ids)
    return schedules.order_by("team__name", "name")


# ---- who is on call: reads over the rotation maths (schedules/rotation.py) ----
#
# Rotations are loaded with values() queries straight into the maths' frozen dataclasses: three
# queries for any number of schedules, and no model instances for layers, versions or overrides.


def _restriction(data: dict) -> rotation.Restriction:
    return rotation.Restriction(
        weekdays=frozenset(data["weekdays"]),
        start=time.fromisoformat(data["start"]),
        end=time.fromisoformat(data["end"]),
    )


def load_rotations(
    schedule_ids: list[int], start: datetime, end: datetime
) -> dict[int, tuple[list[rotation.Layer], list[rotation.Override]]]:
    """{schedule id: (layers, overrides touching [start, end))} in three queries."""
    versions: dict[int, list[rotation.LayerVersion]] = {}
    for v in (
        LayerVersion.objects.filter(layer__schedule_id__in=schedule_ids)
        .order_by("layer_id", "effective_from")
        .values_list(
            "layer_id",
            "effective_from",
            "rotation_start",
            "turn_unit",
            "turn_count",
            "handoff_time",
            "member_ids",
            "restrictions",
        )
    ):
        layer_id, effective_from, rotation_start, unit, count, handoff, members, limits = v
        if not members:
            continue
        versions.setdefault(layer_id, []).append(
            rotation.LayerVersion(
                effective_from=effective_from,
                rotation_start=rotation_start,
                turn_unit=unit,
                turn_count=count,
                handoff_time=handoff,
                members=tuple(members),
                restrictions=tuple(_restriction(r) for r in limits),
            )
        )
    loaded: dict[int, tuple[list, list]] = {pk: ([], []) for pk in schedule_ids}
    for layer_id, schedule_id, priority, layer_end in Layer.objects.filter(
        schedule_id__in=schedule_ids
    ).values_list("id", "schedule_id", "priority", "end"):
        if layer_id in versions:
            loaded[schedule_id][0].append(
                rotation.Layer(
                    id=layer_id,
                    priority=priority,
                    versions=tuple(versions[layer_id]),
                    end=layer_end,
                )
            )
    for override_id, schedule_id, user_id, o_start, o_end in Override.objects.filter(
        schedule_id__in=schedule_ids, start__lt=end, end__gt=start
    ).values_list("id", "schedule_id", "user_id", "start", "end"):
        loaded[schedule_id][1].append(
            rotation.Override(id=override_id, user_id=user_id, start=o_start, end=o_end)
        )
    return loaded


def schedules_with_rotations(
    queryset: QuerySet[Schedule], start: datetime, end: datetime
) -> list[Schedule]:
    """The schedules, each carrying its rotations for [start, end) (`rotation_layers`,
    `rotation_overrides`): four queries whatever the number of schedules."""
    schedules = list(queryset)
    loaded = load_rotations([s.pk for s in schedules], start, end)
    for schedule in schedules:
        schedule.rotation_layers, schedule.rotation_overrides = loaded[schedule.pk]
        schedule.rotation_window = (start, end)
    return schedules


def _loaded_for(schedule: Schedule, start: datetime, end: datetime) -> Schedule:
    window = getattr(schedule, "rotation_window", None)
    if window is None or window[0] > start or window[1] < end:
        schedule = schedules_with_rotations(Schedule.objects.filter(pk=schedule.pk), start, end)[0]
    return schedule


def final_schedule(schedule: Schedule, start: datetime, end: datetime) -> rotation.FinalSchedule:
    """Who is on call at every instant of [start, end): overrides over higher layers over lower
    layers, with the gaps where nobody is."""
    schedule = _loaded_for(schedule, start, end)
    return rotation.final_schedule(
        schedule.rotation_layers, schedule.rotation_overrides, schedule.zone, start, end
    )


def who_is_on_call(schedule: Schedule, at: datetime) -> rotation.Shift | None:
    """The shift covering `at` on the schedule (None in a gap). Used by the escalation engine."""
    return who_is_on_call_many([schedule], at).get(schedule.pk)


def who_is_on_call_many(schedules, at: datetime) -> dict[int, rotation.Shift | None]:
    """{schedule id: shift covering `at`} for many schedules in a fixed number of queries."""
    zones = {s.pk: s.zone for s in schedules}
    loaded = load_rotations(list(zones), at, at + timedelta(microseconds=1))
    return {
        pk: rotation.on_call_at(layers, overrides, zones[pk], at)
        for pk, (layers, overrides) in loaded.items()
    }


def shifts_of_user(user, start: datetime, end: datetime) -> list[tuple[Schedule, rotation.Shift]]:
    """The user's shifts in [start, end) on every schedule of the teams they act in, by start."""
    team_ids = access.acting_team_ids(user)
    schedules = schedules_with_rotations(
        Schedule.objects.filter(team_id__in=team_ids).select_related("team"), start, end
    )
    mine = [
        (schedule, shift)
        for schedule in schedules
        for shift in final_schedule(schedule, start, end).shifts
        if shift.user_id == user.pk
    ]
    return sorted(mine, key=lambda pair: pair[1].start)


# ---- shifts about to start: what the shift reminders are about ----
# (Imported here rather than at the top: this section was appended while others edit the file.)


@dataclass(frozen=True)
class ShiftStart:
    """One person's on-call stretch on a schedule, from the moment they go on call. Adjacent
    pieces of the final schedule with the same person (a layer handing over to an override of
    the same person, say) are one stretch: going from one to the other is not a new shift."""

    schedule: Schedule
    user_id: int
    start: datetime  # UTC
    end: datetime | None  # UTC; None when it goes on past the window that was computed


def _stretches(
    shifts: Sequence[rotation.Shift], window_end: datetime
) -> list[tuple[int, datetime, datetime | None]]:
    """(user id, start, end) of the final schedule's shifts with same-person neighbours
    merged; the end is None where the stretch reaches the window's end."""
    merged: list[list] = []
    for shift in shifts:
        if merged and merged[-1][0] == shift.user_id and merged[-1][2] == shift.start:
            merged[-1][2] = shift.end
        else:
            merged.append([shift.user_id, shift.start, shift.end])
    return [(user_id, start, None if end >= window_end else end) for user_id, start, end in merged]


# How far before the earliest start asked for the final schedule is computed: a shift that began
# before the window shows up clipped to the window's start, which must lie well outside
# (after, until] so that a shift merely going on is never taken for one that starts.
_SHIFT_START_LOOKBACK = timedelta(hours=1)
# How far after the latest start asked for, so that a stretch of the same person continuing
# right after it is seen as the same stretch.
_SHIFT_START_LOOKAHEAD = timedelta(minutes=5)


def shifts_starting(
    *, after: datetime, until: datetime, queryset: QuerySet[Schedule] | None = None
) -> list[ShiftStart]:
    """The stretches whose real start lies in (after, until], on every schedule (or those of
    `queryset`), sorted by start: four queries, whatever the number of schedules."""
    window = (after - _SHIFT_START_LOOKBACK, until + _SHIFT_START_LOOKAHEAD)
    schedules = schedules_with_rotations(
        (queryset if queryset is not None else Schedule.objects.all()).order_by("pk"), *window
    )
    found = [
        ShiftStart(schedule=schedule, user_id=user_id, start=start, end=end)
        for schedule in schedules
        for user_id, start, end in _stretches(final_schedule(schedule, *window).shifts, window[1])
        if after < start <= until
    ]
    return sorted(found, key=lambda s: (s.start, s.schedule.pk, s.user_id))


def shift_ends(
    starts: Sequence[ShiftStart], *, horizon: timedelta = timedelta(days=35)
) -> dict[tuple[int, int, datetime], datetime | None]:
    """{(schedule id, user id, start): end} of the given stretches, looking at most `horizon`
    past each start (None when the stretch goes on past it, e.g. a one-person rotation).
    Three queries for any number of stretches."""
    if not starts:
        return {}
    begin = min(s.start for s in starts)
    finish = max(s.start for s in starts) + horizon
    schedules = {s.schedule.pk: s.schedule for s in starts}
    loaded = load_rotations(list(schedules), begin, finish)
    ends: dict[tuple[int, int, datetime], datetime | None] = {}
    for schedule_id, schedule in schedules.items():
        layers, overrides = loaded[schedule_id]
        computed = rotation.final_schedule(layers, overrides, schedule.zone, begin, finish)
        stretches = {
            (user_id, start): end for user_id, start, end in _stretches(computed.shifts, finish)
        }
        for s in starts:
            if s.schedule.pk == schedule_id:
                end = stretches.get((s.user_id, s.start))
                if end is not None and end > s.start + horizon:
                    end = None
                ends[(schedule_id, s.user_id, s.start)] = end
    return ends


# ---- the schedule pages: names of layers and people, upcoming overrides ----
# (Imported here rather than at the top: this section was appended while others edit the file.)

from django.contrib.auth import get_user_model  # noqa: E402
from django.db.models import OuterRef, Q, Subquery  # noqa: E402

from oncall.models import Membership, Role  # noqa: E402


@dataclass(frozen=True)
class Person:
    """A name to show for a user id, and their role in the team asked about (None: not in it)."""

    id: int
    name: str
    role: str | None = None


def people(user_ids, *, team_id: int | None = None) -> dict[int, Person]:
    """{user id: Person} for the given users and, when `team_id` is given, for every lead and
    responder of that team as well (with their role there): one query."""
    ids = {int(pk) for pk in user_ids}
    if not ids and team_id is None:
        return {}
    wanted = Q(pk__in=ids)
    users = get_user_model().objects.select_related("profile")
    if team_id is not None:
        wanted |= Q(
            pk__in=Membership.objects.filter(
                team_id=team_id, role__in=[Role.LEAD, Role.RESPONDER]
            ).values("user_id")
        )
        users = users.annotate(
            team_role=Subquery(
                Membership.objects.filter(team_id=team_id, user=OuterRef("pk")).values("role")[:1]
            )
        )
    found = {}
    for user in users.filter(wanted):
        profile = getattr(user, "profile", None)
        found[user.pk] = Person(
            id=user.pk,
            name=profile.name if profile is not None else user.get_username(),
            role=getattr(user, "team_role", None),
        )
    return found


def layer_names(schedule_id: int) -> list[tuple[int, str, int]]:
    """(id, name, priority) of the schedule's layers, the highest priority first: one query."""
    return list(
        Layer.objects.filter(schedule_id=schedule_id)
        .order_by("-priority", "-id")
        .values_list("id", "name", "priority")
    )


def upcoming_overrides(schedule_id: int, now: datetime) -> list[Override]:
    """Overrides of the schedule not over yet, by start, with who covers and who made each
    (and their profiles): one query."""
    return list(
        Override.objects.filter(schedule_id=schedule_id, end__gt=now)
        .select_related("user__profile", "created_by__profile")
        .order_by("start", "id")
    )
