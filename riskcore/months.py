"""Application months: the unit of partitioning, label maturity and reporting."""

from __future__ import annotations

import datetime as dt


def parse_month(value: str | dt.date) -> dt.date:
    """Accept '2023-01', '2023-01-01' (a Dagster partition key) or a date; return the 1st."""
    if isinstance(value, dt.date):
        return value.replace(day=1)
    text = str(value).strip()
    try:
        year, month = int(text[0:4]), int(text[5:7])
        if len(text) not in (7, 10) or text[4] != "-":
            raise ValueError
        return dt.date(year, month, 1)
    except (ValueError, IndexError):
        raise ValueError(f"not a month: {value!r} (expected YYYY-MM or YYYY-MM-DD)") from None


def month_label(value: str | dt.date) -> str:
    """'2023-01': the label used in paths, ids and reports."""
    return parse_month(value).strftime("%Y-%m")


def add_months(value: str | dt.date, n: int) -> dt.date:
    m = parse_month(value)
    index = m.year * 12 + (m.month - 1) + n
    return dt.date(index // 12, index % 12 + 1, 1)


def months_between(start: str | dt.date, end: str | dt.date) -> list[str]:
    """Inclusive list of month labels from start to end."""
    first, last = parse_month(start), parse_month(end)
    if last < first:
        raise ValueError(f"month range is empty: {month_label(first)} > {month_label(last)}")
    out, current = [], first
    while current <= last:
        out.append(month_label(current))
        current = add_months(current, 1)
    return out


def month_index(value: str | dt.date) -> int:
    m = parse_month(value)
    return m.year * 12 + m.month - 1


def sample_windows(frame, sample_column: str, month_column: str) -> dict[str, str]:
    """`{"train": "2023-01..2023-09", "out_of_time": ...}`: the month span of each sample of a training set."""
    spans = frame.groupby(sample_column)[month_column].agg(["min", "max"])
    return {str(sample): f"{row['min']}..{row['max']}" for sample, row in spans.iterrows()}


def in_window(month: str | dt.date, window: str) -> bool:
    """Whether a month lies inside a `first..last` span (both ends included)."""
    first, last = window.split("..")
    return month_index(first) <= month_index(month) <= month_index(last)


def labels_matured(application_month: str | dt.date, as_of: str | dt.date, window_months: int) -> bool:
    """A default flag is known once the whole performance window has elapsed."""
    return month_index(application_month) + window_months <= month_index(as_of)
