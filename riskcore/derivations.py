"""The named functions a contract's derived features may use. Light on purpose: contracts are
checked against this list when the code location loads; the functions only call methods of the
columns they are given."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


def years_between(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole years from start to end (an age on a date), as float so missing stays NaN."""
    years = end.dt.year - start.dt.year
    before_birthday = (end.dt.month < start.dt.month) | ((end.dt.month == start.dt.month) & (end.dt.day < start.dt.day))
    return (years - before_birthday.astype("int64")).astype("float64")


DERIVATIONS = {"years_between": years_between}
