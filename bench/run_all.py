"""Benchmarks: each figure beside a floor or a peer measured in the same run.

`make bench` (or `python -m bench.run_all --rows 200000`). Figures go to BENCHMARKS.md by hand.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def _import_seconds(module: str, repeat: int = 5) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [
        float(subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()[-1])
        for _ in range(repeat)
    ]
    return statistics.median(runs)


def bench_code_location() -> tuple[str, float, str, float]:
    return ("load pipelines.definitions", _import_seconds("pipelines.definitions"), "floor: import dagster", _import_seconds("dagster"))


def _month(rows: int):
    from checks import contract_path
    from resources.storage import parquet_bytes
    from riskcore.contract import load_contract
    from riskcore.ingestion import read_landing_bytes
    from riskcore.synthetic import applications_frame, generate_month

    frame = generate_month(42, "2023-01", rows)
    contract = load_contract(contract_path("loan_applications.yaml"))
    data = parquet_bytes(applications_frame(frame))
    return frame, contract, data, read_landing_bytes


def bench_ingestion(rows: int):
    import io

    import pandas as pd

    from riskcore.ingestion import ingest

    frame, contract, data, read = _month(rows)
    ours = _best(lambda: ingest("m.parquet", data, contract, "2023-01", "bench-key"))
    floor = _best(lambda: pd.read_parquet(io.BytesIO(data)))
    return (f"ingest {rows:,} rows (conform + quarantine + tokenise)", ours, "floor: read the Parquet file", floor)


def bench_generation(rows: int):
    from riskcore.synthetic import generate_month

    ours = _best(lambda: generate_month(42, "2023-01", rows), repeat=2)
    return (f"generate {rows:,} synthetic applications", ours, "-", None)


def _trained(rows: int):
    from riskcore.features import build_features, feature_specs, model_matrix
    from riskcore.ingestion import ingest
    from riskcore.model import train_scorecard

    frame, contract, data, read = _month(rows)
    accepted = ingest("m.parquet", data, contract, "2023-01", "bench-key").accepted
    specs = feature_specs(contract)
    features = build_features(accepted, contract, "2023-01")
    X = model_matrix(features, specs)
    model = train_scorecard(X.assign(defaulted=frame["defaulted"].to_numpy()), "defaulted", specs)
    return model, features, specs, X


def bench_scoring(model, features, specs, X):
    from riskcore.scoring import load_policy, score

    policy = load_policy()
    ours = _best(lambda: score(features, "application_id", model, specs, policy, {"model_version": "1"}))
    floor = _best(lambda: model.predict_pd(X))
    return (f"score {len(X):,} rows (PD, points, decision, 4 reasons, lineage)", ours, "floor: predict_proba alone", floor)


def bench_registration(model, X):
    import warnings

    import mlflow
    import mlflow.sklearn

    from resources.registry import ModelRegistry

    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        registry = ModelRegistry(tracking_uri=uri, artifact_location=f"{tmp}/artifacts")
        registry.client().search_experiments()  # migrate the fresh database outside the timing
        sample = X.head(200)

        def ours():
            registry.register(
                model,
                sample,
                params={},
                metrics={},
                tags={},
                dataset=X.head(1000).assign(defaulted=0),
                dataset_digest="bench",
                dataset_source=f"{tmp}/x",
                run_name="bench",
                target="defaulted",
            )

        def peer():
            mlflow.set_tracking_uri(uri)
            with mlflow.start_run():
                mlflow.sklearn.log_model(model, name="model", input_example=sample.head(5), serialization_format="cloudpickle")

        ours_s, peer_s = _best(ours, repeat=2), _best(peer, repeat=2)
    return ("register a model version (log + register + alias)", ours_s, "peer: log_model with defaults (inferred requirements, input example)", peer_s)


def bench_sensors(months: int = 36, portfolio: str = "retail_pd"):
    """Both monitoring sensors of a portfolio as the code location defines them (with their resources),
    on an instance holding `months` of its drift and performance records: a steady tick, the newest
    month's decision already in the ledger (the cursor says so), nothing to launch or roll back."""
    import json
    import warnings

    import dagster as dg

    from pipelines.definitions import defs
    from riskcore.datasets import CHAMPION_MODEL, DRIFT, PERFORMANCE
    from riskcore.months import months_between

    warnings.simplefilter("ignore")
    labels = months_between("2023-01", "2030-12")[:months]
    sensors = [s for s in defs.sensors if s.name in (f"{portfolio}_drift_retraining_sensor", f"{portfolio}_performance_rollback_sensor")]
    assert len(sensors) == 2, [s.name for s in defs.sensors]
    resources = {"portfolios": defs.resources["portfolios"], "alerts": defs.resources["alerts"]}
    with dg.instance_for_test() as instance:
        for i, month in enumerate(labels):
            psi = {f"psi_{n}": 0.01 * (i % 7) for n in range(20)}
            instance.report_runless_asset_event(dg.AssetMaterialization([portfolio, DRIFT], partition=f"{month}-01", metadata={"drift_share": 0.0, **psi}))
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    [portfolio, PERFORMANCE],
                    partition=f"{month}-01",
                    metadata={"model_version": "1", "rows": 20000.0, "auc": 0.76, "compared_auc": 0.75, "ks": 0.4, "brier": 0.1},
                )
            )
        instance.report_runless_asset_event(dg.AssetMaterialization([portfolio, CHAMPION_MODEL], metadata={"champion_version": "1", "model_name": portfolio}))
        cursor = json.dumps({"recorded": labels[-1]})

        def evaluate():
            for sensor in sensors:
                context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
                assert isinstance(sensor(context), dg.SkipReason)

        ours = _best(evaluate, repeat=5)
        floor = _best(lambda: [instance.fetch_materializations(dg.AssetKey([portfolio, a]), limit=240) for a in (DRIFT, PERFORMANCE)], repeat=5)
    return (f"evaluate both monitoring sensors ({months} months of records)", ours, "floor: fetch the records they read", floor)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args(argv)
    rows = [bench_code_location(), bench_generation(args.rows), bench_ingestion(args.rows)]
    model, features, specs, X = _trained(args.rows)
    rows += [bench_scoring(model, features, specs, X), bench_registration(model, X), bench_sensors()]
    print(f"{'what':62} {'seconds':>8}   {'compared with':55} {'seconds':>8} {'ratio':>7}")
    for what, ours, other, other_s in rows:
        ratio = f"{ours / other_s:7.2f}" if other_s else "      -"
        other_txt = f"{other_s:8.3f}" if other_s else "       -"
        print(f"{what:62} {ours:8.3f}   {other:55} {other_txt} {ratio}")
    print(f"\nthroughput at {args.rows:,} rows: ingest {args.rows / rows[2][1]:,.0f} rows/s, score {args.rows / rows[3][1]:,.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
