"""Training at bank volume: wall time, peak memory and out-of-time AUC at 2, 6 and 12M rows.

`python -m bench.training_scale --cache /tmp/training-scale --rows 2000000 6000000 12000000`.
Synthetic months (12 of them, `rows / 12` applications each; the last 3 out of time) are generated
once into the cache, month by month. Each measured side runs in its own process (bench/isolated.py),
so its peak memory (VmHWM) is its own:
- train: read the training set, `fit_and_evaluate` as the risk_model asset calls it (sampled above the
  training policy's threshold), then predict out of time;
- full (2M rows only): the same with sampling off, the reference the sampled fit's AUC is held to;
- floor: read the training set, design the rows the fit uses and fit one logistic regression on them.
"""

import argparse
import sys
import time
from pathlib import Path

MONTHS = 12
FIRST = "2023-01"
SEED = 42


def _months():
    from riskcore.months import add_months

    return [add_months(FIRST, i) for i in range(MONTHS)]


def training_set_path(cache: Path, rows: int) -> Path:
    return cache / f"training-{rows}.parquet"


def generate(cache: Path, rows: int) -> float:
    """The training set of `rows` rows in the cache (built month by month; kept for later runs). Returns seconds spent."""
    path = training_set_path(cache, rows)
    if path.exists():
        return 0.0
    import pandas as pd

    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.features import build_features
    from riskcore.ingestion import derive
    from riskcore.synthetic import applications_frame, generate_month
    from riskcore.training import assemble_training_set

    started = time.perf_counter()
    contract = load_contract(contract_path("loan_applications.yaml"))
    per_month = rows // MONTHS
    for month in _months():
        part = cache / f"month-{per_month}-{month}.parquet"
        if not part.exists():
            frame = generate_month(SEED, month, per_month)
            features = build_features(derive(applications_frame(frame), contract.derived), contract, month)
            features.assign(defaulted=frame["defaulted"].to_numpy(), true_pd=frame["true_pd"].to_numpy()).to_parquet(part, index=False)
            del frame, features
    parts = {m: pd.read_parquet(cache / f"month-{per_month}-{m}.parquet") for m in _months()}
    features = {m: p.drop(columns=["defaulted", "true_pd"]) for m, p in parts.items()}
    outcomes = {m: p[["application_id", "defaulted"]] for m, p in parts.items()}
    del parts
    assemble_training_set(features, outcomes, "application_id", "defaulted", out_of_time_months=3).to_parquet(path, index=False)
    return time.perf_counter() - started


