"""Lineage: the git commit the pipeline runs from, and lineage columns (one value on every row)."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@functools.cache
def code_version() -> str:
    """RISK_CODE_VERSION if set (images built without .git), else the git sha, '+dirty.<digest of the
    edits>' if edited: two different uncommitted edits are two code versions, so retraining after an
    edit registers a new version rather than returning the one the other code made."""
    if os.environ.get("RISK_CODE_VERSION"):
        return os.environ["RISK_CODE_VERSION"]
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        edits = subprocess.run(["git", "diff", "HEAD", "--no-ext-diff", "--binary"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + (f"+dirty.{hashlib.sha256(edits).hexdigest()[:12]}" if edits else "")


def repeated(value: str, rows: int) -> pd.Categorical:
    """`value` on each of `rows` rows, as one category: a month's lineage (its model, run, source
    file) is one value a million times, which as Python strings costs a conversion per row when
    written (stored as text all the same, `resources.storage.parquet_bytes`)."""
    import numpy as np
    import pandas as pd

    return pd.Categorical.from_codes(np.zeros(rows, dtype="int8"), categories=[value])
