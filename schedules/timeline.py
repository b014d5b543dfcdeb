"""The timeline picture of a schedule: pure drawing, no Django and no database.

`build` turns plain shifts and gaps (from `schedules.rotation`) into a `Timeline`, a structure of
boxes in SVG user units: x is proportional to real time across the window, so a 25-hour day
(the clocks go back) is drawn wider than a 23-hour one. Day ticks and every text are in the
viewer's zone. `render_svg` turns a Timeline into inline SVG markup with every text escaped.

Layout, left to right: a column of row labels (`LABEL_WIDTH`), then the chart (`CHART_WIDTH`)
for the window. Top to bottom: the day axis, one row per layer, then the final row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from html import escape

from .rotation import Gap, Shift

__all__ = [
    "Bar",
    "GapBox",
    "LegendEntry",
    "Stretch",
    "RowBox",
    "Tick",
    "Timeline",
    "TimelineRow",
    "build",
    "colours_for",
    "format_day",
    "format_instant",
    "format_span",
    "now_and_next",
    "render_svg",
    "window",
]

LABEL_WIDTH = 140.0
CHART_WIDTH = 840.0  # 60 units a day over two weeks
RIGHT_PAD = 12.0
WIDTH = LABEL_WIDTH + CHART_WIDTH + RIGHT_PAD
AXIS_HEIGHT = 54.0
ROW_HEIGHT = 36.0
FINAL_GAP = 10.0  # space between the layer rows and the final row
BAR_PAD = 5.0
BOTTOM_PAD = 8.0
CHAR_WIDTH = 6.6  # average width of a 12-unit system-ui character, to decide what text fits

# Fills light enough for dark text (#1a1d23, contrast above 9:1 on each), each with a darker
# edge of the same hue (3:1 or more against white) so a bar stands out from the background.
# No red: red means a gap.
PALETTE: tuple[tuple[str, str], ...] = (
    ("#bfdbfe", "#1d4ed8"),  # blue
    ("#fde68a", "#a16207"),  # amber
    ("#bbf7d0", "#15803d"),  # green
    ("#ddd6fe", "#6d28d9"),  # violet
    ("#fbcfe8", "#be185d"),  # pink
    ("#a5f3fc", "#0e7490"),  # cyan
    ("#fed7aa", "#c2410c"),  # orange
    ("#d9f99d", "#4d7c0f"),  # lime
    ("#e9d5ff", "#7e22ce"),  # purple
    ("#99f6e4", "#0f766e"),  # teal
    ("#e2e8f0", "#475569"),  # slate
    ("#fef08a", "#854d0e"),  # yellow
)


@dataclass(frozen=True)
class TimelineRow:
    """What one row shows: a layer's shifts, or (final=True) the final schedule and its gaps."""

    label: str
    shifts: Sequence[Shift]
    gaps: Sequence[Gap] = ()
    final: bool = False


@dataclass(frozen=True)
class RowBox:
    label: str  # full text; `short` is what fits in the label column
    short: str
    y: float
    height: float
    final: bool


@dataclass(frozen=True)
class Bar:
    """One shift: a person's box in a row; `override` bars are drawn distinctly."""

    row: int
    x: float
    width: float
    y: float
    height: float
    user_id: int
    name: str
    fill: str
    stroke: str
    override: bool
    title: str  # hover and assistive text
    text: str  # what is written on the bar ('' when nothing fits)


@dataclass(frozen=True)
class GapBox:
    """Nobody on call: hatched red, labelled when there is room."""

    row: int
    x: float
    width: float
    y: float
    height: float
    title: str
    text: str


@dataclass(frozen=True)
class Tick:
    """A day boundary (local midnight in the viewer's zone) and the day it starts."""

    x: float
    at: datetime  # UTC
    weekday: str  # "Sun"
    day: str  # "1 Nov"
    label_x: float  # middle of the (possibly clipped) day column


@dataclass(frozen=True)
class LegendEntry:
    user_id: int
    name: str
    fill: str
    stroke: str


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    width: float
    height: float
    rows: tuple[RowBox, ...]
    bars: tuple[Bar, ...]
    gaps: tuple[GapBox, ...]
    ticks: tuple[Tick, ...]
    now_x: float | None  # None when now lies outside the window
    legend: tuple[LegendEntry, ...]
    aria_label: str
    zone_name: str


# ---- time helpers --------------------------------------------------------------------------


