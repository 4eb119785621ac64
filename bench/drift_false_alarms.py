"""False alarms and detection of the drift statistic, old against new, on the column shapes of credit data.

`python -m bench.drift_false_alarms [--seeds 10] [--months 24]` (about 6 minutes here). Prints the
tables that go to BENCHMARKS.md; the last one is German credit in the pipeline's round-robin months
(the archive fetched with pip, as `riskcore.german_credit` does). With `--pipeline [--rows 2000]`:
the false-alarm table through the real pipeline (ingestion, training, drift reports, the retraining
sensor), the same columns, minutes a seed.

Each seed draws a reference of 12 months (the training window) and builds the reference profile
as training does, round-tripped through its JSON; every monitored month is a fresh draw, compared
with the profile only. Columns (the shapes credit data has):

- `pareto`: Pareto(1.1) tail (income, balances), `lognormal`: log-normal sigma 1.5,
- `zero_inflated`: 70% zeros and a log-normal (balances of unused lines, arrears),
- `sentinel`: a normal with 5% of 999 (a "not applicable" code),
- `poisson`: Poisson(1), discrete with ties (inquiries, delinquencies),
- `normal`: a normal (age), `category`: six categories from 40% to 1%.

- **old**: the statistic before issue 14 (normed Wasserstein on the 201-point quantile grid, 0% and
  100% points included, drifted from 0.1; Jensen-Shannon distance from 0.1 for categoricals),
  computed from the same profile (it still keeps the quantile grid and the spread);
- **new**: `riskcore.drift.drift_statistics` under the shipped monitoring policy.

A month's drift share is the share of the 7 columns drifted, and the retraining decision is
`riskcore.drift.retraining_decision` with the shipped policy (drifted month from 10%, so here one
drifted column is enough; persistence 2, cooldown 3), evaluated month after month as the sensor
does. Detection: from the first monitored month on, one column changes (its normal part; the
zero-inflated column's log-normal part in log units; the sentinels stay); months until the column
is first flagged and until a launch, over the seeds.
"""

import argparse
import sys
import time

import numpy as np
import pandas as pd

REFERENCE_MONTHS = 12
NUMERIC = ["pareto", "lognormal", "zero_inflated", "sentinel", "poisson", "normal"]
CATEGORICAL = ["category"]
CATEGORIES = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
CATEGORY_SHARES = [0.40, 0.25, 0.20, 0.10, 0.04, 0.01]


