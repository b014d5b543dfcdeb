"""The timeline picture's maths: pure, no database."""

import re
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedules import timeline
from schedules.rotation import Gap, Shift
from schedules.timeline import CHART_WIDTH, LABEL_WIDTH, TimelineRow

NEW_YORK = ZoneInfo("America/New_York")
START = datetime(2026, 11, 2, tzinfo=UTC)
END = START + timedelta(days=14)
DAY = CHART_WIDTH / 14  # units per day in a two-week window
SVG = "{http://www.w3.org/2000/svg}"


def hours(n: float) -> timedelta:
    return timedelta(hours=n)


def build(rows, *, now=None, start=START, end=END, zone=UTC, names=None):
    return timeline.build(
        rows=rows,
        names=names or {1: "Ann", 2: "Ben", 3: "Cy"},
        start=start,
        end=end,
        now=now or start + hours(12),
        zone=zone,
        title="Primary",
    )


def test_bars_are_placed_in_proportion_to_time():
    shifts = [
        Shift(1, START, START + timedelta(days=1), layer_id=7),
        Shift(2, START + timedelta(days=1), START + timedelta(days=3), layer_id=7),
        Shift(1, START + timedelta(days=3, hours=6), START + timedelta(days=3, hours=12), 7),
    ]
    picture = build([TimelineRow("Daily", shifts)])
    got = [(round(b.x, 6), round(b.width, 6), b.user_id) for b in picture.bars]
    assert got == [
        (LABEL_WIDTH, DAY, 1),
        (LABEL_WIDTH + DAY, 2 * DAY, 2),
        (round(LABEL_WIDTH + 3.25 * DAY, 6), round(DAY / 4, 6), 1),
    ]


def test_pieces_outside_the_window_are_clipped_or_dropped():
    shifts = [
        Shift(1, START - timedelta(days=2), START - timedelta(days=1)),  # before: dropped
        Shift(2, START - timedelta(days=1), START + timedelta(days=1)),  # clipped at the start
        Shift(3, END - timedelta(days=1), END + timedelta(days=5)),  # clipped at the end
    ]
    picture = build([TimelineRow("Daily", shifts)])
    assert [(b.user_id, round(b.x, 6), round(b.width, 6)) for b in picture.bars] == [
        (2, LABEL_WIDTH, DAY),
        (3, round(LABEL_WIDTH + 13 * DAY, 6), DAY),
    ]
    # Only people drawn get a colour and a legend entry.
    assert [e.name for e in picture.legend] == ["Ben", "Cy"]


def test_gaps_of_the_final_row_are_boxes_with_a_label():
    final = TimelineRow(
        "Final",
        [Shift(1, START, START + timedelta(days=10), layer_id=1)],
        [Gap(START + timedelta(days=10), END)],
        final=True,
    )
    picture = build([TimelineRow("Daily", final.shifts), final])
    (gap,) = picture.gaps
    assert gap.row == 1
    assert (round(gap.x, 6), round(gap.width, 6)) == (
        round(LABEL_WIDTH + 10 * DAY, 6),
        round(4 * DAY, 6),
    )
    assert gap.text == "Nobody on call"
    assert gap.title == "Final: nobody on call, Thu 12 Nov 00:00 – Mon 16 Nov 00:00"
    # The final row sits under the layer rows, a little apart.
    layer_row, final_row = picture.rows
    assert final_row.final and final_row.y > layer_row.y + layer_row.height
    assert "1 stretch with nobody on call" in picture.aria_label


def test_a_narrow_gap_still_has_a_box_and_a_title_but_no_text_that_would_not_fit():
    final = TimelineRow("Final", [], [Gap(START, START + timedelta(minutes=10))], final=True)
    (gap,) = build([final]).gaps
    assert gap.width < 1 and gap.text == ""
    assert gap.title.startswith("Final: nobody on call")


