"""The server-drawn SVG charts: pure functions, tested without Django or a database."""

import xml.etree.ElementTree as ET

import pytest

from incidents import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def points(root: ET.Element) -> list[tuple[int, float, float]]:
    """(series, x, y) of every point, from the data attributes the markers carry."""
    found = []
    for group in root.iter(f"{SVG}g"):
        if "chart__series" not in group.get("class", ""):
            continue
        series = int(group.get("data-series"))
        for point in group.iter(f"{SVG}g"):
            if point.get("class") == "chart__point":
                found.append((series, float(point.get("data-x")), float(point.get("data-y"))))
    return found


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def test_nice_ticks():
    assert charts.nice_ticks(9) == [0, 2.5, 5, 7.5, 10]
    assert charts.nice_ticks(40) == [0, 10, 20, 30, 40]
    assert charts.nice_ticks(41) == [0, 20, 40, 60]
    assert charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(0.3)[-1] >= 0.3


@pytest.mark.parametrize(
    ("seconds", "unit"),
    [
        (30, "seconds"),
        (119, "seconds"),
        (120, "minutes"),
        (7199, "minutes"),
        (7200, "hours"),
        (3 * 86400, "days"),
    ],
)
def test_duration_unit(seconds, unit):
    assert charts.duration_unit(seconds)[1] == unit


def test_line_chart_is_an_accessible_svg_with_points_where_the_values_are():
    svg = charts.line_chart(
        chart_id="c1",
        title="MTTA by week",
        desc="Mean time to acknowledge per week",
        categories=["5 May", "12 May", "19 May", "26 May"],
        series=[
            charts.Series("Payments", [60, 120, None, 240]),
            charts.Series("Search <beta>", [None, 30, 30, None]),
        ],
        y_label="MTTA mean (minutes)",
        scale=60,
        value_text=lambda seconds: f"{seconds / 60:g} min",
    )
    root = parse(svg)  # well-formed XML, names escaped
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("viewBox") == "0 0 460 260"
    assert root.get("width") == "100%"
    assert root.get("aria-labelledby") == "c1-t"
    assert root.find(f"{SVG}title").text == "MTTA by week"
    assert root.find(f"{SVG}desc").text == "Mean time to acknowledge per week"
    assert "MTTA mean (minutes)" in texts(root)
    assert {"5 May", "12 May", "19 May", "26 May"} <= set(texts(root))
    assert "Search <beta>" in svg.replace("&lt;", "<").replace("&gt;", ">")

    found = points(root)
    # One point per known value: 3 for Payments, 2 for Search.
    assert [s for s, _, _ in found] == [0, 0, 0, 1, 1]
    xs = {(s, x) for s, x, _ in found}
    # Four weeks across 460 - 58 - 14 = 388 units from x=58: slots of 97, points at the middles.
    assert xs == {(0, 106.5), (0, 203.5), (0, 397.5), (1, 203.5), (1, 300.5)}
    # y axis 0..4 min (ticks 0, 1, 2, 3, 4) over 200 units from y=214 upwards.
    ys = {(s, x): y for s, x, y in found}
    assert ys[(0, 106.5)] == pytest.approx(214 - 200 * 1 / 4)
    assert ys[(0, 397.5)] == pytest.approx(214 - 200)
    assert ys[(1, 203.5)] == pytest.approx(214 - 200 * 0.5 / 4)
    # The first series' line breaks at its missing week: two paths (1 point alone draws none).
    lines = [p for p in root.iter(f"{SVG}path") if p.get("class") == "chart__line"]
    assert len(lines) == 2
    # Tooltips say the value in words.
    tooltips = [t.text for t in root.iter(f"{SVG}title")]
    assert "Payments, 26 May: 4 min" in tooltips
    assert "Search <beta>, 19 May: 0.5 min" in tooltips


def test_line_chart_markers_differ_per_series():
    svg = charts.line_chart(
        chart_id="c",
        title="t",
        desc="d",
        categories=["a"],
        series=[charts.Series(f"s{i}", [i + 1]) for i in range(3)],
        y_label="y",
    )
    root = parse(svg)
    shapes = []
    for point in root.iter(f"{SVG}g"):
        if point.get("class") == "chart__point":
            shapes.append(point[1].tag)  # after its <title>
    assert shapes == [f"{SVG}circle", f"{SVG}rect", f"{SVG}polygon"]


@pytest.mark.parametrize(
    ("categories", "series"),
    [([], []), (["5 May"], [charts.Series("A", [None])]), (["5 May"], [])],
)
def test_line_chart_without_data_says_so(categories, series):
    root = parse(
        charts.line_chart(
            chart_id="e", title="t", desc="d", categories=categories, series=series, y_label="y"
        )
    )
    assert texts(root) == ["No data in this period"]
    assert points(root) == []


def test_many_weeks_thin_out_the_labels_but_keep_every_point():
    categories = [f"W{i:02d}" for i in range(1, 53)]
    root = parse(
        charts.line_chart(
            chart_id="y",
            title="t",
            desc="d",
            categories=categories,
            series=[charts.Series("A", list(range(52)))],
            y_label="y",
        )
    )
    shown = [t for t in texts(root) if t.startswith("W")]
    assert "W01" in shown and 5 < len(shown) < 52
    assert len(points(root)) == 52


def test_bar_chart_bars_are_proportional_and_labelled():
    root = parse(
        charts.bar_chart(
            chart_id="b",
            title="Incidents per service",
            desc="d",
            rows=[charts.BarRow("Payments / API", 8), charts.BarRow("Search / Indexer", 2)],
            x_label="Incidents",
        )
    )
    assert root.get("role") == "img"
    bars = [g for g in root.iter(f"{SVG}g") if g.get("class") == "chart__bar"]
    widths = [float(g.get("data-width")) for g in bars]
    assert widths[0] == pytest.approx(4 * widths[1])
    assert "Payments / API" in texts(root)
    assert "8" in texts(root) and "2" in texts(root)  # values written, not only drawn
    assert "Incidents" in texts(root)


def test_bar_chart_cuts_long_labels_but_keeps_them_in_the_tooltip():
    name = "A very long team name / an even longer service name"
    root = parse(
        charts.bar_chart(
            chart_id="b", title="t", desc="d", rows=[charts.BarRow(name, 1)], x_label="x"
        )
    )
    label = next(t for t in root.iter(f"{SVG}text") if t.get("class") == "chart__bar-label")
    assert label.text.endswith("…") and len(label.text) < len(name)
    assert any(t.text == f"{name}: 1" for t in root.iter(f"{SVG}title"))


def test_bar_chart_without_rows_says_so():
    root = parse(charts.bar_chart(chart_id="b", title="t", desc="d", rows=[], x_label="x"))
    assert texts(root) == ["No data in this period"]