def window(now: datetime, zone: tzinfo, days: int = 14) -> tuple[datetime, datetime]:
    """[local midnight of today, local midnight `days` days later) in `zone`, in UTC."""
    today = now.astimezone(zone).date()
    return _midnight(today, zone), _midnight(today + timedelta(days=days), zone)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def format_day(value: datetime, zone: tzinfo) -> str:
    """Like "Sun 1 Nov", in `zone`."""
    local = value.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}"


def format_instant(value: datetime, zone: tzinfo) -> str:
    """Like "Sun 1 Nov 09:00", in `zone`."""
    local = value.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def format_span(start: datetime, end: datetime, zone: tzinfo) -> str:
    """Like "Sun 1 Nov 09:00 – Mon 2 Nov 09:00", in `zone`."""
    return f"{format_instant(start, zone)} – {format_instant(end, zone)}"


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


# ---- who is on call now and next -----------------------------------------------------------


@dataclass(frozen=True)
class Stretch:
    """One person's time on call without a break: adjacent pieces of the final schedule with the
    same person (a layer shift, then their own override) are one stretch."""

    user_id: int
    start: datetime
    end: datetime | None  # None: it goes on past the time looked at


def _stretch_from(shifts: Sequence[Shift], index: int, horizon: datetime) -> Stretch:
    first = shifts[index]
    end = first.end
    for shift in shifts[index + 1 :]:
        if shift.user_id != first.user_id or shift.start != end:
            break
        end = shift.end
    return Stretch(first.user_id, first.start, None if end >= horizon else end)


def now_and_next(
    shifts: Sequence[Shift], now: datetime, horizon: datetime
) -> tuple[Stretch | None, Stretch | None]:
    """(who is on call at `now`, who comes next) from the final schedule's sorted shifts
    computed up to `horizon`. Next is the stretch starting when the current one ends (None when
    a gap follows, or nothing is known before the horizon); with nobody on call now, it is the
    first stretch to start."""
    for index, shift in enumerate(shifts):
        if shift.start <= now < shift.end:
            current = _stretch_from(shifts, index, horizon)
            if current.end is None:
                return current, None
            for later, following in enumerate(shifts[index + 1 :], start=index + 1):
                if following.start >= current.end:
                    if following.start == current.end:
                        return current, _stretch_from(shifts, later, horizon)
                    break
            return current, None
        if shift.start > now:
            return None, _stretch_from(shifts, index, horizon)
    return None, None


# ---- colours -------------------------------------------------------------------------------


