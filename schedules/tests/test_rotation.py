"""Tests for schedules.rotation: pure Python, no Django needed."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedules.rotation import (
    FinalSchedule,
    Gap,
    Layer,
    LayerVersion,
    Override,
    Restriction,
    RotationError,
    Shift,
    final_schedule,
    layer_shifts,
    on_call_at,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
SYDNEY = ZoneInfo("Australia/Sydney")
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")
ZULU = ZoneInfo("UTC")
WEEKDAYS = frozenset(range(5))
H = timedelta(hours=1)
D = timedelta(days=1)


def at(tz, y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=tz)


def version(
    start,
    members=(1, 2, 3),
    unit="days",
    count=1,
    handoff=time(9),
    restrictions=(),
    effective_from=None,
):
    return LayerVersion(
        effective_from=start if effective_from is None else effective_from,
        rotation_start=start,
        turn_unit=unit,
        turn_count=count,
        handoff_time=handoff,
        members=tuple(members),
        restrictions=tuple(restrictions),
    )


def layer(*versions, id=1, priority=1, end=None):
    return Layer(id=id, priority=priority, versions=tuple(versions), end=end)


def people(shifts):
    return [s.user_id for s in shifts]


def local_starts(shifts, tz):
    return [s.start.astimezone(tz) for s in shifts]


def assert_tiles(shifts, start, end):
    """Shifts are sorted, positive, contiguous and cover [start, end) exactly."""
    assert shifts, "expected at least one shift"
    assert shifts[0].start == start
    assert shifts[-1].end == end
    for s in shifts:
        assert s.start < s.end
        assert s.start.tzinfo is UTC and s.end.tzinfo is UTC
    for prev, nxt in zip(shifts, shifts[1:], strict=False):
        assert prev.end == nxt.start


def pieces(schedule: FinalSchedule):
    return sorted([*schedule.shifts, *schedule.gaps], key=lambda p: p.start)


# ---------------------------------------------------------------------------------------------
# Plain examples


def test_daily_rotation_of_three_members():
    start = at(ZULU, 2026, 1, 5, 9)
    shifts = layer_shifts(layer(version(start)), ZULU, start, start + 6 * D)
    assert people(shifts) == [1, 2, 3, 1, 2, 3]
    assert [s.start for s in shifts] == [start + i * D for i in range(6)]
    assert all(s.end - s.start == D for s in shifts)
    assert all(s.layer_id == 1 and s.override_id is None for s in shifts)


def test_window_is_clipped_and_mid_turn_member_is_right():
    start = at(ZULU, 2026, 1, 5, 9)
    shifts = layer_shifts(layer(version(start)), ZULU, start + 30 * H, start + 3 * D)
    assert people(shifts) == [2, 3]
    assert shifts[0].start == start + 30 * H and shifts[0].end == start + 2 * D
    assert shifts[1].end == start + 3 * D


def test_weekly_rotation():
    start = at(LONDON, 2026, 1, 5, 10)  # a Monday
    lay = layer(version(start, members=(7, 8), unit="weeks", handoff=time(10)))
    shifts = layer_shifts(lay, LONDON, start, start + 28 * D)
    assert people(shifts) == [7, 8, 7, 8]
    for s in shifts:
        assert s.start.astimezone(LONDON).weekday() == 0
        assert s.start.astimezone(LONDON).time() == time(10)


def test_two_week_turns_across_dst_keep_local_handoff():
    start = at(NEW_YORK, 2026, 2, 2, 9)
    lay = layer(version(start, members=(1, 2), unit="weeks", count=2))
    shifts = layer_shifts(lay, NEW_YORK, start, at(NEW_YORK, 2026, 4, 27, 9))
    assert people(shifts) == [1, 2, 1, 2, 1, 2]
    assert all(s.start.astimezone(NEW_YORK).time() == time(9) for s in shifts)
    assert shifts[2].end - shifts[2].start == 14 * D - H  # contains 2026-03-08


def test_follow_the_sun_twelve_hours_stays_at_nine_and_twenty_one_across_dst():
    start = at(PARIS, 2026, 3, 27, 9)
    lay = layer(version(start, members=(1, 2), unit="hours", count=12))
    shifts = layer_shifts(lay, PARIS, start, at(PARIS, 2026, 3, 31, 9))
    assert people(shifts) == [1, 2] * 4
    assert [t.time() for t in local_starts(shifts, PARIS)] == [time(9), time(21)] * 4
    lengths = [s.end - s.start for s in shifts]
    assert lengths == [12 * H, 12 * H, 12 * H, 11 * H, 12 * H, 12 * H, 12 * H, 12 * H]


def test_member_appearing_twice():
    start = at(ZULU, 2026, 1, 1, 9)
    lay = layer(version(start, members=(1, 2, 1, 3)))
    shifts = layer_shifts(lay, ZULU, start, start + 8 * D)
    assert people(shifts) == [1, 2, 1, 3, 1, 2, 1, 3]


def test_single_member_layer_turns_are_merged_in_the_final_schedule():
    start = at(ZULU, 2026, 1, 1, 9)
    lay = layer(version(start, members=(4,)))
    assert len(layer_shifts(lay, ZULU, start, start + 3 * D)) == 3
    final = final_schedule([lay], [], ZULU, start, start + 3 * D)
    assert final.shifts == (Shift(4, start.astimezone(UTC), (start + 3 * D).astimezone(UTC), 1),)
    assert final.gaps == ()


def test_layer_end_stops_the_layer():
    start = at(ZULU, 2026, 1, 1, 9)
    end = start + 2 * D + 5 * H
    shifts = layer_shifts(layer(version(start), end=end), ZULU, start, start + 10 * D)
    assert people(shifts) == [1, 2, 3]
    assert shifts[-1].end == end
    final = final_schedule([layer(version(start), end=end)], [], ZULU, start, start + 10 * D)
    assert final.gaps == (Gap(end, start + 10 * D),)


def test_nothing_before_effective_from():
    anchor = at(ZULU, 2026, 1, 1, 9)
    v = version(anchor, effective_from=anchor + 36 * H)
    shifts = layer_shifts(layer(v), ZULU, anchor, anchor + 4 * D)
    assert shifts[0].start == anchor + 36 * H
    assert people(shifts) == [2, 3, 1]  # mid-way through turn 1, the anchor still counts


def test_restrictions_business_hours_leave_nights_and_weekends_empty():
    monday = at(NEW_YORK, 2026, 3, 2, 0)
    business = Restriction(WEEKDAYS, time(9), time(17))
    lay = layer(version(monday, restrictions=[business]))
    shifts = layer_shifts(lay, NEW_YORK, monday, monday + 14 * D)
    assert len(shifts) == 10  # Mon-Fri twice; the second week is across the DST change
    for s in shifts:
        local_start, local_end = s.start.astimezone(NEW_YORK), s.end.astimezone(NEW_YORK)
        assert local_start.weekday() < 5
        assert local_start.time() == time(9) and local_end.time() == time(17)
        assert local_start.date() == local_end.date()
    # the daily rotation keeps turning over the (empty) weekend: Sat and Sun are turns 5 and 6
    assert people(shifts) == [1, 2, 3, 1, 2, 2, 3, 1, 2, 3]
    final = final_schedule([lay], [], NEW_YORK, monday, monday + 7 * D)
    assert len(final.gaps) == 6  # before Mon 09:00, four nights, then Fri 17:00 to Mon
    assert final.gaps[-1] == Gap(
        at(NEW_YORK, 2026, 3, 6, 17).astimezone(UTC), (monday + 7 * D).astimezone(UTC)
    )


def test_restriction_crossing_midnight_and_full_day():
    start = at(LONDON, 2026, 1, 5, 0)  # Monday
    nights = Restriction(frozenset({0}), time(22), time(6))
    sunday = Restriction(frozenset({6}), time(0), time(0))
    lay = layer(version(start, members=(1,), handoff=time(0), restrictions=[nights, sunday]))
    shifts = layer_shifts(lay, LONDON, start, start + 7 * D)
    # Monday 22:00 to Tuesday 00:00 and 00:00 to 06:00 (split at the daily handoff), Sunday
    assert [(s.start, s.end) for s in shifts] == [
        (at(UTC, 2026, 1, 5, 22), at(UTC, 2026, 1, 6, 0)),
        (at(UTC, 2026, 1, 6, 0), at(UTC, 2026, 1, 6, 6)),
        (at(UTC, 2026, 1, 11, 0), at(UTC, 2026, 1, 12, 0)),
    ]
    # a window opening after midnight still sees the window that started the evening before
    tuesday = at(LONDON, 2026, 1, 6, 3)
    assert [(s.start, s.end) for s in layer_shifts(lay, LONDON, tuesday, tuesday + H)] == [
        (at(UTC, 2026, 1, 6, 3), at(UTC, 2026, 1, 6, 4)),
    ]
    monday = at(LONDON, 2026, 1, 12, 1)  # inside Sunday's full day? no: that ended at 00:00
    assert layer_shifts(lay, LONDON, monday, monday + H) == []


def test_override_replaces_part_of_a_shift():
    start = at(ZULU, 2026, 1, 1, 9)
    lay = layer(version(start, members=(1, 2)))
    ov = Override(id=9, user_id=5, start=start + 3 * H, end=start + 5 * H)
    final = final_schedule([lay], [ov], ZULU, start, start + D)
    assert final.shifts == (
        Shift(1, start, start + 3 * H, layer_id=1),
        Shift(5, start + 3 * H, start + 5 * H, override_id=9),
        Shift(1, start + 5 * H, start + D, layer_id=1),
    )
    assert final.gaps == ()


def test_overlapping_overrides_latest_start_wins_then_higher_id():
    start = at(ZULU, 2026, 1, 1, 0)
    overrides = [
        Override(1, 11, start, start + 10 * H),
        Override(2, 12, start + 2 * H, start + 4 * H),
        Override(4, 14, start + 6 * H, start + 8 * H),
        Override(3, 13, start + 6 * H, start + 8 * H),
    ]
    final = final_schedule([], overrides, ZULU, start, start + 10 * H)
    assert [(s.user_id, s.override_id) for s in final.shifts] == [
        (11, 1),
        (12, 2),
        (11, 1),
        (14, 4),
        (11, 1),
    ]


def test_higher_priority_layer_wins_over_lower():
    monday = at(ZULU, 2026, 1, 5, 0)
    base = layer(version(monday, members=(1,)), id=1, priority=1)
    business = Restriction(WEEKDAYS, time(9), time(17))
    top = layer(version(monday, members=(2,), restrictions=[business]), id=2, priority=5)
    final = final_schedule([top, base], [], ZULU, monday, monday + D)
    assert [(s.user_id, s.layer_id, s.start, s.end) for s in final.shifts] == [
        (1, 1, monday, monday + 9 * H),
        (2, 2, monday + 9 * H, monday + 17 * H),
        (1, 1, monday + 17 * H, monday + D),
    ]
    # the same, whatever the input order
    assert final_schedule([base, top], [], ZULU, monday, monday + D) == final


def test_gap_reported_when_nothing_covers():
    start = at(ZULU, 2026, 1, 1, 0)
    lay = layer(version(start + 5 * H, members=(1,)), end=start + 8 * H)
    final = final_schedule([lay], [], ZULU, start, start + 12 * H)
    assert final.shifts == (Shift(1, start + 5 * H, start + 8 * H, layer_id=1),)
    assert final.gaps == (Gap(start, start + 5 * H), Gap(start + 8 * H, start + 12 * H))
    assert on_call_at([lay], [], ZULU, start + 2 * H) is None
    assert on_call_at([lay], [], ZULU, start + 8 * H) is None
    assert final_schedule([], [], ZULU, start, start + H) == FinalSchedule(
        (), (Gap(start, start + H),)
    )


def test_on_call_at_exact_handoff_gives_incoming_member():
    start = at(LONDON, 2026, 3, 1, 9)
    lay = layer(version(start))
    handoff = at(LONDON, 2026, 3, 29, 9)  # on the spring-forward day; turn 28 -> member 2
    shift = on_call_at([lay], [], LONDON, handoff)
    assert shift == Shift(2, handoff.astimezone(UTC), (handoff + D).astimezone(UTC), layer_id=1)
    before = on_call_at([lay], [], LONDON, handoff - timedelta(microseconds=1))
    assert before is not None and before.user_id == 1 and before.end == handoff
    assert before.end - before.start == 23 * H


def test_on_call_at_returns_override_and_merged_boundaries():
    start = at(ZULU, 2026, 1, 1, 9)
    lay = layer(version(start, members=(1, 1, 2)))
    ov = Override(3, 7, start + 50 * H, start + 52 * H)
    assert on_call_at([lay], [ov], ZULU, start + 51 * H) == Shift(
        7, start + 50 * H, start + 52 * H, override_id=3
    )
    # members 1, 1 back to back merge into one two-day piece
    assert on_call_at([lay], [ov], ZULU, start + 3 * H) == Shift(1, start, start + 2 * D, 1)


def test_on_call_at_far_from_anchor():
    anchor = at(ZULU, 2020, 1, 1, 9)
    lay = layer(version(anchor, members=(1, 2, 3)))
    instant = at(ZULU, 2045, 6, 1, 12)
    expected = (instant.date() - anchor.date()).days % 3 + 1
    assert on_call_at([lay], [], ZULU, instant).user_id == expected


def test_version_change_affects_only_later_shifts():
    start = at(LONDON, 2026, 1, 1, 9)
    old = version(start, members=(1, 2, 3))
    change = at(LONDON, 2026, 1, 10, 15)  # mid-turn
    new = LayerVersion(change, change, "weeks", 1, time(9), (8, 9))
    window_end = start + 40 * D
    before = layer_shifts(layer(old), LONDON, start, window_end)
    after = layer_shifts(layer(old, new), LONDON, start, window_end)
    assert [s for s in after if s.end < change] == [s for s in before if s.end < change]
    straddling = next(s for s in before if s.start < change < s.end)
    assert Shift(straddling.user_id, straddling.start, change, 1) in after  # cut short, no more
    later = [s for s in after if s.start >= change]
    assert later[0].start == change and people(later)[:3] == [8, 9, 8]
    assert all(s.start.astimezone(LONDON).time() == time(9) for s in later[1:])


# ---------------------------------------------------------------------------------------------
# Daylight saving time

DST_DAYS = [
    (LONDON, date(2026, 3, 29), 23),
    (LONDON, date(2026, 10, 25), 25),
    (NEW_YORK, date(2026, 3, 8), 23),
    (NEW_YORK, date(2026, 11, 1), 25),
    (SYDNEY, date(2026, 4, 5), 25),
    (SYDNEY, date(2026, 10, 4), 23),
]


@pytest.mark.parametrize(("tz", "day", "hours"), DST_DAYS, ids=lambda v: str(v))
def test_daily_nine_am_handoff_survives_dst(tz, day, hours):
    anchor = datetime.combine(day - 10 * D, time(9), tzinfo=tz)
    lay = layer(version(anchor))
    window_start = datetime.combine(day - 3 * D, time(9), tzinfo=tz)
    shifts = layer_shifts(lay, tz, window_start, datetime.combine(day + 3 * D, time(9), tzinfo=tz))
    assert len(shifts) == 6
    assert all(t.time() == time(9) for t in local_starts(shifts, tz))
    lengths = {s.start.astimezone(tz).date(): s.end - s.start for s in shifts}
    # the change happens in the early hours, so the turn starting the day before contains it
    assert lengths.pop(day - D) == hours * H
    assert set(lengths.values()) == {24 * H}


def test_spring_forward_handoff_at_0230_lands_at_0330():
    anchor = at(NEW_YORK, 2026, 3, 1, 2, 30)
    lay = layer(version(anchor, handoff=time(2, 30)))
    shifts = layer_shifts(lay, NEW_YORK, anchor, at(NEW_YORK, 2026, 3, 12))
    assert all(s.start < s.end for s in shifts)
    change = next(s for s in shifts if s.start.astimezone(NEW_YORK).date() == date(2026, 3, 8))
    assert change.start.astimezone(NEW_YORK).time() == time(3, 30)
    assert change.end.astimezone(NEW_YORK).time() == time(2, 30)
    assert change.end - change.start == 23 * H
    previous = next(s for s in shifts if s.end == change.start)
    assert previous.end - previous.start == 24 * H


def test_spring_forward_hourly_turns_drop_zero_length_shift():
    anchor = at(NEW_YORK, 2026, 3, 7, 0, 30)
    lay = layer(version(anchor, members=(1, 2, 3, 4, 5), unit="hours", handoff=time(0, 30)))
    window = (at(NEW_YORK, 2026, 3, 8, 0), at(NEW_YORK, 2026, 3, 8, 6))
    shifts = layer_shifts(lay, NEW_YORK, *window)
    assert_tiles(shifts, *(w.astimezone(UTC) for w in window))
    # handoffs 02:30 (moves to 03:30) and 03:30 coincide: the 02:30 turn vanishes
    assert [t.time() for t in local_starts(shifts, NEW_YORK)] == [
        time(0),
        time(0, 30),
        time(1, 30),
        time(3, 30),
        time(4, 30),
        time(5, 30),
    ]
    # turns 23, 24, 25, then 27: turn 26 (02:30, member 2) gets no time at all
    assert people(shifts) == [4, 5, 1, 3, 4, 5]


def test_fall_back_ambiguous_handoff_takes_first_occurrence():
    anchor = at(NEW_YORK, 2026, 10, 25, 1, 30)
    lay = layer(version(anchor, handoff=time(1, 30)))
    shifts = layer_shifts(lay, NEW_YORK, anchor, at(NEW_YORK, 2026, 11, 4))
    change = next(s for s in shifts if s.start.astimezone(NEW_YORK).date() == date(2026, 11, 1))
    assert change.start == at(UTC, 2026, 11, 1, 5, 30)  # 01:30 EDT, not 01:30 EST
    assert change.end - change.start == 25 * H


def test_restriction_window_on_dst_day_uses_local_wall_clock():
    anchor = at(LONDON, 2026, 3, 23, 0)
    lay = layer(
        version(
            anchor, members=(1,), restrictions=[Restriction(WEEKDAYS | {6}, time(0, 30), time(3))]
        )
    )
    shifts = layer_shifts(lay, LONDON, at(LONDON, 2026, 3, 29), at(LONDON, 2026, 3, 30))
    # 00:30 GMT to 03:00 BST is 1.5 h of real time on the spring-forward day
    assert [(s.start, s.end) for s in shifts] == [
        (at(UTC, 2026, 3, 29, 0, 30), at(UTC, 2026, 3, 29, 2)),
    ]


# ---------------------------------------------------------------------------------------------
# Errors


E_START = at(ZULU, 2026, 1, 1, 9)
E_NAIVE = E_START.replace(tzinfo=None)  # deliberately naive: it must be rejected
E_GOOD = layer(version(E_START))
E_END = E_START + D

INVALID = {
    "empty members": lambda: layer_shifts(
        layer(version(E_START, members=())), ZULU, E_START, E_END
    ),
    "turn_count 0": lambda: layer_shifts(layer(version(E_START, count=0)), ZULU, E_START, E_END),
    "unknown unit": lambda: layer_shifts(
        layer(version(E_START, unit="months")), ZULU, E_START, E_END
    ),
    "naive window": lambda: layer_shifts(E_GOOD, ZULU, E_NAIVE, E_END),
    "naive rotation start": lambda: layer_shifts(layer(version(E_NAIVE)), ZULU, E_START, E_END),
    "naive layer end": lambda: layer_shifts(
        layer(E_GOOD.versions[0], end=E_NAIVE), ZULU, E_START, E_END
    ),
    "naive instant": lambda: on_call_at([E_GOOD], [], ZULU, E_NAIVE),
    "empty window": lambda: layer_shifts(E_GOOD, ZULU, E_START, E_START),
    "reversed window": lambda: final_schedule([E_GOOD], [], ZULU, E_END, E_START),
    "reversed override": lambda: final_schedule(
        [E_GOOD], [Override(1, 1, E_START + H, E_START)], ZULU, E_START, E_END
    ),
    "naive override": lambda: final_schedule(
        [E_GOOD], [Override(1, 1, E_NAIVE, E_END)], ZULU, E_START, E_END
    ),
    "weekday 7": lambda: layer_shifts(
        layer(version(E_START, restrictions=[Restriction(frozenset({7}), time(9), time(17))])),
        ZULU,
        E_START,
        E_END,
    ),
    "versions out of order": lambda: layer_shifts(
        layer(version(E_END), version(E_START)), ZULU, E_START, E_END
    ),
}


@pytest.mark.parametrize("call", INVALID.values(), ids=INVALID.keys())
def test_invalid_input_raises_rotation_error(call):
    with pytest.raises(RotationError):
        call()
    assert issubclass(RotationError, ValueError)


# ---------------------------------------------------------------------------------------------
# Properties

ZONES = [LONDON, NEW_YORK, SYDNEY, ZULU, KOLKATA]
TRANSITIONS = {tz: [d for zone, d, _ in DST_DAYS if zone is tz] for tz in ZONES}
TRANSITIONS[ZULU] = TRANSITIONS[KOLKATA] = [d for _, d, _ in DST_DAYS]
# wall-clock times that are skipped or repeated on some change day of the zones above
CHANGE_TIMES = [time(1), time(1, 30), time(2), time(2, 30), time(2, 59)]
HOUR_COUNTS = [1, 2, 3, 5, 6, 8, 12, 24, 36]

zones = st.sampled_from(ZONES)
handoff_times = st.one_of(
    st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    st.sampled_from(CHANGE_TIMES),
)
turns = st.one_of(
    st.tuples(st.just("hours"), st.sampled_from(HOUR_COUNTS)),
    st.tuples(st.just("days"), st.integers(1, 4)),
    st.tuples(st.just("weeks"), st.integers(1, 3)),
)
member_lists = st.lists(st.integers(1, 6), min_size=1, max_size=5)
minutes = st.integers(0, 60 * 24 * 3).map(lambda m: timedelta(minutes=m))


@st.composite
def instants(draw, tz):
    """An aware instant, often a few days around a DST change."""
    if draw(st.booleans()):
        day = draw(st.sampled_from(TRANSITIONS[tz])) - 2 * D
    else:
        day = date(2024, 1, 1) + draw(st.integers(0, 4 * 365)) * D
    local = datetime.combine(day, time(0), tzinfo=tz) + draw(minutes)
    return local.astimezone(UTC)


@st.composite
def versions(draw, tz, effective_from=None):
    unit, count = draw(turns)
    anchor = draw(instants(tz)) - draw(st.integers(0, 2000)) * D
    return LayerVersion(
        effective_from=anchor if effective_from is None else effective_from,
        rotation_start=anchor,
        turn_unit=unit,
        turn_count=count,
        handoff_time=draw(handoff_times),
        members=tuple(draw(member_lists)),
    )


@st.composite
def windows(draw, tz):
    start = draw(instants(tz))
    # hypothesis favours small integers: also offer multi-day windows that span a DST change
    length = draw(st.integers(1, 60 * 24 * 12) | st.sampled_from([2 * 24 * 60, 4 * 24 * 60]))
    return start, start + draw(st.sampled_from([1, 3])) * length * timedelta(minutes=1)


restrictions = st.builds(
    Restriction,
    st.frozensets(st.integers(0, 6), min_size=1),
    handoff_times,
    handoff_times,
)

# database=None: keep no example database (.hypothesis/) in the work tree.
PROPERTY = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def wall(tz, instant):
    """Wall-clock reading in tz (fold dropped) as an aware datetime for wall-clock arithmetic."""
    return instant.astimezone(tz).replace(fold=0)


def exists(local):
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(
        tzinfo=None
    )


@PROPERTY
@given(data=st.data(), tz=zones)
def test_property_layer_shifts_tile_the_window_without_restrictions(data, tz):
    window_start, window_end = data.draw(windows(tz))
    v = data.draw(versions(tz, effective_from=window_start - D))
    shifts = layer_shifts(layer(v), tz, window_start, window_end)
    assert_tiles(shifts, window_start, window_end)


def check_handoffs(v, tz, shifts, window_start):
    """Every handoff in shifts is at its scheduled wall-clock time, with the right member."""
    turn = {"hours": H, "days": D, "weeks": 7 * D}[v.turn_unit] * v.turn_count
    base = datetime.combine(v.rotation_start.astimezone(tz).date(), v.handoff_time, tzinfo=tz)
    moved = 0
    for shift in shifts:
        if shift.start == window_start:
            continue  # clipped by the window, not a handoff
        local = wall(tz, shift.start)
        k, rest = divmod(local - base, turn)
        scheduled = base + k * turn  # fold=0: an ambiguous time means its first occurrence
        if rest:
            # only allowed when the scheduled wall-clock time does not exist and moved forward
            assert not exists(scheduled), (local, scheduled)
            moved += 1
        assert scheduled.astimezone(UTC) == shift.start
        if v.turn_unit != "hours" and exists(datetime.combine(local.date(), v.handoff_time, tz)):
            assert local.time() == v.handoff_time
        assert shift.user_id == v.members[k % len(v.members)]
    return moved


@PROPERTY
@given(data=st.data(), tz=zones)
def test_property_handoffs_keep_their_wall_clock_time_and_member(data, tz):
    window_start, window_end = data.draw(windows(tz))
    v = data.draw(versions(tz, effective_from=window_start - D))
    check_handoffs(v, tz, layer_shifts(layer(v), tz, window_start, window_end), window_start)


# the hour that is skipped / repeated on each change day (2026), as local wall-clock hours
CHANGE_HOURS = {
    (LONDON, date(2026, 3, 29)): 1,
    (LONDON, date(2026, 10, 25)): 1,
    (NEW_YORK, date(2026, 3, 8)): 2,
    (NEW_YORK, date(2026, 11, 1)): 1,
    (SYDNEY, date(2026, 4, 5)): 2,
    (SYDNEY, date(2026, 10, 4)): 2,
}


@PROPERTY
@given(
    change=st.sampled_from(sorted(CHANGE_HOURS, key=lambda c: (c[0].key, c[1]))),
    minute=st.integers(0, 59),
    turn=st.sampled_from([("days", 1), ("days", 2), ("hours", 24), ("hours", 12), ("hours", 1)]),
    members=member_lists,
    lead=st.integers(1, 30),
    span=st.integers(1, 5),
)
def test_property_handoffs_inside_the_changing_hour(change, minute, turn, members, lead, span):
    tz, day = change
    handoff = time(CHANGE_HOURS[change], minute)
    anchor = datetime.combine(day - lead * D, time(12), tzinfo=tz)
    window_start = datetime.combine(day - span * D, time(0), tzinfo=tz).astimezone(UTC)
    # effective before the anchor when span > lead: turns before the anchor count down (k < 0)
    v = LayerVersion(window_start - D, anchor, turn[0], turn[1], handoff, tuple(members))
    window_end = window_start + 2 * span * D
    shifts = layer_shifts(layer(v), tz, window_start, window_end)
    assert_tiles(shifts, window_start, window_end)
    moved = check_handoffs(v, tz, shifts, window_start)
    if turn == ("days", 1) and day.month in (3, 10) and (tz is not SYDNEY) == (day.month == 3):
        assert moved == 1  # the spring-forward day's handoff, one hour later on the wall clock
    on_the_day = [s for s in shifts if wall(tz, s.start).date() == day]
    if turn == ("days", 1):
        assert len(on_the_day) == 1
        assert on_the_day[0].start == datetime.combine(day, handoff, tzinfo=tz).astimezone(UTC)


@PROPERTY
@given(data=st.data(), tz=zones)
def test_property_version_change_only_changes_later_shifts(data, tz):
    window_start, window_end = data.draw(windows(tz))
    first = data.draw(versions(tz, effective_from=window_start - D))
    change = window_start + (window_end - window_start) * data.draw(st.floats(0, 1.2))
    change = change.replace(microsecond=0)
    second = data.draw(versions(tz, effective_from=change))
    single = layer_shifts(layer(first), tz, window_start, window_end)
    changed = layer_shifts(layer(first, second), tz, window_start, window_end)
    assert [s for s in changed if s.end < change] == [s for s in single if s.end < change]
    # before the change: exactly the old shifts, the one running at the change cut short there
    truncated = [dataclasses.replace(s, end=min(s.end, change)) for s in single if s.start < change]
    assert [s for s in changed if s.start < change] == truncated
    if change >= window_end:
        assert changed == single
    else:
        assert_tiles(changed, window_start, window_end)
        later = layer_shifts(layer(second), tz, change, window_end)
        assert [s for s in changed if s.start >= change] == later


def oracle(layer_shift_lists, overrides, instant):
    """Winner at one instant by brute force: (user_id, layer_id, override_id) or None."""
    covering = [o for o in overrides if o.start <= instant < o.end]
    if covering:
        o = max(covering, key=lambda o: (o.start, o.id))
        return (o.user_id, None, o.id)
    best = None
    for lay, shifts in layer_shift_lists:
        for s in shifts:
            if s.start <= instant < s.end and (
                best is None or (lay.priority, lay.id) > (best[0].priority, best[0].id)
            ):
                best = (lay, s)
    return None if best is None else (best[1].user_id, best[0].id, None)


@PROPERTY
@given(data=st.data(), tz=zones)
def test_property_final_schedule_tiles_window_and_matches_brute_force(data, tz):
    window_start, window_end = data.draw(windows(tz))
    layers = []
    for layer_id in range(data.draw(st.integers(0, 3))):
        v = data.draw(versions(tz, effective_from=window_start - data.draw(minutes) + D))
        if data.draw(st.booleans()):
            chosen = data.draw(st.lists(restrictions, max_size=2))
            v = dataclasses.replace(v, restrictions=tuple(chosen))
        end = window_start + data.draw(minutes) * 4 if data.draw(st.booleans()) else None
        layers.append(layer(v, id=layer_id, priority=data.draw(st.integers(0, 2)), end=end))
    overrides = []
    for override_id in range(data.draw(st.integers(0, 5))):
        o_start = window_start + data.draw(minutes) * 3 - D
        o_end = o_start + data.draw(minutes) + timedelta(minutes=1)
        overrides.append(Override(override_id, data.draw(st.integers(1, 6)), o_start, o_end))

    final = final_schedule(layers, overrides, tz, window_start, window_end)
    everything = pieces(final)
    assert_tiles(everything, window_start, window_end)
    assert list(final.shifts) == sorted(final.shifts, key=lambda s: s.start)
    for prev, nxt in zip(final.gaps, final.gaps[1:], strict=False):
        assert prev.end < nxt.start  # adjacent gaps are merged

    per_layer = [(lay, layer_shifts(lay, tz, window_start, window_end)) for lay in layers]
    for piece in everything:
        for instant in (piece.start, piece.start + (piece.end - piece.start) / 2):
            expected = oracle(per_layer, overrides, instant)
            if isinstance(piece, Gap):
                assert expected is None
            else:
                assert expected == (piece.user_id, piece.layer_id, piece.override_id)
    sample = window_start + (window_end - window_start) * data.draw(st.floats(0, 0.999))
    found = on_call_at(layers, overrides, tz, sample)
    expected = oracle(per_layer, overrides, sample)
    if expected is None:
        assert found is None
    else:
        assert (found.user_id, found.layer_id, found.override_id) == expected
        assert found.start <= sample < found.end
