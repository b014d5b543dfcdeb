"""Charts of the reports page, drawn on the server as inline SVG: pure functions, no database.

Why on the server: the portal loads nothing from outside and runs no chart library, and a
picture made of plain SVG works without JavaScript, prints, and scales to a phone (`viewBox`
with a width of 100 %). Every chart is an image with a title and a description (`role="img"`,
`<title>`, `<desc>`); the page follows each one with the same numbers as a table.

Colour is never the only cue: each series of a line chart also has its own marker shape (and
the legend repeats shape and name), every bar carries its value as text. The palette's colours
have a contrast of 4.5:1 or more against the white background.

Layout is in SVG user units; x grows to the right, y downwards. `line_chart` puts one point per
category (a week) at the middle of its slot; `bar_chart` draws one horizontal bar per row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "BarRow",
    "MARKERS",
    "PALETTE",
    "Series",
    "bar_chart",
    "duration_unit",
    "line_chart",
    "marker_svg",
    "nice_ticks",
]

WIDTH = 460.0
FONT_SIZE = 13
CHAR_WIDTH = 7.5  # a generous average width of a 13-unit system-ui character: what fits

# Dark enough for 4.5:1 against white, and told apart by hue and by marker.
PALETTE: tuple[str, ...] = (
    "#1d4ed8",  # blue
    "#b45309",  # amber
    "#047857",  # green
    "#7c3aed",  # violet
    "#be185d",  # pink
    "#0e7490",  # cyan
    "#4d7c0f",  # olive
    "#475569",  # slate
)
MARKERS: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "cross", "bar")


@dataclass(frozen=True)
class Series:
    """One line: a name and a value per category (None: nothing to show for that category)."""

    label: str
    values: Sequence[float | None]


@dataclass(frozen=True)
class BarRow:
    label: str
    value: float


def _num(value: float) -> str:
    """A coordinate with at most two decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `maximum` (about `count` of them): 0, 2, 4, 6…,
    0, 5, 10…, 0, 10, 20…; [0, 1] when there is nothing above zero."""
    if not maximum or maximum <= 0 or not math.isfinite(maximum):
        return [0.0, 1.0]
    raw = maximum / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    top = math.ceil(maximum / step - 1e-9) * step
    ticks = []
    value = 0.0
    while value <= top + step / 2:
        ticks.append(round(value, 10))
        value += step
    return ticks


# (seconds per unit, unit name for the axis, short unit)
_DURATION_UNITS = (
    (86400.0, "days", "d"),
    (3600.0, "hours", "h"),
    (60.0, "minutes", "min"),
    (1.0, "seconds", "s"),
)


def duration_unit(max_seconds: float) -> tuple[float, str, str]:
    """The unit in which durations up to `max_seconds` read best on an axis: seconds below two
    minutes, minutes below two hours, hours below two days, days beyond."""
    for seconds, name, short in _DURATION_UNITS:
        if max_seconds >= 2 * seconds:
            return seconds, name, short
    return 1.0, "seconds", "s"


def _format_tick(value: float) -> str:
    return f"{value:g}"


def marker_svg(shape: str, x: float, y: float, colour: str, size: float = 5.0) -> str:
    """The marker `shape` centred on (x, y): filled shapes, or a thick cross or bar."""
    s = size
    if shape == "circle":
        return f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(s)}" fill="{colour}"/>'
    if shape == "square":
        return (
            f'<rect x="{_num(x - s)}" y="{_num(y - s)}" width="{_num(2 * s)}" '
            f'height="{_num(2 * s)}" fill="{colour}"/>'
        )
    if shape == "triangle":
        points = f"{_num(x)},{_num(y - s * 1.2)} {_num(x - s * 1.2)},{_num(y + s)} " + (
            f"{_num(x + s * 1.2)},{_num(y + s)}"
        )
        return f'<polygon points="{points}" fill="{colour}"/>'
    if shape == "diamond":
        d = s * 1.3
        points = f"{_num(x)},{_num(y - d)} {_num(x + d)},{_num(y)} {_num(x)},{_num(y + d)} " + (
            f"{_num(x - d)},{_num(y)}"
        )
        return f'<polygon points="{points}" fill="{colour}"/>'
    if shape == "cross":
        return (
            f'<path d="M{_num(x - s)} {_num(y - s)}L{_num(x + s)} {_num(y + s)}'
            f'M{_num(x - s)} {_num(y + s)}L{_num(x + s)} {_num(y - s)}" '
            f'stroke="{colour}" stroke-width="3" fill="none"/>'
        )
    return (
        f'<rect x="{_num(x - s * 1.3)}" y="{_num(y - s * 0.6)}" width="{_num(2.6 * s)}" '
        f'height="{_num(1.2 * s)}" fill="{colour}"/>'
    )


def style_of(index: int) -> tuple[str, str]:
    """(colour, marker shape) of the `index`-th series; shapes and colours cycle at different
    lengths, so two series share both only beyond 24 series."""
    return PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)]


def _open_svg(
    *, chart_id: str, width: float, height: float, title: str, desc: str, css: str
) -> list[str]:
    """The <svg> element with its title and description tied to it by id, so that screen
    readers announce both (`aria-labelledby`, `aria-describedby`)."""
    cid = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{cid}" class="chart {css}" role="img" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" font-size="{FONT_SIZE}" '
        f'aria-labelledby="{cid}-t" aria-describedby="{cid}-d">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<desc id="{cid}-d">{escape(desc)}</desc>',
    ]


def _finish(parts: list[str]) -> str:
    parts.append("</svg>")
    return "".join(parts)


def _fit(text: str, room: float) -> str:
    """`text` cut with an ellipsis to fit `room` units."""
    chars = max(int(room / CHAR_WIDTH), 1)
    return text if len(text) <= chars else text[: max(chars - 1, 1)] + "…"


def line_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    scale: float = 1.0,
    value_text: Callable[[float], str] = _format_tick,
    height: float = 260.0,
) -> str:
    """A line chart of `series` over `categories` (weeks), one marker per known value; a None
    value breaks the line. Values are divided by `scale` for the axis (seconds → minutes);
    `value_text` writes a raw value for the tooltips. With no category or no value at all, the
    chart says so instead of drawing empty axes."""
    left, right, top, bottom = 58.0, 14.0, 14.0, 46.0
    plot_w = WIDTH - left - right
    plot_h = height - top - bottom
    parts = _open_svg(
        chart_id=chart_id, width=WIDTH, height=height, title=title, desc=desc, css="chart--line"
    )
    known = [v for s in series for v in s.values if v is not None]
    if not categories or not known:
        parts.append(
            f'<text class="chart__empty" x="{_num(WIDTH / 2)}" y="{_num(height / 2)}" '
            f'text-anchor="middle">No data in this period</text>'
        )
        return _finish(parts)

    ticks = nice_ticks(max(known) / scale)
    y_max = ticks[-1]
    step = plot_w / len(categories)

    def x_of(i: int) -> float:
        return left + step * (i + 0.5)

    def y_of(value: float) -> float:
        return top + plot_h - (value / scale) / y_max * plot_h

    # Grid lines and y tick labels.
    parts.append('<g class="chart__grid" aria-hidden="true">')
    for tick in ticks:
        y = top + plot_h - tick / y_max * plot_h
        parts.append(
            f'<line x1="{_num(left)}" x2="{_num(WIDTH - right)}" y1="{_num(y)}" y2="{_num(y)}"/>'
        )
        parts.append(
            f'<text class="chart__tick" x="{_num(left - 6)}" y="{_num(y + 4)}" '
            f'text-anchor="end">{escape(_format_tick(tick))}</text>'
        )
    parts.append("</g>")
    # Axes and their labels (with units).
    parts.append(
        f'<path class="chart__axis" d="M{_num(left)} {_num(top)}V{_num(top + plot_h)}'
        f'H{_num(WIDTH - right)}" fill="none"/>'
    )
    parts.append(
        f'<text class="chart__axis-label" transform="translate(14 {_num(top + plot_h / 2)}) '
        f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    # Week labels: every one that fits without overlapping its neighbours, from the first.
    widest = max(len(c) for c in categories) * CHAR_WIDTH + 8
    every = max(1, math.ceil(widest / step))
    parts.append('<g class="chart__categories">')
    for i, category in enumerate(categories):
        if i % every:
            continue
        parts.append(
            f'<text class="chart__category" x="{_num(x_of(i))}" y="{_num(top + plot_h + 18)}" '
            f'text-anchor="middle">{escape(category)}</text>'
        )
    parts.append("</g>")
    parts.append(
        f'<text class="chart__axis-label" x="{_num(left + plot_w / 2)}" '
        f'y="{_num(height - 6)}" text-anchor="middle">Week (starting Monday)</text>'
    )
    # The series: a line through consecutive known values, a marker on each.
    for index, one in enumerate(series):
        colour, shape = style_of(index)
        parts.append(
            f'<g class="chart__series" data-series="{index}" stroke="{colour}">'
            f"<title>{escape(one.label)}</title>"
        )
        runs: list[list[tuple[float, float]]] = [[]]
        for i, value in enumerate(one.values):
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((x_of(i), y_of(value)))
        for run in runs:
            if len(run) > 1:
                d = "M" + "L".join(f"{_num(x)} {_num(y)}" for x, y in run)
                parts.append(
                    f'<path class="chart__line" d="{d}" fill="none" stroke-width="2.5" '
                    f'stroke-linejoin="round"/>'
                )
        for i, value in enumerate(one.values):
            if value is None:
                continue
            label = f"{one.label}, {categories[i]}: {value_text(value)}"
            parts.append(
                f'<g class="chart__point" data-index="{i}" data-x="{_num(x_of(i))}" '
                f'data-y="{_num(y_of(value))}"><title>{escape(label)}</title>'
                f"{marker_svg(shape, x_of(i), y_of(value), colour)}</g>"
            )
        parts.append("</g>")
    return _finish(parts)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    desc: str,
    rows: Sequence[BarRow],
    x_label: str,
    value_text: Callable[[float], str] = _format_tick,
) -> str:
    """Horizontal bars, one row each, with the label on the left and the value written at the
    end of the bar; a scale along the bottom labelled `x_label`. No rows: says so."""
    label_w, right, top, row_h, bottom = 170.0, 56.0, 8.0, 26.0, 40.0
    plot_w = WIDTH - label_w - right
    height = top + row_h * max(len(rows), 1) + bottom
    parts = _open_svg(
        chart_id=chart_id, width=WIDTH, height=height, title=title, desc=desc, css="chart--bar"
    )
    if not rows:
        parts.append(
            f'<text class="chart__empty" x="{_num(WIDTH / 2)}" y="{_num(top + row_h / 2 + 4)}" '
            f'text-anchor="middle">No data in this period</text>'
        )
        return _finish(parts)
    ticks = nice_ticks(max(row.value for row in rows))
    x_max = ticks[-1]
    plot_bottom = top + row_h * len(rows)
    parts.append('<g class="chart__grid" aria-hidden="true">')
    for tick in ticks:
        x = label_w + tick / x_max * plot_w
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(top)}" y2="{_num(plot_bottom)}"/>'
        )
        parts.append(
            f'<text class="chart__tick" x="{_num(x)}" y="{_num(plot_bottom + 16)}" '
            f'text-anchor="middle">{escape(_format_tick(tick))}</text>'
        )
    parts.append("</g>")
    parts.append(
        f'<text class="chart__axis-label" x="{_num(label_w + plot_w / 2)}" '
        f'y="{_num(height - 6)}" text-anchor="middle">{escape(x_label)}</text>'
    )
    colour = PALETTE[0]
    for i, row in enumerate(rows):
        y = top + row_h * i
        w = row.value / x_max * plot_w
        parts.append(
            f'<g class="chart__bar" data-index="{i}" data-width="{_num(w)}">'
            f"<title>{escape(row.label)}: {escape(value_text(row.value))}</title>"
            f'<text class="chart__bar-label" x="{_num(label_w - 8)}" y="{_num(y + row_h / 2 + 4)}" '
            f'text-anchor="end">{escape(_fit(row.label, label_w - 20))}</text>'
            f'<rect x="{_num(label_w)}" y="{_num(y + 4)}" width="{_num(w)}" '
            f'height="{_num(row_h - 8)}" fill="{colour}"/>'
            f'<text class="chart__bar-value" x="{_num(label_w + w + 6)}" '
            f'y="{_num(y + row_h / 2 + 4)}">{escape(value_text(row.value))}</text>'
            "</g>"
        )
    parts.append(
        f'<path class="chart__axis" d="M{_num(label_w)} {_num(top)}V{_num(plot_bottom)}" '
        f'fill="none"/>'
    )
    return _finish(parts)
