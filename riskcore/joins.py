"""Joins of a month's rows by application id, their keys checked as pandas' `validate` checks them."""

from __future__ import annotations

import numpy as np
import pandas as pd

UNIQUE_SIDES = {"one_to_one": ("left", "right"), "one_to_many": ("left",), "many_to_one": ("right",)}


def join(left: pd.DataFrame, right: pd.DataFrame, on: str, validate: str, how: str = "inner", **kwargs) -> pd.DataFrame:
    """`left.merge(right, on=on, how=how, validate=validate)`, the same MergeError when a side that
    must be unique is not. pandas validates through a MultiIndex of the keys: 8 s for a million ids
    in any order, four times the join itself; a key column's own `is_unique` takes a fraction of it."""
    for side in UNIQUE_SIDES[validate]:
        if not (left if side == "left" else right)[on].is_unique:
            raise pd.errors.MergeError(f"Merge keys are not unique in {side} dataset; not a {validate.replace('_', '-')} merge")
    return left.merge(right, on=on, how=how, **kwargs)


def aligned(ids: pd.Series, frame: pd.DataFrame, on: str, complete: bool = False) -> pd.DataFrame:
    """`frame`'s row of each of `ids`, in their order (each key at most once in `frame`). A month's
    applications, features and scores are written in one order: when the keys already line up,
    `frame` is taken as it is instead of joined (hashing a million ids on each side). An id missing
    from `frame` gets a row of missing values, or with `complete` a KeyError (as `.loc` gives)."""
    if len(ids) == len(frame) and pd.Series(np.asarray(ids, dtype=object)).equals(pd.Series(np.asarray(frame[on], dtype=object))):
        return frame.reset_index(drop=True)
    out = join(pd.DataFrame({on: ids.to_numpy()}), frame, on, "many_to_one", how="left", indicator=complete)
    if complete:
        missing = out.pop("_merge").eq("left_only")
        if missing.any():
            raise KeyError(f"{int(missing.sum())} of {len(ids)} ids have no row to align with (first: {out.loc[missing, on].iloc[0]!r})")
    return out


def id_reconciliation(applications, scored) -> dict[str, int]:
    """Whether every application id was scored exactly once (Arrow arrays of the ids): distinct
    applications, scores, duplicate scores, unscored applications, scores without an application.
    Compared in Arrow, not as Python sets of a million strings; the same ids in the same order (scores
    are written in the features' order) are the same set, with no second hash table to build."""
    import pyarrow.compute as pc

    distinct = pc.unique(scored)
    if scored.equals(applications):
        expected, both = distinct, len(distinct)
    else:
        expected = pc.unique(applications)
        both = pc.sum(pc.is_in(distinct, value_set=expected)).as_py() or 0
    return {
        "applications": len(expected),
        "scores": len(scored),
        "duplicate_scores": len(scored) - len(distinct),
        "unscored": len(expected) - both,
        "scores_without_application": len(distinct) - both,
    }
