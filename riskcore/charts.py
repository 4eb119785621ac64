"""Charts for the regulatory report as inline SVG: no plotting library, no script, no link, no id.

Every chart is a pure function of plain lists, so the same figures give the same bytes
(coordinates with one decimal, values with `_label`), and every text (title, axis, category,
series name) goes through `html_text`. Each chart carries `<title>` and `<desc>` (the figures it
draws, in words) for screen readers, and draws what it can of empty, one-point or missing
(None/NaN) input: a missing value is a gap, never a zero.
"""

from __future__ import annotations

import math

from riskcore.escaping import html_text

WIDTH, HEIGHT = 640, 320
TOP, BOTTOM, LEFT, RIGHT = 44, 64, 64, 16  # plot margins: title and legend above, axis labels below and left
PALETTE = ("#3b6ea8", "#c7a14a", "#7a9a55", "#a8453b")  # series colours, in order
BAND_FILL = "#3b6ea8"
MAX_LABEL_CHARS = 28


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _n(value: float) -> str:
    """A coordinate: one decimal, never `-0.0`."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _label(value) -> str:
    """A value as the chart prints it (four significant digits), `n/a` when missing."""
    if not _finite(value):
        return "n/a"
    text = f"{value:.4g}"
    return "0" if text == "-0" else text


def _short(text: str) -> str:
    text = str(text)
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "\u2026"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round-numbered ticks covering [low, high] (high > low)."""
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return [round(k * step, 12) for k in range(first, last + 1)]


def _domain(values, include_zero: bool = True) -> list[float]:
    """Ticks of an axis that shows every finite value (and zero, for bars)."""
    finite = [float(v) for v in values if _finite(v)] + ([0.0] if include_zero else [])
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high == low:  # one value (zero, with bars): a tenth of it either side, or a unit
        pad = abs(low) / 10 or 1.0
        low, high = (0.0, 1.0) if include_zero else (low - pad, high + pad)
    return _ticks(low, high)


def _scale(ticks: list[float], start: float, end: float):
    low, high = ticks[0], ticks[-1]
    return lambda v: start + (float(v) - low) / (high - low) * (end - start)


