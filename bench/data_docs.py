"""GX Data Docs: size on disk by validation, and what building them adds to a month's validation.

`python -m bench.data_docs --months 24 --rows 20000`: each month validates the three contracts the
pipeline validates (applications at ingestion, dataset rules only; features; scores) through
ContractValidator, once without Data Docs (the floor) and once into one docs folder, and prints
the folder's size after each month. The frames are the pipeline's (synthetic month, ingestion,
features, a scorecard trained on the first month); a site built by another version of
checks/validation.py is measured by running this file with that checkout first on the path.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def folder_mb(path: str) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def month_frames(month: str, rows: int, contracts: dict, model=None):
    """(contract, frame, row_rules) for each validation of `month`, and the scorecard scoring it."""
    from resources.storage import parquet_bytes
    from riskcore.features import build_features, feature_set_version, feature_specs, model_matrix
    from riskcore.ingestion import ingest
    from riskcore.model import train_scorecard
    from riskcore.rollout import decide_by_cell
    from riskcore.scoring import load_policy, score
    from riskcore.synthetic import applications_frame, generate_month

    applications, features_contract, scores_contract = contracts["applications"], contracts["features"], contracts["scores"]
    generated = generate_month(42, month, rows)
    ingested = ingest(f"{month}.parquet", parquet_bytes(applications_frame(generated)), applications, month, "bench-key")
    features = build_features(ingested.accepted, applications, month)
    specs = feature_specs(applications)
    if model is None:
        train = features.head(20_000)  # the scorecard only makes realistic scores: a small sample trains it
        model = train_scorecard(model_matrix(train, specs).assign(defaulted=generated["defaulted"].to_numpy()[: len(train)]), "defaulted", specs)
    lineage = {
        "model_name": "retail_pd",
        "model_version": "1",
        "model_run_id": "0" * 32,
        "feature_set_version": feature_set_version(applications),
        "code_version": "bench",
        "dagster_run_id": "bench",
    }
    scored = score(features, "application_id", model, specs, load_policy(), lineage)
    scores = decide_by_cell(scored, None, ["champion"] * len(scored), 0, 0.0)
    origin = ingested.accepted[["application_id", "source_file_sha256", "contract_version"]]
    scores = scores.merge(origin, on="application_id", how="left", validate="one_to_one")
    return [(applications, ingested.checked, False), (features_contract, features, True), (scores_contract, scores, True)], model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--docs", help="the docs folder (default: a temporary one); an existing site is added to")
    args = parser.parse_args(argv)

    import great_expectations  # noqa: F401  loaded before the clock, as in a code server

    import checks.validation
    from checks import contract_path
    from checks.validation import ContractValidator
    from riskcore.contract import load_contract
    from riskcore.months import months_between

    source = load_contract(contract_path("loan_applications.yaml"))
    contracts = {
        "applications": source,
        "features": load_contract(contract_path("application_features.yaml"), source=source),
        "scores": load_contract(contract_path("risk_scores.yaml"), source=source),
    }
    months = months_between("2023-01", "2030-12")[: args.months]
    with tempfile.TemporaryDirectory() as tmp:
        docs = args.docs or os.path.join(tmp, "gx_data_docs")
        plain, with_docs = ContractValidator(), ContractValidator(data_docs_dir=docs)
        print(f"Data Docs by {checks.validation.__file__}, {args.rows:,} rows a month, into {docs}")
        print(f"{'month':8} {'validations':>11} {'no docs s':>10} {'with docs s':>12} {'docs share':>11} {'site MB':>8} {'MB/validation':>14} {'failed rules'}")
        model, count, totals = None, 0, [0.0, 0.0]
        for month in months:
            validations, model = month_frames(month, args.rows, contracts, model)
            seconds = [0.0, 0.0]
            failed = []
            for contract, frame, row_rules in validations:
                batch = f"retail_pd-{contract.id}-{month}"
                for i, validator in enumerate((plain, with_docs)):
                    started = time.perf_counter()
                    report = validator.validate(frame, contract, batch=batch, row_rules=row_rules)
                    seconds[i] += time.perf_counter() - started
                failed += report.failed
                count += 1
            totals = [t + s for t, s in zip(totals, seconds)]
            size = folder_mb(docs)
            share = (seconds[1] - seconds[0]) / seconds[1]
            print(f"{month:8} {count:11d} {seconds[0]:10.2f} {seconds[1]:12.2f} {share:11.0%} {size:8.1f} {size / count:14.2f} {', '.join(failed) or '-'}")
        print(
            f"total: {count} validations, {totals[0]:.1f} s without docs, {totals[1]:.1f} s with ({(totals[1] - totals[0]) / totals[1]:.0%} docs); site {folder_mb(docs):.1f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
