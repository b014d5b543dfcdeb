"""Rotation maths for on-call schedules: who is on call when.

Pure Python, no Django and no database: callers turn model rows into the frozen dataclasses
below and ask for shifts over a window of time.

A schedule lives in one IANA time zone. It has layers (rotations), each with a priority, and
overrides that sit over every layer. A layer is a sequence of versions; each version describes
the rotation (anchor, turn length, handoff time, members, optional restriction windows) from its
``effective_from`` until the next version takes effect, so editing a rotation never rewrites the
past.

Time rules, which are the point of this module:

* Every datetime accepted must be timezone-aware (any zone); every datetime returned is in UTC.
* Handoffs happen at local wall-clock times in the schedule's zone. Handoff ``k`` of a version is
  the wall-clock time ``combine(local date of rotation_start, handoff_time) + k * turn``, where
  ``turn`` is N hours, N days or 7N days added on the wall clock; that wall-clock time is then
  placed in the zone. A wall-clock time that does not exist (spring-forward gap) moves forward by
  the size of the gap (02:30 on a New York spring-forward day is 03:30 EDT); an ambiguous one
  (fall-back) means its first occurrence. Handoffs that land on the same instant produce no
  shift: a shift always has ``start < end``.
* The turn starting at handoff ``k`` belongs to ``members[k % len(members)]``.

Intervals are half-open, ``[start, end)``: at the exact handoff instant the incoming member is on
call.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

__all__ = [
    "FinalSchedule",
    "Gap",
    "Layer",
    "LayerVersion",
    "Override",
    "Restriction",
    "RotationError",
    "Shift",
    "TURN_UNITS",
    "final_schedule",
    "layer_shifts",
    "on_call_at",
]

TURN_UNITS: dict[str, timedelta] = {
    "hours": timedelta(hours=1),
    "days": timedelta(days=1),
    "weeks": timedelta(weeks=1),
}

_ONE_DAY = timedelta(days=1)
# No zone jumps its clock by more than a day and a bit, so a handoff's wall-clock time that is
# this much later than another's is also later in real time. Used to make handoffs monotonic
# (see _Rotation) in a way that does not depend on where generation starts.
_MAX_CLOCK_JUMP = timedelta(hours=50)
# on_call_at looks at most this far either side of the instant to find where a shift ends.
_ON_CALL_MAX_SPAN = timedelta(days=400)


class RotationError(ValueError):
    """An invalid configuration or window: naive datetime, empty members, bad turn, end <= start."""


@dataclass(frozen=True)
class Restriction:
    """A window in which a layer is active, in the schedule's zone.

    Outside all of a layer's windows the layer is empty.
    """

    weekdays: frozenset[int]  # 0 = Monday .. 6 = Sunday: days on which the window STARTS
    start: time  # local wall-clock start
    end: time  # local wall-clock end; end <= start crosses midnight; start == end is a full 24 h


@dataclass(frozen=True)
class LayerVersion:
    """One configuration of a layer.

    Valid from ``effective_from`` until the next version's ``effective_from`` (or the layer end).
    """

    effective_from: datetime
    rotation_start: datetime
    turn_unit: str  # "hours" | "days" | "weeks"
    turn_count: int
    handoff_time: time
    members: tuple[int, ...]
    restrictions: tuple[Restriction, ...] = ()


@dataclass(frozen=True)
class Layer:
    id: int
    priority: int  # higher number wins over lower
    versions: tuple[LayerVersion, ...]  # sorted by effective_from
    end: datetime | None = None


@dataclass(frozen=True)
class Override:
    id: int
    user_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Shift:
    user_id: int
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC
    layer_id: int | None = None  # the layer that produced it (None for an override)
    override_id: int | None = None


@dataclass(frozen=True)
class Gap:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class FinalSchedule:
    shifts: tuple[Shift, ...]  # sorted, non-overlapping, covering the window except the gaps
    gaps: tuple[Gap, ...]


# --------------------------------------------------------------------------------------------
# Validation helpers


def _aware_utc(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise RotationError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise RotationError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start_utc = _aware_utc(start, "window start")
    end_utc = _aware_utc(end, "window end")
    if end_utc <= start_utc:
        raise RotationError(f"window end {end.isoformat()} must be after start {start.isoformat()}")
    return start_utc, end_utc


def _check_tz(tz: object) -> tzinfo:
    if not isinstance(tz, tzinfo):
        raise RotationError(f"schedule time zone must be a tzinfo (ZoneInfo), got {tz!r}")
    return tz


def _wall_time(value: object, what: str) -> time:
    if not isinstance(value, time):
        raise RotationError(f"{what} must be a datetime.time, got {type(value).__name__}")
    if value.tzinfo is not None:
        raise RotationError(f"{what} must be a wall-clock time without tzinfo")
    return value.replace(fold=0)


@dataclass(frozen=True)
class _Window:
    """A validated restriction."""

    weekdays: frozenset[int]
    start: time
    end: time


def _check_restriction(r: Restriction) -> _Window:
    weekdays = frozenset(r.weekdays)
    if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays):
        raise RotationError(f"restriction weekdays must be integers 0..6, got {sorted(weekdays)}")
    return _Window(
        weekdays, _wall_time(r.start, "restriction start"), _wall_time(r.end, "restriction end")
    )


class _Rotation:
    """A validated layer version bound to a zone: computes handoff instants.

    ``handoff(k)`` places the wall-clock time of handoff k in the zone. Where a zone's clock
    jumps forward by more than one turn (only possible for short hourly turns in a handful of
    historical zones) raw handoffs can go backwards in real time; ``_turns`` therefore uses the
    running maximum of the handoffs, which makes shifts never overlap. Because of
    ``_MAX_CLOCK_JUMP`` that running maximum only needs ``lookback`` earlier handoffs, so the
    result does not depend on the window asked for.
    """

    __slots__ = ("effective_from", "base", "turn", "members", "windows", "lookback")

    def __init__(self, version: LayerVersion, tz: tzinfo, where: str) -> None:
        self.effective_from = _aware_utc(version.effective_from, f"{where} effective_from")
        rotation_start = _aware_utc(version.rotation_start, f"{where} rotation_start")
        unit = TURN_UNITS.get(version.turn_unit) if isinstance(version.turn_unit, str) else None
        if unit is None:
            raise RotationError(
                f"{where} turn_unit must be one of {sorted(TURN_UNITS)}, got {version.turn_unit!r}"
            )
        count = version.turn_count
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise RotationError(f"{where} turn_count must be an integer >= 1, got {count!r}")
        handoff_time = _wall_time(version.handoff_time, f"{where} handoff_time")
        members = tuple(version.members)
        if not members:
            raise RotationError(f"{where} has no members")
        # An aware datetime in ``tz``: adding a timedelta to it is wall-clock arithmetic, and
        # astimezone() then places the wall-clock time in the zone (fold=0 rules).
        self.base = datetime.combine(rotation_start.astimezone(tz).date(), handoff_time, tzinfo=tz)
        self.turn = unit * count
        self.members = members
        self.windows = tuple(_check_restriction(r) for r in version.restrictions)
        self.lookback = -(-_MAX_CLOCK_JUMP // self.turn) + 1

    def handoff(self, k: int) -> datetime:
        return (self.base + k * self.turn).astimezone(UTC)

    def _settled(self, k: int) -> datetime:
        """Handoff k made monotonic: the latest of handoffs k - lookback .. k."""
        return max(self.handoff(j) for j in range(k - self.lookback, k + 1))

    def turns(self, a: datetime, b: datetime) -> Iterator[tuple[int, datetime, datetime]]:
        """(member, start, end) of every turn meeting [a, b), clipped to it, in order."""
        k = (a.astimezone(self.base.tzinfo) - self.base) // self.turn - 1
        current = self._settled(k)
        while current > a:  # only when the clock jumps more than a turn: step back further
            k -= self.lookback + 1
            current = self._settled(k)
        members = self.members
        n = len(members)
        while current < b:
            following = self.handoff(k + 1)
            if following < current:
                following = current
            if following > current and following > a:
                yield members[k % n], max(current, a), min(following, b)
            current = following
            k += 1


def _prepare(layer: Layer, tz: tzinfo) -> tuple[list[_Rotation], datetime | None]:
    versions = [
        _Rotation(v, tz, f"layer {layer.id} version {i}") for i, v in enumerate(layer.versions)
    ]
    for earlier, later in zip(versions, versions[1:], strict=False):
        if later.effective_from < earlier.effective_from:
            raise RotationError(f"layer {layer.id} versions must be sorted by effective_from")
    layer_end = None if layer.end is None else _aware_utc(layer.end, f"layer {layer.id} end")
    return versions, layer_end


def _restriction_spans(
    windows: Sequence[_Window], tz: tzinfo, a: datetime, b: datetime
) -> list[tuple[datetime, datetime]]:
    """Union of the restriction windows meeting [a, b), in UTC, sorted, merged, clipped."""
    spans: list[tuple[datetime, datetime]] = []
    day: date = a.astimezone(tz).date() - _ONE_DAY  # a window from the day before may spill over
    last: date = b.astimezone(tz).date()
    while day <= last:
        weekday = day.weekday()
        for w in windows:
            if weekday not in w.weekdays:
                continue
            end_day = day if w.end > w.start else day + _ONE_DAY
            lo = datetime.combine(day, w.start, tzinfo=tz).astimezone(UTC)
            hi = datetime.combine(end_day, w.end, tzinfo=tz).astimezone(UTC)
            if lo < hi and hi > a and lo < b:
                spans.append((max(lo, a), min(hi, b)))
        day += _ONE_DAY
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            if hi > merged[-1][1]:
                merged[-1] = (merged[-1][0], hi)
        else:
            merged.append((lo, hi))
    return merged


def _intersect(
    pieces: Sequence[tuple[int, datetime, datetime]], spans: Sequence[tuple[datetime, datetime]]
) -> list[tuple[int, datetime, datetime]]:
    """Intersect sorted, disjoint pieces with sorted, disjoint spans (two-pointer sweep)."""
    out: list[tuple[int, datetime, datetime]] = []
    j = 0
    n = len(spans)
    for user, start, end in pieces:
        while j < n and spans[j][1] <= start:
            j += 1
        m = j
        while m < n and spans[m][0] < end:
            lo = max(start, spans[m][0])
            hi = min(end, spans[m][1])
            if lo < hi:
                out.append((user, lo, hi))
            m += 1
    return out


# --------------------------------------------------------------------------------------------
# Public API


def layer_shifts(layer: Layer, tz: ZoneInfo, start: datetime, end: datetime) -> list[Shift]:
    """The shifts one layer produces in ``[start, end)``, before overrides and other layers.

    Guarantees: one Shift per turn (or per piece of a turn left by restriction windows), sorted,
    non-overlapping, every ``start < end``, all in UTC, clipped to the window, to each version's
    validity ``[effective_from, next effective_from or layer.end)`` and to the layer's end.
    Consecutive turns of the same member are *not* merged here. Without restrictions, the
    shifts cover the part of the window from the first version's ``effective_from`` to the
    layer's end with no gap. Nothing is produced before the first ``effective_from``.

    Raises RotationError for naive datetimes, ``end <= start``, empty members, ``turn_count < 1``,
    an unknown ``turn_unit``, bad restriction weekdays, or versions out of order.
    """
    tz = _check_tz(tz)
    start, end = _window(start, end)
    versions, layer_end = _prepare(layer, tz)
    out: list[Shift] = []
    for i, version in enumerate(versions):
        a = max(version.effective_from, start)
        b = end
        if i + 1 < len(versions):
            b = min(b, versions[i + 1].effective_from)
        if layer_end is not None:
            b = min(b, layer_end)
        if a >= b:
            continue
        pieces: list[tuple[int, datetime, datetime]] = list(version.turns(a, b))
        if version.windows:
            pieces = _intersect(pieces, _restriction_spans(version.windows, tz, a, b))
        layer_id = layer.id
        out.extend(Shift(user, lo, hi, layer_id=layer_id) for user, lo, hi in pieces)
    return out


def final_schedule(
    layers: Sequence[Layer],
    overrides: Sequence[Override],
    tz: ZoneInfo,
    start: datetime,
    end: datetime,
) -> FinalSchedule:
    """Who is on call at every instant of ``[start, end)``.

    At each instant the override covering it wins (several overlapping: the latest start wins,
    ties go to the higher override id); otherwise the layer with the highest ``priority`` that
    has a shift there (equal priorities: the higher layer id); otherwise it is a gap.

    Guarantees: ``shifts`` and ``gaps`` are each sorted; together they cover ``[start, end)``
    exactly once, with no overlap and nothing outside the window; every piece has
    ``start < end``; all datetimes are UTC. Adjacent pieces with the same user and the same source
    (same layer_id, or same override_id) are merged into one Shift; adjacent gaps are merged.
    Runs in O(n log n) in the number of shifts and overrides in the window.

    Raises RotationError for the same reasons as ``layer_shifts``, and for an override that is
    naive or has ``end <= start`` (every override is checked, even outside the window).
    """
    tz = _check_tz(tz)
    start, end = _window(start, end)

    # (start, end, key, user_id, layer_id, override_id); a larger key wins.
    items: list[tuple[datetime, datetime, tuple, int, int | None, int | None]] = []
    for layer in layers:
        key = (0, layer.priority, layer.id)
        for shift in layer_shifts(layer, tz, start, end):
            items.append((shift.start, shift.end, key, shift.user_id, layer.id, None))
    for override in overrides:
        o_start = _aware_utc(override.start, f"override {override.id} start")
        o_end = _aware_utc(override.end, f"override {override.id} end")
        if o_end <= o_start:
            raise RotationError(f"override {override.id} must end after it starts")
        if o_end <= start or o_start >= end:
            continue
        key = (1, o_start, override.id)
        items.append(
            (max(o_start, start), min(o_end, end), key, override.user_id, None, override.id)
        )

    # Rank every item by precedence, then sweep the sorted boundaries with a max-heap of the
    # items covering the current piece (lazily dropping items that have ended).
    rank = [0] * len(items)
    for position, index in enumerate(sorted(range(len(items)), key=lambda i: items[i][2])):
        rank[index] = position
    by_start = sorted(range(len(items)), key=lambda i: items[i][0])
    bounds = {start, end}
    for item in items:
        bounds.add(item[0])
        bounds.add(item[1])
    edges = sorted(bounds)

    shifts: list[Shift] = []
    gaps: list[Gap] = []
    heap: list[tuple[int, int]] = []
    pointer = 0
    count = len(items)
    previous: tuple[int, int | None, int | None] | None = None  # source of the last piece
    for lo, hi in zip(edges, edges[1:], strict=False):
        while pointer < count and items[by_start[pointer]][0] <= lo:
            index = by_start[pointer]
            heapq.heappush(heap, (-rank[index], index))
            pointer += 1
        while heap and items[heap[0][1]][1] <= lo:
            heapq.heappop(heap)
        if not heap:
            if previous is None and gaps and gaps[-1].end == lo:
                gaps[-1] = Gap(gaps[-1].start, hi)
            else:
                gaps.append(Gap(lo, hi))
            previous = None
            continue
        _, _, _, user_id, layer_id, override_id = items[heap[0][1]]
        source = (user_id, layer_id, override_id)
        if source == previous and shifts[-1].end == lo:
            shifts[-1] = Shift(user_id, shifts[-1].start, hi, layer_id, override_id)
        else:
            shifts.append(Shift(user_id, lo, hi, layer_id, override_id))
        previous = source
    return FinalSchedule(tuple(shifts), tuple(gaps))


def _longest_turn(layers: Sequence[Layer]) -> timedelta:
    longest = timedelta(0)
    for layer in layers:
        for version in layer.versions:
            unit = TURN_UNITS.get(version.turn_unit)
            count = version.turn_count
            if unit is not None and isinstance(count, int) and count > 0:
                longest = max(longest, unit * count)
    return longest


def on_call_at(
    layers: Sequence[Layer], overrides: Sequence[Override], tz: ZoneInfo, at: datetime
) -> Shift | None:
    """The final schedule's shift covering the instant ``at``, or None if ``at`` is in a gap.

    Guarantees: the result is the merged piece of ``final_schedule`` containing ``at``
    (``start <= at < end``, UTC), so at an exact handoff instant it is the incoming member. Its
    ``start`` and ``end`` are the real boundaries of that piece unless the piece reaches more
    than about 400 days away from ``at`` (e.g. a one-member layer), in which case it is clipped
    there. Raises RotationError like ``final_schedule``.
    """
    at = _aware_utc(at, "at")
    span = _longest_turn(layers) * 2 + _ONE_DAY
    while True:
        lo, hi = at - span, at + span
        schedule = final_schedule(layers, overrides, tz, lo, hi)
        starts = [shift.start for shift in schedule.shifts]
        i = bisect_right(starts, at) - 1
        if i < 0 or schedule.shifts[i].end <= at:
            return None
        found = schedule.shifts[i]
        if (found.start > lo and found.end < hi) or span >= _ON_CALL_MAX_SPAN:
            return found
        span = min(span * 4, _ON_CALL_MAX_SPAN)
