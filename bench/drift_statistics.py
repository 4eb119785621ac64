"""Drift statistics of a 1M-row month on every monitored column (17 features, the PD, the decision,
the sensitive attribute: 20), against Evidently's DataDriftPreset on the same data
(`--peer` to include it: about 2 minutes here).

`python -m bench.drift_statistics [--rows 1000000] [--peer]`. A first process writes the
training-month reference and the shocked month as Parquet, and the reference profile as
training does; then each side runs in its own process from those files, so its peak memory
is its own and excludes making the data.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.isolated import report, run_child

REFERENCE_MONTH, CURRENT_MONTH = "2023-01", "2024-07"


def _columns():
    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.drift import monitored_columns
    from riskcore.features import feature_specs

    contract = load_contract(contract_path("loan_applications.yaml"))
    specs = feature_specs(contract)
    return (
        contract,
        specs,
        monitored_columns([s.name for s in specs if s.kind == "numeric"], [s.name for s in specs if s.kind == "categorical"], contract.columns("sensitive")),
    )


def prepare(rows: int, folder: Path) -> dict:
    """The two months as monitoring sees them, and the profile training would have logged."""
    import pandas as pd

    from riskcore.drift import build_profile, monitored_frame
    from riskcore.features import build_features, model_matrix
    from riskcore.ingestion import LandedFile, conform
    from riskcore.model import train_scorecard
    from riskcore.scoring import load_policy
    from riskcore.synthetic import Scenario, applications_frame, generate_month

    contract, specs, (numeric, categorical) = _columns()
    sensitive = contract.columns("sensitive")

    def month(label, scenario=Scenario()):
        parts = []
        for i in range(max(1, rows // 100_000)):
            truth = generate_month(42 + i, label, min(rows, 100_000), scenario)
            accepted = conform(LandedFile(label, "", 0, applications_frame(truth)), contract, label)[0]
            features = build_features(accepted, contract, label).merge(accepted[["application_id", *sensitive]], on="application_id")
            parts.append(features.merge(truth[["application_id", "defaulted"]], on="application_id"))
        return pd.concat(parts, ignore_index=True)

    reference, current = month(REFERENCE_MONTH), month(CURRENT_MONTH, Scenario("economic_shock", start="2024-06"))
    train = reference.head(50_000)
    model = train_scorecard(model_matrix(train, specs).assign(defaulted=train["defaulted"].to_numpy()), "defaulted", specs)
    policy = load_policy()
    for name, frame in (("reference", reference), ("current", current)):
        X = model_matrix(frame, specs)
        monitored_frame(X, model.predict_pd(X), policy, frame[sensitive]).to_parquet(folder / f"{name}.parquet", index=False)
    profile = build_profile(pd.read_parquet(folder / "reference.parquet"), numeric, categorical)
    (folder / "profile.json").write_text(profile.to_json())
    return {"columns": len(numeric) + len(categorical)}


def ours(folder: Path) -> dict:
    import pandas as pd

    from riskcore.drift import ReferenceProfile, drift_statistics
    from riskcore.monitoring_policy import load_monitoring_policy

    started = time.perf_counter()
    profile = ReferenceProfile.from_json((folder / "profile.json").read_text())
    current = pd.read_parquet(folder / "current.parquet", columns=[*profile.numeric, *profile.categorical])
    read = time.perf_counter() - started
    stats = drift_statistics(profile, current, load_monitoring_policy())
    return {
        "seconds": time.perf_counter() - started,
        "read_seconds": read,
        "rows": len(current),
        "features": len(stats),
        "drifted": sorted(stats.loc[stats["drifted"], "column"]),
        "psi": {r.column: round(float(r.psi), 4) for r in stats.itertuples() if r.drifted},
    }


def peer(folder: Path) -> dict:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    _, _, (numeric, categorical) = _columns()
    columns = numeric + categorical
    started = time.perf_counter()
    reference, current = (pd.read_parquet(folder / f"{name}.parquet", columns=columns) for name in ("reference", "current"))
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    result = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(current, data_definition=definition), Dataset.from_pandas(reference, data_definition=definition)
    )
    seconds = time.perf_counter() - started
    drifted = []
    for metric in result.dict()["metrics"]:
        name = metric.get("metric_name", "")
        if name.startswith("ValueDrift(") and metric.get("value") is not None:
            column = name.split("column=")[1].split(",")[0].rstrip(")")
            threshold = float(name.split("threshold=")[1].split(")")[0].split(",")[0]) if "threshold=" in name else 0.1
            if metric["value"] >= threshold:
                drifted.append(column)
    return {"seconds": seconds, "features": len(columns), "drifted": sorted(drifted)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peer", action="store_true")
    parser.add_argument("--role", choices=["prepare", "ours", "peer"])
    parser.add_argument("--folder")
    args = parser.parse_args(argv)
    if args.role == "prepare":
        return report(prepare(args.rows, Path(args.folder)))
    if args.role:
        return report((ours if args.role == "ours" else peer)(Path(args.folder)))

    with tempfile.TemporaryDirectory() as folder:

        def child(role):
            return run_child("bench.drift_statistics", "--role", role, "--rows", str(args.rows), "--folder", folder)

        child("prepare")
        mine = child("ours")
        print(
            f"drift statistics, {mine['rows']:,} rows x {mine['features']} monitored columns (economic shock {CURRENT_MONTH} vs training month {REFERENCE_MONTH}), from Parquet"
        )
        print(
            f"  ours (profile-based PSI vs noise):    {mine['seconds']:6.2f} s   peak {mine['peak_mb']:6.0f} MB   (reading Parquet {mine['read_seconds']:.2f} s of it)"
        )
        drifted = ", ".join(f"{c} ({mine['psi'][c]})" for c in mine["drifted"])
        print(f"  drifted (PSI): {drifted}")
        if args.peer:
            theirs = child("peer")
            print(
                f"  Evidently DataDriftPreset:           {theirs['seconds']:6.2f} s   peak {theirs['peak_mb']:6.0f} MB   (reading both Parquet files included)"
            )
            differ = sorted(set(mine["drifted"]) ^ set(theirs["drifted"]))
            print(
                f"  ratio ours/peer: time {mine['seconds'] / theirs['seconds']:.3f}, memory {mine['peak_mb'] / theirs['peak_mb']:.2f}; "
                f"same verdict on {mine['features'] - len(differ)} of {mine['features']} columns" + (f" (differ: {', '.join(differ)})" if differ else "")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
