"""Backfilling 36 months of regulatory reports (scores present): one run for the range against
one run per month, on the same data in the same session.

`python -m bench.report_backfill [--rows 20000] [--folder DIR]`. The first call prepares the
months with `pipelines.run` (every stage but reporting) into DIR, which later calls reuse.
Each backfill is timed as a user runs it: `python -m pipelines.backfill`, process start included.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST, LAST, AS_OF = "2023-01", "2025-12", "2025-12"


def _env(folder: Path, rows: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_")}
    return {**env, "DAGSTER_HOME": str(folder / "dagster_home"), "RISK_DATA_DIR": str(folder / "data"), "RISK_ROWS_PER_MONTH": str(rows), "RISK_AS_OF": AS_OF}


def _timed(args: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--folder", default=str(ROOT / "data" / "bench-reports"))
    args = parser.parse_args(argv)
    folder = Path(args.folder).resolve()
    env = _env(folder, args.rows)
    if not (folder / "prepared").exists():
        (folder / "dagster_home").mkdir(parents=True, exist_ok=True)
        seconds = _timed(["-m", "pipelines.run", "--start", FIRST, "--end", LAST, "--only", "ingestion,training,scoring,monitoring,performance"], env)
        (folder / "prepared").write_text(f"{seconds:.1f}\n")
        print(f"prepared 36 months x {args.rows:,} applications in {seconds:.0f} s ({folder})")
    backfill = ["-m", "pipelines.backfill", "--from", FIRST, "--to", LAST]
    first = _timed(backfill, env)  # builds and publishes every month
    single = _timed(backfill, env)  # rebuilds, compared with the published reports
    per_partition = _timed([*backfill, "--per-partition"], env)
    print(f"regulatory reports, 36 months x {args.rows:,} applications ({FIRST}..{LAST}), wall time of `python -m pipelines.backfill`")
    print(f"  single run, first build and publication:      {first:6.1f} s")
    print(f"  single run, rebuild compared with published:  {single:6.1f} s")
    print(f"  one run per month, same rebuild:              {per_partition:6.1f} s")
    print(f"  ratio single-run / per-partition: {single / per_partition:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