def _cpu() -> float:
    """This process's CPU seconds: on a shared machine, wall time is inflated by other work, CPU time much less."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(argv) -> int:
    """One measured side, in this process: prints its figures (bench/isolated.py)."""
    import pandas as pd

    from bench.isolated import report
    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.features import feature_specs
    from riskcore.training import SAMPLE_COLUMN, assemble_training_set, fit_and_evaluate, training_sample
    from riskcore.training_policy import TrainingPolicy, load_training_policy

    side, cache, rows = argv[0], Path(argv[1]), int(argv[2])
    max_rows = int(argv[3]) if len(argv) > 3 else load_training_policy().max_rows
    specs = feature_specs(load_contract(contract_path("loan_applications.yaml")))
    started = time.perf_counter()
    if side == "assemble":  # the training_set asset: the window's months joined to their outcomes, written
        parts = {m: pd.read_parquet(cache / f"month-{rows // MONTHS}-{m}.parquet") for m in _months()}
        features = {m: p.drop(columns=["defaulted", "true_pd"]) for m, p in parts.items()}
        outcomes = {m: p[["application_id", "defaulted"]] for m, p in parts.items()}
        del parts
        assemble_training_set(features, outcomes, "application_id", "defaulted", out_of_time_months=3).to_parquet(cache / "assembled.parquet", index=False)
        return report({"seconds": time.perf_counter() - started, "cpu": _cpu()})
    frame = pd.read_parquet(training_set_path(cache, rows))
    read = time.perf_counter() - started
    if side == "floor":  # the core: the sampled rows' design and one weighted logistic regression on it
        from riskcore.features import model_matrix
        from riskcore.model import PDScorecard

        train = frame[frame[SAMPLE_COLUMN] == "train"]
        positions, weights, _ = training_sample(train, "application_id", "defaulted", max_rows, 1)
        model = PDScorecard(tuple(s.name for s in specs if s.kind == "numeric"), tuple(s.name for s in specs if s.kind == "categorical"))
        model._pipeline().fit(model_matrix(train.iloc[positions], specs), train["defaulted"].to_numpy()[positions], logit__sample_weight=weights)
        return report({"seconds": time.perf_counter() - started, "cpu": _cpu(), "read_seconds": read})
    policy = TrainingPolicy("bench", "0", max_rows, load_training_policy().seed) if side == "train" else None
    _, metrics, _, sample = fit_and_evaluate(frame, specs, "defaulted", "application_id", policy)
    return report(
        {
            "seconds": time.perf_counter() - started,
            "cpu": _cpu(),
            "read_seconds": read,
            "oot_auc": metrics["oot_auc"],
            "fit_rows": sample.get("sample_rows", sample["sample_train_rows"]),
        }
    )


def main(argv=None) -> int:
    from bench.isolated import run_child
    from riskcore.training_policy import load_training_policy

    parser = argparse.ArgumentParser()
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000, 6_000_000, 12_000_000])
    parser.add_argument(
        "--max-rows", type=int, default=load_training_policy().max_rows, help="the training policy's sample size (default: the shipped policy's)"
    )
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--sides", nargs="+", default=["assemble", "floor", "train", "full"], help="full runs at 2,000,000 rows or fewer only")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    args.cache.mkdir(parents=True, exist_ok=True)
    results = []
    for rows in args.rows:
        print(f"generated {rows:,} rows in {generate(args.cache, rows):.0f} s", flush=True)
        if args.generate_only:
            continue
        figures = {}
        for side in [s for s in args.sides if s != "full" or rows <= 2_000_000]:
            figures[side] = run_child(
                "bench.training_scale", "--cache", str(args.cache), "--rows", "0", "--child", side, str(args.cache), str(rows), str(args.max_rows)
            )
            print(rows, side, figures[side], flush=True)
        results.append((rows, figures))
    if results:
        print(table(results, args.max_rows))
    return 0


def table(results, max_rows: int) -> str:
    """Wall and CPU seconds (wall is inflated on a shared machine), peak GB; train / floor by CPU time."""
    lines = [
        "| rows (12 months, 3 out of time) | assemble: wall / CPU s, peak GB | fit rows | train: wall / CPU s, peak GB | floor: wall / CPU s, peak GB "
        "| train / floor (CPU) | OOT AUC | all-rows fit: OOT AUC (difference), wall / CPU s, peak GB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(side):
        return f"{side['seconds']:.0f} / {side['cpu']:.0f}, {side['peak_mb'] / 1024:.1f}" if side else "-"

    for rows, f in results:
        train, floor, full = f.get("train"), f.get("floor"), f.get("full")
        versus = f"{full['oot_auc']:.4f} ({train['oot_auc'] - full['oot_auc']:+.4f}), {cell(full)}" if full and train else cell(full)
        ratio = f"{train['cpu'] / floor['cpu']:.1f}" if train and floor else "-"
        auc, fit_rows = (f"{train['oot_auc']:.4f}", f"{train['fit_rows']:,}") if train else ("-", "-")
        lines.append(f"| {rows:,} | {cell(f.get('assemble'))} | {fit_rows} | {cell(train)} | {cell(floor)} | {ratio} | {auc} | {versus} |")
    return "\n".join(lines) + f"\n\nsample size (training policy max_rows): {max_rows:,}"


if __name__ == "__main__":
    sys.exit(main())