def colours_for(user_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """{user id: (fill, edge)}: each person keeps the colour of their id (id modulo the palette)
    unless someone with a smaller id already holds it in this picture; then the next free one.
    The same people always get the same colours, on every page and every reload."""
    taken: set[int] = set()
    result: dict[int, tuple[str, str]] = {}
    size = len(PALETTE)
    for user_id in sorted(set(user_ids)):
        preferred = user_id % size
        index = preferred
        for step in range(size):
            candidate = (preferred + step) % size
            if candidate not in taken:
                index = candidate
                break
        taken.add(index)
        if len(taken) == size:  # more people than colours: start sharing again
            taken.clear()
        result[user_id] = PALETTE[index]
    return result


# ---- layout --------------------------------------------------------------------------------


def _fit(text: str, width: float) -> str:
    """The text, shortened with an ellipsis to fit `width` units ('' when even that won't)."""
    room = int((width - 8) // CHAR_WIDTH)
    if room >= len(text):
        return text
    if room < 3:
        return ""
    return text[: room - 1].rstrip() + "…"


def build(
    *,
    rows: Sequence[TimelineRow],
    names: Mapping[int, str],
    start: datetime,
    end: datetime,
    now: datetime,
    zone: tzinfo,
    title: str = "Schedule",
) -> Timeline:
    """Lay out `rows` over [start, end): x proportional to time, day ticks at the viewer's
    local midnights, the "now" line, one colour per person. Pieces outside the window are
    clipped or dropped."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        raise ValueError("the timeline's end must be after its start")
    span = (end - start).total_seconds()

    def x_at(moment: datetime) -> float:
        seconds = (min(max(moment, start), end) - start).total_seconds()
        return LABEL_WIDTH + CHART_WIDTH * seconds / span

    def name_of(user_id: int) -> str:
        return names.get(user_id) or f"User {user_id}"

    people = {s.user_id for row in rows for s in row.shifts if s.end > start and s.start < end}
    colours = colours_for(people)

    row_boxes: list[RowBox] = []
    bars: list[Bar] = []
    gap_boxes: list[GapBox] = []
    y = AXIS_HEIGHT
    gap_count = 0
    for index, row in enumerate(rows):
        if row.final and index:
            y += FINAL_GAP
        row_boxes.append(
            RowBox(
                label=row.label,
                short=_fit(row.label, LABEL_WIDTH - 4) or row.label[:1],
                y=y,
                height=ROW_HEIGHT,
                final=row.final,
            )
        )
        top, height = y + BAR_PAD, ROW_HEIGHT - 2 * BAR_PAD
        for shift in row.shifts:
            if shift.end <= start or shift.start >= end:
                continue
            x0, x1 = x_at(shift.start), x_at(shift.end)
            name = name_of(shift.user_id)
            override = shift.override_id is not None
            what = f"{name} (override)" if override else name
            fill, stroke = colours[shift.user_id]
            bars.append(
                Bar(
                    row=index,
                    x=x0,
                    width=x1 - x0,
                    y=top,
                    height=height,
                    user_id=shift.user_id,
                    name=name,
                    fill=fill,
                    stroke=stroke,
                    override=override,
                    title=f"{row.label}: {what}, {format_span(shift.start, shift.end, zone)}",
                    text=_fit(("⇄ " if override else "") + name, x1 - x0),
                )
            )
        for gap in row.gaps:
            if gap.end <= start or gap.start >= end:
                continue
            gap_count += 1
            x0, x1 = x_at(gap.start), x_at(gap.end)
            gap_boxes.append(
                GapBox(
                    row=index,
                    x=x0,
                    width=x1 - x0,
                    y=top,
                    height=height,
                    title=f"{row.label}: nobody on call, {format_span(gap.start, gap.end, zone)}",
                    text=_fit("Nobody on call", x1 - x0) or _fit("Gap", x1 - x0),
                )
            )
        y += ROW_HEIGHT

    ticks = _ticks(start, end, zone, x_at)
    now_x = x_at(now) if start <= now.astimezone(UTC) <= end else None
    legend = tuple(
        LegendEntry(user_id=u, name=name_of(u), fill=colours[u][0], stroke=colours[u][1])
        for u in sorted(people, key=lambda u: (name_of(u).casefold(), u))
    )
    layer_rows = sum(1 for r in rows if not r.final)
    zone_name = _zone_name(zone)
    last_day = format_day(end - timedelta(microseconds=1), zone)
    aria = (
        f"Timeline of {title} from {format_day(start, zone)} to {last_day} ({zone_name}): "
        f"{layer_rows} layer{'' if layer_rows == 1 else 's'} and the final schedule; "
        + (
            f"{gap_count} stretch{'' if gap_count == 1 else 'es'} with nobody on call. "
            if gap_count
            else "somebody is on call throughout. "
        )
        + "The table of shifts below gives the same information as text."
    )
    return Timeline(
        start=start,
        end=end,
        width=WIDTH,
        height=y + BOTTOM_PAD,
        rows=tuple(row_boxes),
        bars=tuple(bars),
        gaps=tuple(gap_boxes),
        ticks=ticks,
        now_x=now_x,
        legend=legend,
        aria_label=aria,
        zone_name=zone_name,
    )


def _ticks(start: datetime, end: datetime, zone: tzinfo, x_at) -> tuple[Tick, ...]:
    """A tick at every local midnight in [start, end), and one for the (clipped) first day."""
    ticks: list[Tick] = []
    day = start.astimezone(zone).date()
    while True:
        at = _midnight(day, zone)
        if at >= end:
            break
        following = _midnight(day + timedelta(days=1), zone)
        left, right = x_at(max(at, start)), x_at(min(following, end))
        ticks.append(
            Tick(
                x=left,
                at=max(at, start),
                weekday=f"{day:%a}",
                day=f"{day.day} {day:%b}",
                label_x=(left + right) / 2,
            )
        )
        day += timedelta(days=1)
    return tuple(ticks)


# ---- SVG -----------------------------------------------------------------------------------


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _a(value: str) -> str:
    return escape(value, quote=True)


def render_svg(timeline: Timeline, *, id_prefix: str = "timeline") -> str:
    """The timeline as an inline <svg role="img" aria-label=…>; every text is escaped. Each bar
    and gap carries a <title> for hover; the page gives the same facts as a table."""
    t = timeline
    hatch = f"{id_prefix}-gap"
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'aria-label="{_a(t.aria_label)}" viewBox="0 0 {_n(t.width)} {_n(t.height)}" '
        f'width="{_n(t.width)}" height="{_n(t.height)}" focusable="false">',
        "<defs>"
        f'<pattern id="{hatch}" patternUnits="userSpaceOnUse" width="8" height="8" '
        'patternTransform="rotate(45)">'
        '<rect width="8" height="8" fill="#fee2e2"/>'
        '<rect width="3" height="8" fill="#dc2626"/>'
        "</pattern>"
        "</defs>",
        f'<rect class="timeline__chart" x="{_n(LABEL_WIDTH)}" y="{_n(AXIS_HEIGHT)}" '
        f'width="{_n(CHART_WIDTH)}" height="{_n(t.height - AXIS_HEIGHT - BOTTOM_PAD)}"/>',
    ]
    # The past part of the window, shaded.
    if t.now_x is not None and t.now_x > LABEL_WIDTH:
        out.append(
            f'<rect class="timeline__past" x="{_n(LABEL_WIDTH)}" y="{_n(AXIS_HEIGHT)}" '
            f'width="{_n(t.now_x - LABEL_WIDTH)}" '
            f'height="{_n(t.height - AXIS_HEIGHT - BOTTOM_PAD)}"/>'
        )
    # Rows: label and a separator line.
    for row in t.rows:
        cls = "timeline__row timeline__row--final" if row.final else "timeline__row"
        out.append(
            f'<g class="{cls}">'
            f'<rect class="timeline__row-bg" x="{_n(LABEL_WIDTH)}" y="{_n(row.y)}" '
            f'width="{_n(CHART_WIDTH)}" height="{_n(row.height)}"/>'
            f'<text class="timeline__row-label" x="4" y="{_n(row.y + row.height / 2 + 4)}">'
            f"<title>{_a(row.label)}</title>{_a(row.short)}</text>"
            "</g>"
        )
    # Day ticks and labels.
    bottom = t.height - BOTTOM_PAD
    out.append('<g class="timeline__axis">')
    for tick in t.ticks:
        out.append(
            f'<line class="timeline__tick" x1="{_n(tick.x)}" x2="{_n(tick.x)}" y1="2" '
            f'y2="{_n(bottom)}"/>'
            f'<text class="timeline__day" x="{_n(tick.label_x)}" y="14" text-anchor="middle">'
            f"{_a(tick.weekday)}</text>"
            f'<text class="timeline__date" x="{_n(tick.label_x)}" y="29" text-anchor="middle">'
            f"{_a(tick.day)}</text>"
        )
    out.append("</g>")
    # Shifts.
    for bar in t.bars:
        cls = "timeline__bar timeline__bar--override" if bar.override else "timeline__bar"
        out.append(
            f'<g class="{cls}" data-user="{bar.user_id}">'
            f"<title>{_a(bar.title)}</title>"
            f'<rect x="{_n(bar.x)}" y="{_n(bar.y)}" width="{_n(bar.width)}" '
            f'height="{_n(bar.height)}" rx="3" fill="{bar.fill}" stroke="{bar.stroke}"/>'
        )
        if bar.text:
            out.append(
                f'<text x="{_n(bar.x + 4)}" y="{_n(bar.y + bar.height / 2 + 4)}">'
                f"{_a(bar.text)}</text>"
            )
        out.append("</g>")
    # Gaps.
    for gap in t.gaps:
        out.append(
            '<g class="timeline__gap">'
            f"<title>{_a(gap.title)}</title>"
            f'<rect x="{_n(gap.x)}" y="{_n(gap.y)}" width="{_n(gap.width)}" '
            f'height="{_n(gap.height)}" fill="url(#{hatch})" stroke="#b91c1c"/>'
        )
        if gap.text:
            out.append(
                f'<text class="timeline__gap-label" x="{_n(gap.x + 4)}" '
                f'y="{_n(gap.y + gap.height / 2 + 4)}">{_a(gap.text)}</text>'
            )
        out.append("</g>")
    # Now.
    if t.now_x is not None:
        out.append(
            '<g class="timeline__now">'
            f'<line x1="{_n(t.now_x)}" x2="{_n(t.now_x)}" y1="{_n(AXIS_HEIGHT - 17)}" '
            f'y2="{_n(bottom)}"/>'
            f'<text x="{_n(t.now_x + 3)}" y="{_n(AXIS_HEIGHT - 5)}">Now</text>'
            "</g>"
        )
    out.append("</svg>")
    return "".join(out)