def _text(x: float, y: float, text, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" font-size="{size}"{extra}>{html_text(text)}</text>'


def _svg(title: str, desc: str, height: int, body: list[str], width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" style="display:block;margin:.5em 0">'
        f"<title>{html_text(title)}</title><desc>{html_text(desc)}</desc>"
        + _text(width / 2, 18, title, size=13, extra=' font-weight="bold"')
        + "".join(body)
        + "</svg>"
    )


def _no_data(title: str, x_label: str, y_label: str) -> str:
    return _svg(title, f"{title}: no data ({x_label} against {y_label})", 80, [_text(WIDTH / 2, 50, "no data")])


def _y_axis(ticks: list[float], y, left: float, right: float, label: str) -> list[str]:
    """Horizontal grid lines with their values, and the axis label turned upright."""
    out = []
    for t in ticks:
        out.append(f'<line x1="{_n(left)}" y1="{_n(y(t))}" x2="{_n(right)}" y2="{_n(y(t))}" stroke="#ddd"/>')
        out.append(_text(left - 4, y(t) + 4, _label(t), anchor="end", size=10))
    middle = (y(ticks[0]) + y(ticks[-1])) / 2
    out.append(_text(14, middle, label, extra=f' transform="rotate(-90 14 {_n(middle)})"'))
    return out


def _x_ticks(ticks: list[float], x, bottom: float, top: float) -> list[str]:
    out = []
    for t in ticks:
        out.append(f'<line x1="{_n(x(t))}" y1="{_n(top)}" x2="{_n(x(t))}" y2="{_n(bottom)}" stroke="#ddd"/>')
        out.append(_text(x(t), bottom + 14, _label(t), size=10))
    return out


def _legend(names: list[str], kinds: list[str], right: float) -> list[str]:
    """Series names top right, each with its swatch (`bar`, `line` or `band`)."""
    out, x = [], right
    for i, (name, kind) in reversed(list(enumerate(zip(names, kinds)))):
        x -= 7 * len(_short(name)) + 22
        colour = BAND_FILL if kind == "band" else PALETTE[i % len(PALETTE)]
        if kind == "line":
            out.append(f'<line x1="{_n(x)}" y1="34" x2="{_n(x + 12)}" y2="34" stroke="{colour}" stroke-width="2"/>')
        else:
            opacity = ' fill-opacity="0.2"' if kind == "band" else ""
            out.append(f'<rect x="{_n(x)}" y="29" width="12" height="10" fill="{colour}"{opacity}/>')
        out.append(_text(x + 16, 38, _short(name), anchor="start", size=10))
    return out


def _runs(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Consecutive present points: a missing one breaks the line."""
    runs, current = [], []
    for point in points:
        if point is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(point)
    return runs + ([current] if current else [])


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in points)


def _category_axis(labels: list[str], centre, bottom: float) -> list[str]:
    """Category names under the plot, slanted so long ones do not overlap; at most about 12 shown."""
    every = max(1, math.ceil(len(labels) / 12))
    return [
        _text(centre(i), bottom + 12, _short(label), anchor="end", size=10, extra=f' transform="rotate(-30 {_n(centre(i))} {_n(bottom + 12)})"')
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def grouped_bars(title: str, categories: list[str], series: list[tuple[str, list]], x_label: str, y_label: str) -> str:
    """Bars side by side per category, one per series (e.g. current against reference share per score band)."""
    values = [v for _, vs in series for v in vs]
    if not categories or not series or not any(_finite(v) for v in values):
        return _no_data(title, x_label, y_label)
    bottom = HEIGHT - BOTTOM
    ticks = _domain(values)
    y = _scale(ticks, bottom, TOP)
    slot = (WIDTH - LEFT - RIGHT) / len(categories)
    width = slot * 0.8 / len(series)
    body = _y_axis(ticks, y, LEFT, WIDTH - RIGHT, y_label)
    for s, (_, vs) in enumerate(series):
        for i, v in enumerate(vs[: len(categories)]):
            if _finite(v):
                x0 = LEFT + i * slot + slot * 0.1 + s * width
                top, base = sorted((y(v), y(0)))
                body.append(f'<rect x="{_n(x0)}" y="{_n(top)}" width="{_n(width)}" height="{_n(base - top)}" fill="{PALETTE[s % len(PALETTE)]}"/>')
    body += _category_axis(categories, lambda i: LEFT + (i + 0.5) * slot, bottom)
    body.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, x_label))
    body += _legend([name for name, _ in series], ["bar"] * len(series), WIDTH - RIGHT)
    desc = "; ".join(f"{c}: " + ", ".join(f"{name} {_label(vs[i] if i < len(vs) else None)}" for name, vs in series) for i, c in enumerate(categories))
    return _svg(title, desc, HEIGHT, body)


def expected_vs_observed(title: str, labels: list[str], expected: list, observed: list, x_label: str, y_label: str) -> str:
    """Observed against expected per group (calibration by decile): points joined in order, and the
    diagonal where they would lie if the expectation were right. Both axes on one scale."""
    pairs = [(e, o) if _finite(e) and _finite(o) else None for e, o in zip(expected, observed)]
    if not any(pairs):
        return _no_data(title, x_label, y_label)
    bottom, size = HEIGHT - BOTTOM, HEIGHT - BOTTOM - TOP
    ticks = _domain([v for p in pairs if p for v in p])
    x, y = _scale(ticks, LEFT, LEFT + size), _scale(ticks, bottom, TOP)
    body = _y_axis(ticks, y, LEFT, LEFT + size, y_label) + _x_ticks(ticks, x, bottom, TOP)
    body.append(f'<line x1="{_n(x(ticks[0]))}" y1="{_n(y(ticks[0]))}" x2="{_n(x(ticks[-1]))}" y2="{_n(y(ticks[-1]))}" stroke="#888" stroke-dasharray="4 3"/>')
    points = [(x(e), y(o)) if p else None for p, (e, o) in zip(pairs, zip(expected, observed))]
    body += [f'<polyline points="{_path(run)}" fill="none" stroke="{PALETTE[0]}" stroke-width="1.5"/>' for run in _runs(points) if len(run) > 1]
    body += [f'<circle cx="{_n(px)}" cy="{_n(py)}" r="3.5" fill="{PALETTE[0]}"/>' for px, py in (p for p in points if p)]
    body.append(_text(LEFT + size / 2, HEIGHT - 26, x_label))
    body += _legend(["observed"], ["line"], WIDTH - RIGHT)
    body.append(_text(LEFT + size + 12, TOP + 10, "dashed: observed = expected", anchor="start", size=10))
    desc = "; ".join(f"{label}: expected {_label(e)}, observed {_label(o)}" for label, e, o in zip(labels, expected, observed))
    return _svg(title, desc, HEIGHT, body)


def horizontal_bars(title: str, labels: list[str], values: list, thresholds: list[tuple[str, float]], x_label: str) -> str:
    """One bar per label (e.g. PSI per column) with vertical lines at named thresholds; a bar takes
    the colour of the highest threshold it reaches."""
    if not labels or not any(_finite(v) for v in values):
        return _no_data(title, x_label, "")
    marks = sorted((float(v), name) for name, v in thresholds if _finite(v))
    row, left = 18, min(8 + 6.5 * max(len(_short(label)) for label in labels), 200)
    bottom = TOP + 8 + row * len(labels)
    ticks = _domain(list(values) + [v for v, _ in marks])
    x = _scale(ticks, left, WIDTH - RIGHT - 40)
    body = _x_ticks(ticks, x, bottom, TOP)
    colours = ("#7f9fbf", "#d9a441", "#c0392b")
    for i, (label, v) in enumerate(zip(labels, values)):
        middle = TOP + 8 + row * i + row / 2
        body.append(_text(left - 4, middle + 4, _short(label), anchor="end", size=10))
        if _finite(v):
            start, end = sorted((x(0), x(v)))
            reached = sum(v >= m for m, _ in marks)
            body.append(f'<rect x="{_n(start)}" y="{_n(middle - 6)}" width="{_n(end - start)}" height="12" fill="{colours[min(reached, len(colours) - 1)]}"/>')
        body.append(_text(max(x(0), x(v)) + 4 if _finite(v) else x(0) + 4, middle + 4, _label(v), anchor="start", size=10))
    for value, name in marks:
        body.append(f'<line x1="{_n(x(value))}" y1="{_n(TOP)}" x2="{_n(x(value))}" y2="{_n(bottom)}" stroke="#444" stroke-dasharray="4 3"/>')
        body.append(_text(x(value), TOP - 4, f"{name} {_label(value)}", size=10))
    body.append(_text((left + WIDTH - RIGHT) / 2, bottom + 32, x_label))
    desc = "; ".join(f"{label}: {_label(v)}" for label, v in zip(labels, values)) + "".join(f"; {name} line at {_label(v)}" for v, name in marks)
    return _svg(title, desc, bottom + 44, body)


def line_chart(title: str, x_labels: list[str], series: list[tuple[str, list]], x_label: str, y_label: str, band: tuple[str, list, list] | None = None) -> str:
    """Lines over ordered points (e.g. months), a gap where a value is missing, with an optional
    shaded band (name, lower, upper) such as the bounds of an estimate."""
    band_values = [v for vs in band[1:] for v in vs] if band else []
    values = [v for _, vs in series for v in vs] + band_values
    if not x_labels or not any(_finite(v) for v in values):
        return _no_data(title, x_label, y_label)
    bottom = HEIGHT - BOTTOM
    ticks = _domain(values, include_zero=False)
    y = _scale(ticks, bottom, TOP)
    step = (WIDTH - LEFT - RIGHT) / len(x_labels)

    def centre(i: int) -> float:
        return LEFT + (i + 0.5) * step

    body = _y_axis(ticks, y, LEFT, WIDTH - RIGHT, y_label)
    if band:
        _, lower, upper = band
        spans = _runs([(i, (lo, hi)) if _finite(lo) and _finite(hi) else None for i, (lo, hi) in enumerate(zip(lower, upper))])
        for run in spans:
            outline = [(centre(i), y(hi)) for i, (_, hi) in run] + [(centre(i), y(lo)) for i, (lo, _) in reversed(run)]
            body.append(f'<polygon points="{_path(outline)}" fill="{BAND_FILL}" fill-opacity="0.2" stroke="none"/>')
    for s, (_, vs) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        points = [(centre(i), y(v)) if _finite(v) else None for i, v in enumerate(vs[: len(x_labels)])]
        body += [f'<polyline points="{_path(run)}" fill="none" stroke="{colour}" stroke-width="2"/>' for run in _runs(points) if len(run) > 1]
        body += [f'<circle cx="{_n(px)}" cy="{_n(py)}" r="3" fill="{colour}"/>' for px, py in (p for p in points if p)]
    body += _category_axis(x_labels, centre, bottom)
    body.append(_text((LEFT + WIDTH - RIGHT) / 2, HEIGHT - 6, x_label))
    names, kinds = [name for name, _ in series], ["line"] * len(series)
    body += _legend(names + ([band[0]] if band else []), kinds + (["band"] if band else []), WIDTH - RIGHT)
    desc = "; ".join(
        f"{label}: "
        + ", ".join(f"{name} {_label(vs[i] if i < len(vs) else None)}" for name, vs in series)
        + (f", {band[0]} {_label(band[1][i] if i < len(band[1]) else None)} to {_label(band[2][i] if i < len(band[2]) else None)}" if band else "")
        for i, label in enumerate(x_labels)
    )
    return _svg(title, desc, HEIGHT, body)
