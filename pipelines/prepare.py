"""Data preparation, outside the pipeline: put monthly files into a portfolio's landing folder,
as an upstream system would. The pipeline never knows where its files came from.

    python -m pipelines.prepare synthetic [--portfolio retail_pd] [--start 2023-01 --end 2024-12]
    python -m pipelines.prepare german_credit [--portfolio german_credit]

`synthetic` writes the deterministic synthetic source (seed x month; RISK_SEED, RISK_ROWS_PER_MONTH,
RISK_SCENARIO, RISK_SCENARIO_START), applications for every month and outcomes for the months
whose labels matured as of the portfolio's evaluation month. `german_credit` downloads the German
credit archive with pip (never vendored) and spreads it over 20 months of CSV files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass

from resources.storage import atomic_write_bytes, parquet_bytes, resolve_path
from riskcore.months import labels_matured, month_label, months_between

MANIFEST = "synthetic-source.json"


@dataclass(frozen=True)
class SyntheticSettings:
    seed: int = 42
    rows_per_month: int = 20_000
    scenario: str = "none"
    scenario_start: str = "2024-06"

    @classmethod
    def from_environment(cls) -> SyntheticSettings:
        return cls(
            seed=int(os.environ.get("RISK_SEED", "42")),
            rows_per_month=int(os.environ.get("RISK_ROWS_PER_MONTH", "20000")),
            scenario=os.environ.get("RISK_SCENARIO", "none"),
            scenario_start=os.environ.get("RISK_SCENARIO_START", "2024-06"),
        )


def synthetic_settings(landing: str) -> SyntheticSettings | None:
    """The settings a landing folder's synthetic files were made with (None: not synthetic)."""
    manifest = resolve_path(landing, {}) / MANIFEST
    return SyntheticSettings(**json.loads(manifest.read_text())) if manifest.exists() else None


def deliver_synthetic(landing: str, months: list[str], as_of: str, window_months: int, settings: SyntheticSettings) -> int:
    """Write what is missing: applications of `months`, outcomes of those matured as of `as_of`.
    One landing folder holds one synthetic world: mixing two would silently corrupt training."""
    from riskcore.synthetic import Scenario, applications_frame, generate_month, outcomes_frame

    root = resolve_path(landing, {})
    wanted = json.dumps(asdict(settings), sort_keys=True)
    manifest = root / MANIFEST
    if manifest.exists() and manifest.read_text() != wanted:
        raise ValueError(
            f"{root} already holds synthetic files made with {manifest.read_text()}, not {wanted}: use another RISK_DATA_DIR, or `make clean` to start over"
        )
    atomic_write_bytes(manifest, wanted.encode())
    written = 0
    for month in months:
        apps, outcomes = root / "applications" / f"{month}.parquet", root / "outcomes" / f"{month}.parquet"
        due = labels_matured(month, as_of, window_months) and not outcomes.exists()
        if apps.exists() and not due:
            continue
        frame = generate_month(settings.seed, month, settings.rows_per_month, Scenario(settings.scenario, settings.scenario_start))
        if not apps.exists():
            atomic_write_bytes(apps, parquet_bytes(applications_frame(frame)))
            written += 1
        if due:
            atomic_write_bytes(outcomes, parquet_bytes(outcomes_frame(frame, month, window_months)))
            written += 1
    return written


def synthetic_truth(landing: str, month: str):
    """The generator's true PD of a month's applications (for judging models, never read by the pipeline)."""
    from riskcore.synthetic import Scenario, generate_month

    settings = synthetic_settings(landing)
    if settings is None:
        return None
    frame = generate_month(settings.seed, month, settings.rows_per_month, Scenario(settings.scenario, settings.scenario_start))
    return frame[["application_id", "true_pd"]]


def deliver_german_credit(landing: str, archive_dir: str, resample: tuple[int, int, int, int] | None = None) -> int:
    """The German credit data set as monthly CSV files (applications and outcomes), once. With
    `resample` (months, rows a month, seed, performance window in months): its rows bootstrapped
    into that many stationary months instead of its 1,000 rows over 20 months."""
    from riskcore.german_credit import DEFAULT_MONTHS, PERFORMANCE_WINDOW_MONTHS, bootstrap, csv_bytes, fetch_archive, read_german_credit, to_landing

    root = resolve_path(landing, {})
    frame = read_german_credit(fetch_archive(resolve_path(archive_dir, {}).path))
    months, window = DEFAULT_MONTHS, PERFORMANCE_WINDOW_MONTHS
    if resample is not None:
        months, rows, seed, window = resample
        frame = bootstrap(frame, months * rows, seed)
    written = 0
    for label, (applications, outcomes) in to_landing(frame, "2023-01", months, window).items():
        for kind, frame in (("applications", applications), ("outcomes", outcomes)):
            target = root / kind / f"{label}.csv"
            if not target.exists():
                atomic_write_bytes(target, csv_bytes(frame))
                written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", choices=["synthetic", "german_credit"])
    parser.add_argument("--portfolio", help="the portfolio whose landing folder receives the files (default: retail_pd / german_credit)")
    parser.add_argument("--start", default="2023-01")
    parser.add_argument("--end", default="2024-12")
    args = parser.parse_args(argv)
    from pipelines.environment import configured_portfolio, data_dir

    name = args.portfolio or ("retail_pd" if args.source == "synthetic" else "german_credit")
    portfolio = configured_portfolio(name)
    landing = portfolio.landing.path
    if args.source == "synthetic":
        months = months_between(month_label(args.start), month_label(args.end))
        written = deliver_synthetic(
            landing, months, portfolio.calendar.as_of, portfolio.calendar.performance_window_months, SyntheticSettings.from_environment()
        )
    else:
        written = deliver_german_credit(landing, f"{data_dir()}/archives")
    print(f"{args.source}: {written} file(s) written to {landing} for portfolio {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