def draw(rng: np.random.Generator, rows: int, changed: str | None = None, shift: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    """One month; `changed` (normal, sentinel or zero_inflated) gets `shift` sd and `scale` on its normal part."""

    def normal(name: str, size: int) -> np.ndarray:
        z = rng.normal(0.0, 1.0, size)
        return z * scale + shift if name == changed else z

    frame = pd.DataFrame(
        {
            "pareto": (rng.pareto(1.1, rows) + 1.0) * 20_000.0,
            "lognormal": np.exp(1.5 * rng.normal(0.0, 1.0, rows)) * 1_000.0,
            "zero_inflated": np.where(rng.random(rows) < 0.7, 0.0, np.exp(normal("zero_inflated", rows)) * 500.0),
            "sentinel": np.where(rng.random(rows) < 0.05, 999.0, 50.0 + 10.0 * normal("sentinel", rows)),
            "poisson": rng.poisson(1.0, rows).astype("float64"),
            "normal": 40.0 + 10.0 * normal("normal", rows),
            "category": rng.choice(CATEGORIES, rows, p=CATEGORY_SHARES),
        }
    )
    return frame


def old_drifted(profile, current: pd.DataFrame, threshold: float = 0.1) -> dict[str, bool]:
    """The statistic before issue 14, verbatim: normed Wasserstein on the quantile grid (0% and 100%
    included) and Jensen-Shannon distance, each drifted from 0.1."""
    from riskcore.drift import QUANTILE_GRID, _category_shares

    out = {}
    for name, ref in profile.numeric.items():
        x = pd.to_numeric(current[name], errors="coerce").to_numpy(dtype="float64")
        present = x[~np.isnan(x)]
        distance = np.trapezoid(np.abs(np.quantile(present, QUANTILE_GRID) - np.asarray(ref.quantiles)), QUANTILE_GRID)
        value = distance / ref.std if ref.std > 0 else float(distance > 0)
        out[name] = bool(value >= threshold)
    for name, ref in profile.categorical.items():
        shares = _category_shares(current[name])
        categories = sorted(set(ref.shares) | set(shares))
        p = np.array([ref.shares.get(c, 0.0) for c in categories])
        q = np.array([shares.get(c, 0.0) for c in categories])
        m = (p + q) / 2

        def kl(a, b):
            mask = a > 0
            return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

        out[name] = bool(np.sqrt(max((kl(p, m) + kl(q, m)) / 2, 0.0)) >= threshold)
    return out


def new_drifted(profile, current: pd.DataFrame, policy) -> dict[str, bool]:
    from riskcore.drift import drift_statistics

    stats = drift_statistics(profile, current, policy)
    return dict(zip(stats["column"], stats["drifted"].astype(bool)))


def reference_profile(rng: np.random.Generator, rows: int):
    from riskcore.drift import ReferenceProfile, build_profile

    reference = draw(rng, rows * REFERENCE_MONTHS)
    return ReferenceProfile.from_json(build_profile(reference, NUMERIC, CATEGORICAL).to_json())


def launches(shares: list[float], policy) -> list[int]:
    """Months (1-based) in which the sensor would launch retraining, evaluated month after month."""
    from riskcore.drift import retraining_decision
    from riskcore.months import add_months, month_label

    labels = [month_label(add_months("2025-01", k)) for k in range(len(shares))]
    seen, last, launched = {}, None, []
    for k, (label, share) in enumerate(zip(labels, shares)):
        seen[label] = share
        month, _ = retraining_decision(seen, last, policy)
        if month is not None:
            last = month
            launched.append(k + 1)
    return launched


def stationary(rows: int, seeds: int, months: int, policy) -> dict:
    """Per statistic: flags per column, flagged columns per month, launches."""
    columns = NUMERIC + CATEGORICAL
    figures = {s: {"flags": dict.fromkeys(columns, 0), "per_month": [], "launches": 0, "seeds_launching": 0} for s in ("old", "new")}
    for seed in range(seeds):
        rng = np.random.default_rng([14, rows, seed])
        profile = reference_profile(rng, rows)
        shares = {"old": [], "new": []}
        for _ in range(months):
            current = draw(rng, rows)
            for name, flags in (("old", old_drifted(profile, current)), ("new", new_drifted(profile, current, policy))):
                for column, flagged in flags.items():
                    figures[name]["flags"][column] += flagged
                figures[name]["per_month"].append(sum(flags.values()))
                shares[name].append(sum(flags.values()) / len(flags))
        for name in ("old", "new"):
            launched = launches(shares[name], policy)
            figures[name]["launches"] += len(launched)
            figures[name]["seeds_launching"] += bool(launched)
    return figures


SCENARIOS = [
    ("shift 0.1 sd", lambda m: {"shift": 0.1}),
    ("shift 0.3 sd", lambda m: {"shift": 0.3}),
    ("shift 1 sd", lambda m: {"shift": 1.0}),
    ("scale +10%", lambda m: {"scale": 1.1}),
    ("slow drift 0.05 sd/month", lambda m: {"shift": 0.05 * m}),
]
CHANGED = ["normal", "sentinel", "zero_inflated"]


def detection(rows: int, seeds: int, months: int, policy) -> list[dict]:
    """Months until the changed column is first flagged, and until a launch, per seed and statistic."""
    out = []
    for label, change in SCENARIOS:
        for column in CHANGED:
            found = {s: {"flagged": [], "launched": []} for s in ("old", "new")}
            for seed in range(seeds):
                rng = np.random.default_rng([15, rows, seed])
                profile = reference_profile(rng, rows)
                first = {"old": None, "new": None}
                shares = {"old": [], "new": []}
                for m in range(1, months + 1):
                    current = draw(rng, rows, changed=column, **change(m))
                    for name, flags in (("old", old_drifted(profile, current)), ("new", new_drifted(profile, current, policy))):
                        if flags[column] and first[name] is None:
                            first[name] = m
                        shares[name].append(sum(flags.values()) / len(flags))
                for name in ("old", "new"):
                    found[name]["flagged"].append(first[name])
                    launched = launches(shares[name], policy)
                    found[name]["launched"].append(launched[0] if launched else None)
            out.append({"scenario": label, "column": column, **found})
    return out


def german_scorecard_months(folder) -> tuple:
    """German credit in the pipeline's 20 round-robin months of 50 rows (features, sensitive attributes
    and `defaulted`) and a scorecard trained on the first 14: (feature specs, model, month -> frame)."""
    from pathlib import Path

    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.features import build_features, feature_specs, model_matrix
    from riskcore.german_credit import fetch_archive, read_german_credit, to_landing
    from riskcore.ingestion import LandedFile, conform
    from riskcore.model import train_scorecard

    contract = load_contract(contract_path("german_credit_applications.yaml"))
    specs, sensitive = feature_specs(contract), contract.columns("sensitive")
    months = {}
    for month, (applications, outcomes) in to_landing(read_german_credit(fetch_archive(Path(folder))), "2023-01", 20).items():
        accepted, _ = conform(LandedFile(month, "", 0, applications), contract, month)
        features = build_features(accepted, contract, month).merge(accepted[["application_id", *sensitive]], on="application_id")
        months[month] = features.merge(outcomes[["application_id", "defaulted"]], on="application_id")
    train = pd.concat(list(months.values())[:14], ignore_index=True)
    model = train_scorecard(model_matrix(train, specs).assign(defaulted=train["defaulted"].to_numpy()), "defaulted", specs)
    return specs, model, months


def german_monitored_months(folder) -> tuple:
    """German credit's months as monitoring sees them (features, the PD of the scorecard of
    german_scorecard_months, its decision, the sensitive attributes): (reference profile of the first
    14, feature names, monitored columns, month -> frame). The bench and tests/unit/test_drift.py both use it."""
    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.decision_policy import load_policy
    from riskcore.drift import ReferenceProfile, build_profile, monitored_columns, monitored_frame
    from riskcore.features import model_matrix

    specs, model, months = german_scorecard_months(folder)
    sensitive = load_contract(contract_path("german_credit_applications.yaml")).columns("sensitive")
    train = pd.concat(list(months.values())[:14], ignore_index=True)

    def monitored(frame):
        matrix = model_matrix(frame, specs)
        return monitored_frame(matrix, model.predict_pd(matrix), load_policy(), frame[sensitive].reset_index(drop=True))

    columns = monitored_columns([s.name for s in specs if s.kind == "numeric"], [s.name for s in specs if s.kind == "categorical"], sensitive)
    profile = ReferenceProfile.from_json(build_profile(monitored(train), *columns).to_json())
    return profile, [s.name for s in specs], columns, {m: monitored(f) for m, f in months.items()}


def german(policy) -> dict:
    """German credit's round-robin months against the profile of the first 14: columns flagged per
    month and the sensor's launches, per statistic."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        profile, features, columns, months = german_monitored_months(folder)
    out = {s: {"per_month": [], "shares": []} for s in ("old", "new")}
    for current in months.values():
        for name, flags in (("old", old_drifted(profile, current)), ("new", new_drifted(profile, current, policy))):
            out[name]["per_month"].append(sum(flags.values()))
            out[name]["shares"].append(sum(flags[c] for c in features) / len(features))
    for name in out:
        out[name]["launches"] = launches(out[name]["shares"], policy)
    return {"columns": len(columns[0]) + len(columns[1]), "months": len(months), **out}


def pipeline(rows: int, seeds: int, months: int) -> dict:
    """The false-alarm table through the real pipeline: per seed, a heavy_tails world (the columns
    of `draw`, tests/integration/portfolios) is ingested, trained on 2023-01..2023-03 and monitored
    for `months` months from 2023-04, the retraining sensor ticked after each month. Features
    flagged per column and per month (drift_report's records), and the sensor's launches."""
    import tempfile
    from pathlib import Path

    import dagster as dg

    from riskcore.months import add_months, month_label, months_between
    from tests.integration.worlds import HEAVY_TAILS, World, heavy_tail_files

    monitored = months_between("2023-04", month_label(add_months("2023-04", months - 1)))
    figures = {"flags": dict.fromkeys(NUMERIC + CATEGORICAL, 0), "per_month": [], "launches": 0, "seeds_launching": 0, "seconds": []}
    with tempfile.TemporaryDirectory() as folder:
        mlflow_uri = (f"sqlite:///{folder}/mlflow.db", f"{folder}/mlflow-artifacts")  # one registry, a model per seed
        for seed in range(seeds):
            started = time.perf_counter()
            with dg.instance_for_test() as instance:
                world = World(
                    Path(folder) / f"seed_{seed}",
                    mlflow_uri,
                    instance,
                    f"bench_{rows}_{seed}",
                    rows=rows,
                    base=HEAVY_TAILS,
                    deliver=heavy_tail_files(rows, seed),
                )
                world.train_baseline()
                launched = [m for m, d in world.monitor(monitored).items() if isinstance(d, dg.RunRequest)]
                for month in monitored:
                    drifted = [c for c in world.drift(month)["drifted_features"].split(", ") if c != "none"]
                    for column in drifted:
                        figures["flags"][column] += 1
                    figures["per_month"].append(len(drifted))
            figures["launches"] += len(launched)
            figures["seeds_launching"] += bool(launched)
            figures["seconds"].append(time.perf_counter() - started)
            print(
                f"  seed {seed}: {sum(figures['per_month'][-months:])} feature-months flagged, launches {launched or 'none'} ({figures['seconds'][-1]:.0f} s)",
                flush=True,
            )
    return figures


def _months(values: list, months: int) -> str:
    """Median months until (range), or 'never in N' for seeds that never got there."""
    hit = sorted(v for v in values if v is not None)
    missed = len(values) - len(hit)
    if not hit:
        return f"never ({months} months)"
    text = f"{int(np.median(hit)) if len(hit) % 2 else np.median(hit):g} ({hit[0]}-{hit[-1]})"
    return text + (f", {missed} of {len(values)} never" if missed else "")


def main(argv=None) -> int:
    from riskcore.monitoring_policy import load_monitoring_policy

    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--rows", type=int, nargs="*", default=[2_000, 20_000])
    parser.add_argument("--pipeline", action="store_true", help="the false-alarm table through the real pipeline (about 4 to 8 minutes a seed)")
    args = parser.parse_args(argv)
    policy = load_monitoring_policy()
    started = time.perf_counter()
    if args.pipeline:
        return _print_pipeline(args, started)
    print(f"policy {policy.label}: PSI floor {policy.psi_floor}, false-alarm rate {policy.false_alarm_rate} per column and month")
    print(f"\nFalse alarms: stationary data, {args.seeds} seeds x {args.months} months, reference {REFERENCE_MONTHS} months of the same size")
    columns = NUMERIC + CATEGORICAL
    cells = args.seeds * args.months
    print(f"Months flagged per column (of {cells}), columns flagged per month, months with any flag, and the sensor's launches")
    print("| rows/month | statistic | " + " | ".join(columns) + " | columns flagged per month: mean (max) | months with a flag | launches (seeds launching) |")
    print("|---" * (len(columns) + 6) + "|")
    for rows in args.rows:
        figures = stationary(rows, args.seeds, args.months, policy)
        for name in ("old", "new"):
            f = figures[name]
            per_month = np.array(f["per_month"])
            flags = " | ".join(str(f["flags"][c]) for c in columns)
            print(
                f"| {rows:,} | {name} | {flags} | {per_month.mean():.2f} ({per_month.max()}) | {(per_month > 0).sum()} of {cells} | {f['launches']} ({f['seeds_launching']} of {args.seeds}) |"
            )
    print(f"\nDetection: one column changes from month 1; months until flagged / until a launch, median (range) over {args.seeds} seeds")
    print("| rows/month | change | column | old: flagged | old: launch | new: flagged | new: launch |")
    print("|---|---|---|---|---|---|---|")
    for rows in args.rows:
        for r in detection(rows, args.seeds, args.months, policy):
            old, new = r["old"], r["new"]
            cells_ = [_months(old["flagged"], args.months), _months(old["launched"], args.months)]
            cells_ += [_months(new["flagged"], args.months), _months(new["launched"], args.months)]
            print(f"| {rows:,} | {r['scenario']} | {r['column']} | " + " | ".join(cells_) + " |")
    g = german(policy)
    print(f"\nGerman credit, {g['months']} round-robin months of 50 rows, {g['columns']} monitored columns, profile of the first 14 months")
    print("| statistic | columns flagged per month: mean (min-max) | months with a flag | launches (months) |")
    print("|---|---|---|---|")
    for name in ("old", "new"):
        per_month = np.array(g[name]["per_month"])
        print(
            f"| {name} | {per_month.mean():.1f} ({per_month.min()}-{per_month.max()}) | {(per_month > 0).sum()} of {g['months']} | "
            f"{len(g[name]['launches'])} ({', '.join(map(str, g[name]['launches'])) or '-'}) |"
        )
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


def _print_pipeline(args, started: float) -> int:
    columns = NUMERIC + CATEGORICAL
    cells = args.seeds * args.months
    figures = {rows: pipeline(rows, args.seeds, args.months) for rows in args.rows}
    print(f"\nFalse alarms through the pipeline: {args.seeds} seeds x {args.months} stationary months after a 3-month training window")
    print(
        "| rows/month | "
        + " | ".join(columns)
        + " | features flagged per month: mean (max) | months with a flag | launches (seeds launching) | seconds a seed |"
    )
    print("|---" * (len(columns) + 5) + "|")
    for rows, f in figures.items():
        per_month = np.array(f["per_month"])
        print(
            f"| {rows:,} | " + " | ".join(str(f["flags"][c]) for c in columns) + f" | {per_month.mean():.2f} ({per_month.max()}) | "
            f"{(per_month > 0).sum()} of {cells} | {f['launches']} ({f['seeds_launching']} of {args.seeds}) | {np.median(f['seconds']):.0f} |"
        )
    print(f"\n({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
