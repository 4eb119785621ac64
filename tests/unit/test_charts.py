"""Report charts: inline SVG with deterministic bytes, hostile text inert, values drawn where they belong."""

import math
import xml.etree.ElementTree as ET

import pytest

from riskcore.charts import expected_vs_observed, grouped_bars, horizontal_bars, line_chart

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = ["<script>alert(1)</script>", "\"quoted\" 'single'", "</svg><script>alert(2)</script>", "a & b"]
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]


def _charts(labels):
    """One chart of each kind with `labels` wherever text reaches it (title, axes, categories, series)."""
    n = len(labels)
    return {
        "grouped": grouped_bars(labels[0], labels, [(labels[1], [0.1 * (i + 1) for i in range(n)]), (labels[2], [0.2] * n)], labels[3], labels[0]),
        "calibration": expected_vs_observed(labels[1], labels, [0.01 * (i + 1) for i in range(n)], [0.012 * (i + 1) for i in range(n)], labels[2], labels[3]),
        "bars": horizontal_bars(labels[2], labels, [0.05 * (i + 1) for i in range(n)], [(labels[3], 0.1), (labels[0], 0.25)], labels[1]),
        "line": line_chart(labels[3], labels, [(labels[0], [0.7 + 0.01 * i for i in range(n)])], labels[1], labels[2], band=(labels[1], [0.6] * n, [0.8] * n)),
    }


def _svg(text: str) -> ET.Element:
    root = ET.fromstring(text)  # well-formed XML: no value closed an element or an attribute
    assert root.tag == f"{NS}svg"
    return root


def _all(root, tag):
    return root.findall(f".//{NS}{tag}")


def _texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter() if t.tag in (f"{NS}text", f"{NS}title", f"{NS}desc")]


def test_same_figures_give_the_same_bytes():
    assert _charts(["a", "b", "c", "d"]) == _charts(["a", "b", "c", "d"])
    assert _charts(["a", "b", "c", "d"])["bars"] != _charts(["a", "b", "c", "e"])["bars"]


@pytest.mark.parametrize("kind", ["grouped", "calibration", "bars", "line"])
def test_hostile_labels_are_text_and_nothing_links_or_runs(kind):
    svg = _charts(HOSTILE)[kind]
    root = _svg(svg)
    lowered = svg.lower()
    for needle in ("<script", "href", "xlink", "url(", "javascript:", " id="):
        assert needle not in lowered, needle
    # every element is one the chart draws: none came from a value
    assert {e.tag.removeprefix(NS) for e in root.iter()} <= {"svg", "title", "desc", "text", "line", "rect", "circle", "polyline", "polygon"}
    assert root.find(f"{NS}title").text == HOSTILE[["grouped", "calibration", "bars", "line"].index(kind)]
    shown = " ".join(_texts(root))
    assert all(label in shown for label in HOSTILE)  # escaped, not dropped: the reader sees the label as typed


def test_a_larger_value_gives_a_longer_bar_and_the_threshold_lines_sit_at_their_values():
    root = _svg(horizontal_bars("PSI", ["a", "b", "c"], [0.05, 0.3, 0.12], [("investigate", 0.1), ("shift", 0.25)], "PSI"))
    bars = _all(root, "rect")
    widths = [float(r.get("width")) for r in bars]
    assert widths[1] > widths[2] > widths[0] > 0
    assert widths[1] / widths[0] == pytest.approx(6, rel=0.02)
    # the bar's colour says the highest line it reaches
    assert len({r.get("fill") for r in bars}) == 3
    lines = {float(line.get("x1")) for line in _all(root, "line") if line.get("stroke-dasharray")}
    start = float(bars[0].get("x"))
    assert sorted(x - start for x in lines) == pytest.approx([widths[0] * 2, widths[0] * 5], rel=0.02)
    assert "investigate 0.1" in _texts(root) and "shift 0.25" in _texts(root)


