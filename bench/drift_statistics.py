"""Drift statistics of a 1M-row month (20+ features) from the reference profile, against
Evidently's DataDriftPreset on the same data (`--peer` to include it: about 2 minutes here).

`python -m bench.drift_statistics [--rows 1000000] [--peer]`; each side in its own process.
"""

import argparse
import sys
import time

from bench.isolated import report, run_child

def _frames(rows: int):
    import pandas as pd

    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.features import build_features, feature_specs
    from riskcore.ingestion import LandedFile, conform
    from riskcore.synthetic import Scenario, applications_frame, generate_month

    contract = load_contract(contract_path("loan_applications.yaml"))
    specs = feature_specs(contract)

    def features(month, scenario=Scenario()):
        parts = []
        for i in range(max(1, rows // 100_000)):
            frame = applications_frame(generate_month(42 + i, month, min(rows, 100_000), scenario))
            parts.append(build_features(conform(LandedFile(month, "", 0, frame), contract, month)[0], contract, month))
        return pd.concat(parts, ignore_index=True)

    return specs, features("2023-01"), features("2024-07", Scenario("economic_shock", start="2024-06"))


def ours(rows: int) -> dict:
    from riskcore.drift import build_profile, drift_statistics

    specs, reference, current = _frames(rows)
    numeric = [s.name for s in specs if s.kind == "numeric"]
    categorical = [s.name for s in specs if s.kind == "categorical"]
    profile = build_profile(reference, numeric, categorical)  # once, at training time
    started = time.perf_counter()
    stats = drift_statistics(profile, current)
    return {"seconds": time.perf_counter() - started, "features": len(stats), "drifted": sorted(stats.loc[stats["drifted"], "column"])}


def peer(rows: int) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    specs, reference, current = _frames(rows)
    columns = [s.name for s in specs]
    definition = DataDefinition(numerical_columns=[s.name for s in specs if s.kind == "numeric"], categorical_columns=[s.name for s in specs if s.kind == "categorical"])
    started = time.perf_counter()
    result = Report([DataDriftPreset()]).run(Dataset.from_pandas(current[columns], data_definition=definition),
                                              Dataset.from_pandas(reference[columns], data_definition=definition))
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
    parser.add_argument("--role", choices=["ours", "peer"])
    args = parser.parse_args(argv)
    if args.role:
        return report((ours if args.role == "ours" else peer)(args.rows))

    def child(role):
        return run_child("bench.drift_statistics", "--role", role, "--rows", str(args.rows))

    mine = child("ours")
    print(f"drift statistics, {args.rows:,} rows x {mine['features']} features (economic shock vs training month)")
    print(f"  ours (profile-based PSI + distances): {mine['seconds']:6.2f} s   peak {mine['peak_mb']:6.0f} MB (data generation included)")
    print(f"  drifted: {', '.join(mine['drifted'])}")
    if args.peer:
        theirs = child("peer")
        print(f"  Evidently DataDriftPreset:           {theirs['seconds']:6.2f} s   peak {theirs['peak_mb']:6.0f} MB")
        agree = len(set(mine["drifted"]) ^ set(theirs["drifted"]))
        print(f"  ratio ours/peer time {mine['seconds'] / theirs['seconds']:.3f}; verdicts differ on {agree} of {mine['features']} features: {sorted(set(mine['drifted']) ^ set(theirs['drifted']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