@pytest.mark.parametrize(
    ("now", "x"),
    [
        (START, LABEL_WIDTH),
        (START + timedelta(days=7), LABEL_WIDTH + CHART_WIDTH / 2),
        (START + timedelta(days=3, hours=18), LABEL_WIDTH + 3.75 * DAY),
        (END, LABEL_WIDTH + CHART_WIDTH),
        (START - timedelta(seconds=1), None),
        (END + timedelta(seconds=1), None),
    ],
)
def test_the_now_line(now, x):
    picture = build([TimelineRow("Daily", [])], now=now)
    assert (None if picture.now_x is None else round(picture.now_x, 6)) == (
        None if x is None else round(x, 6)
    )


def test_window_is_today_and_thirteen_more_days_in_the_viewers_zone():
    # 03:00 UTC on 29 Oct is still 28 Oct in New York; the window spans the change of 1 Nov.
    start, end = timeline.window(datetime(2026, 10, 29, 3, tzinfo=UTC), NEW_YORK)
    assert start.astimezone(NEW_YORK) == datetime(2026, 10, 28, tzinfo=NEW_YORK)
    assert end == datetime(2026, 11, 11, tzinfo=NEW_YORK)
    assert end - start == timedelta(days=14, hours=1)  # one 25-hour day


def test_day_ticks_are_local_midnights_across_the_end_of_summer_time():
    start, end = timeline.window(datetime(2026, 10, 29, 3, tzinfo=UTC), NEW_YORK)
    picture = build([TimelineRow("Daily", [])], start=start, end=end, zone=NEW_YORK)
    ticks = picture.ticks
    assert len(ticks) == 14
    assert [(t.weekday, t.day) for t in ticks[3:6]] == [
        ("Sat", "31 Oct"),
        ("Sun", "1 Nov"),
        ("Mon", "2 Nov"),
    ]
    for tick in ticks:
        local = tick.at.astimezone(NEW_YORK)
        assert (local.hour, local.minute) == (0, 0)
    # Midnight is 04:00 UTC in summer time and 05:00 UTC after the change.
    assert ticks[4].at == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert ticks[5].at == datetime(2026, 11, 2, 5, tzinfo=UTC)
    # Sunday 1 Nov lasts 25 hours, so it is drawn wider than the days around it.
    per_hour = CHART_WIDTH / ((end - start).total_seconds() / 3600)
    widths = [round(b.x - a.x, 6) for a, b in zip(ticks, ticks[1:], strict=False)]
    assert widths[3] == round(24 * per_hour, 6)  # Saturday
    assert widths[4] == round(25 * per_hour, 6)  # Sunday, the long day
    assert widths[5] == round(24 * per_hour, 6)  # Monday
    assert ticks[0].x == LABEL_WIDTH


def test_texts_are_in_the_viewers_zone_across_the_change():
    start, end = timeline.window(datetime(2026, 10, 29, 3, tzinfo=UTC), NEW_YORK)
    # A daily 09:00 New York shift on each side of the change: 13:00 UTC, then 14:00 UTC.
    shifts = [
        Shift(1, datetime(2026, 10, 31, 13, tzinfo=UTC), datetime(2026, 11, 1, 14, tzinfo=UTC)),
        Shift(2, datetime(2026, 11, 1, 14, tzinfo=UTC), datetime(2026, 11, 2, 14, tzinfo=UTC)),
    ]
    picture = build([TimelineRow("Daily", shifts)], start=start, end=end, zone=NEW_YORK)
    assert [b.title for b in picture.bars] == [
        "Daily: Ann, Sat 31 Oct 09:00 – Sun 1 Nov 09:00",
        "Daily: Ben, Sun 1 Nov 09:00 – Mon 2 Nov 09:00",
    ]
    assert "(America/New_York)" in picture.aria_label
    assert "from Wed 28 Oct to Tue 10 Nov" in picture.aria_label
    # Ann's turn lasted 25 hours: her bar is longer than Ben's 24.
    ann, ben = picture.bars
    assert ann.width / ben.width == pytest.approx(25 / 24)


def test_overrides_are_marked_and_keep_the_persons_colour():
    shifts = [
        Shift(1, START, START + timedelta(days=1), layer_id=1),
        Shift(1, START + timedelta(days=1), START + timedelta(days=2), override_id=5),
    ]
    layer, override = build([TimelineRow("Final", shifts, final=True)]).bars
    assert not layer.override and override.override
    assert (layer.fill, layer.stroke) == (override.fill, override.stroke)
    assert "(override)" in override.title and override.text.startswith("⇄ ")