def test_grouped_bars_put_each_series_in_its_category_and_height_follows_share():
    root = _svg(grouped_bars("Score bands", ["low", "high"], [("current", [0.2, 0.8]), ("reference", [0.5, 0.5])], "band", "share"))
    current_low, current_high, reference_low, reference_high = _all(root, "rect")[:4]
    assert float(current_high.get("height")) == pytest.approx(4 * float(current_low.get("height")), rel=0.01)
    assert float(reference_low.get("height")) == pytest.approx(float(reference_high.get("height")))
    assert float(current_low.get("x")) < float(reference_low.get("x")) < float(current_high.get("x")) < float(reference_high.get("x"))


def test_calibration_points_lie_on_the_diagonal_when_observed_equals_expected():
    root = _svg(expected_vs_observed("Calibration", ["1", "2", "3"], [0.02, 0.05, 0.1], [0.02, 0.08, 0.1], "mean PD", "default rate"))
    diagonal = next(line for line in _all(root, "line") if line.get("stroke-dasharray"))
    (x1, y1, x2, y2) = (float(diagonal.get(k)) for k in ("x1", "y1", "x2", "y2"))
    points = [(float(c.get("cx")), float(c.get("cy"))) for c in _all(root, "circle")]
    assert len(points) == 3

    def off_diagonal(x, y):  # above the diagonal (observed > expected) is negative in SVG's downward y
        return y - (y1 + (x - x1) * (y2 - y1) / (x2 - x1))

    assert off_diagonal(*points[0]) == pytest.approx(0, abs=0.2) and off_diagonal(*points[2]) == pytest.approx(0, abs=0.2)
    assert off_diagonal(*points[1]) < -10  # decile 2 defaulted more than its PD said: drawn above the diagonal


def test_line_chart_leaves_a_gap_where_a_month_is_missing_and_shades_the_band():
    realised = [0.71, 0.72, None, 0.7, math.nan]
    root = _svg(line_chart("AUC", MONTHS, [("estimated", [0.7] * 5), ("realised", realised)], "month", "AUC", band=("bounds", [0.65] * 5, [0.75] * 5)))
    polylines = [p.get("points").split() for p in _all(root, "polyline")]
    assert [len(p) for p in polylines] == [5, 2]  # the estimate unbroken; realised: 2024-01..02, then 2024-04 alone is a point
    assert len(_all(root, "circle")) == 5 + 3
    (band,) = _all(root, "polygon")
    assert len(band.get("points").split()) == 10
    assert "2024-03: estimated 0.7, realised n/a, bounds 0.65 to 0.75" in root.find(f"{NS}desc").text


@pytest.mark.parametrize(
    "svg",
    [
        grouped_bars("t", [], [], "x", "y"),
        grouped_bars("t", ["a"], [("s", [None])], "x", "y"),
        expected_vs_observed("t", ["1"], [math.nan], [0.1], "x", "y"),
        horizontal_bars("t", [], [], [("shift", 0.25)], "x"),
        line_chart("t", MONTHS, [("s", [None] * 5)], "x", "y"),
    ],
)
def test_empty_or_missing_input_says_no_data(svg):
    root = _svg(svg)
    assert "no data" in _texts(root) and not _all(root, "rect") and not _all(root, "circle")


def test_one_point_and_one_value_are_drawn():
    one = _svg(line_chart("AUC", ["2024-01"], [("realised", [0.7])], "month", "AUC"))
    assert len(_all(one, "circle")) == 1 and not _all(one, "polyline")
    flat = _svg(horizontal_bars("PSI", ["a", "b"], [0.0, math.nan], [], "PSI"))
    assert len(_all(flat, "rect")) == 1 and "n/a" in _texts(flat)
    point = _svg(expected_vs_observed("c", ["1"], [0.1], [0.1], "x", "y"))
    assert len(_all(point, "circle")) == 1