def test_colours_are_stable_and_distinct():
    first = timeline.colours_for([3, 15, 27])  # all prefer colour 3 of 12
    assert len(set(first.values())) == 3
    assert first == timeline.colours_for([27, 3, 15])
    assert timeline.colours_for([3])[3] == first[3]  # the smallest id keeps its own colour
    # A person keeps the colour of their id wherever they appear alone or with others.
    assert timeline.colours_for([5, 7])[5] == timeline.colours_for([5, 9])[5]


@given(st.sets(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=12))
def test_up_to_a_palette_of_people_get_distinct_colours(ids):
    colours = timeline.colours_for(ids)
    assert len(set(colours.values())) == len(ids)


def test_bar_text_is_shortened_to_fit_and_the_title_keeps_it_all():
    long_name = "Bartholomew Longname-Smythe"
    shifts = [Shift(1, START, START + hours(30), layer_id=1)]
    (bar,) = build([TimelineRow("Daily", shifts)], names={1: long_name}).bars
    assert bar.text.endswith("…") and len(bar.text) < len(long_name)
    assert long_name in bar.title


def test_svg_is_well_formed_labelled_and_escapes_every_text():
    evil = '<script>alert("x")</script> & co'
    final = TimelineRow(
        "Final",
        [Shift(1, START, START + timedelta(days=10), layer_id=1)],
        [Gap(START + timedelta(days=10), END)],
        final=True,
    )
    picture = timeline.build(
        rows=[TimelineRow(f"Layer {evil}", final.shifts), final],
        names={1: evil},
        start=START,
        end=END,
        now=START + hours(30),
        zone=UTC,
        title=evil,
    )
    markup = timeline.render_svg(picture)
    assert "<script>" not in markup
    root = ElementTree.fromstring(markup)  # parses: well-formed, escaped
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-label").startswith(f"Timeline of {evil} from Mon 2 Nov to Sun 15 Nov")
    bars = root.findall(f".//{SVG}g[@class='timeline__bar']")
    assert len(bars) == 2  # the layer row and the final row
    assert all(
        bar.find(f"{SVG}title").text.endswith("Mon 2 Nov 00:00 – Thu 12 Nov 00:00") for bar in bars
    )
    gap = root.find(f".//{SVG}g[@class='timeline__gap']")
    assert gap.find(f"{SVG}text").text == "Nobody on call"
    now = root.find(f".//{SVG}g[@class='timeline__now']/{SVG}line")
    assert float(now.get("x1")) == pytest.approx(LABEL_WIDTH + 1.25 * DAY, abs=0.01)
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "timeline__date"]
    assert labels[:2] == ["2 Nov", "3 Nov"] and len(labels) == 14
    assert re.search(r'fill="url\(#timeline-gap\)"', markup)


def test_now_and_next():
    h = [START + hours(n) for n in range(0, 60, 1)]
    shifts = [
        Shift(1, h[0], h[9], layer_id=1),
        Shift(1, h[9], h[12], override_id=4),  # Ann's own override right after: same stretch
        Shift(2, h[12], h[20], layer_id=1),
        # a gap from h[20] to h[24]
        Shift(3, h[24], h[48], layer_id=1),
    ]
    horizon = h[48]
    now_, next_ = timeline.now_and_next(shifts, h[5], horizon)
    assert now_ == timeline.Stretch(1, h[0], h[12])
    assert next_ == timeline.Stretch(2, h[12], h[20])
    # Ben's stretch is followed by a gap: nobody next.
    assert timeline.now_and_next(shifts, h[15], horizon) == (
        timeline.Stretch(2, h[12], h[20]),
        None,
    )
    # In the gap: nobody now, Cy next, on call past the horizon.
    assert timeline.now_and_next(shifts, h[21], horizon) == (None, timeline.Stretch(3, h[24], None))
    # At the exact handoff the incoming person is on call.
    assert timeline.now_and_next(shifts, h[12], horizon)[0].user_id == 2
    assert timeline.now_and_next(shifts, h[50], horizon) == (None, None)
