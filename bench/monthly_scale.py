"""A bank's month (issue 16): one month of N applications (default 1,000,000) through every monthly
stage of the real pipeline, each stage's run in its own process, beside its compute floor measured
in its own process in the same run.

    python -m bench.monthly_scale [--rows 1000000] [--train-rows 50000] [--cache /tmp/monthly-scale]

A stage's time is its Dagster run (its start to its success in the event log; steps and asset
checks listed from their STEP_START/STEP_SUCCESS); its peak is the run process's VmHWM. A floor
reads the stage's input files, runs its core function on them and writes the outputs the stage
wrote (the same frames, read back untimed): what no implementation of the stage can avoid. Scoring's
inputs include the model (found in and loaded from the registry, with the first import of the
libraries that needs) and each application's landing file and contract (every score names them); its
core is every application's PD and reason codes (adverse action), both from the model's per-feature
contributions. Monitoring's inputs include the model too (the stability pack weighs each feature's
points: the model applied once per distinct value of each feature) and the drift reference found
beside the champion in the registry; its floor also makes the Evidently report drift_report must
produce for people (the policy's seeded sample of the month against the training rows kept with the
champion, Evidently's first import included), nothing else of that step. Ingestion's core is
tokenising the month's PII (a keyed hash per distinct value), the one computation ingestion exists
for that no faster reading or writing removes. Performance reads the landing outcomes and the
scores, and the registry's record of the scoring version (the version it replaced, its training
window: MLflow's first import, as scoring's model), computes what it publishes (the labelled join,
`realised_performance`, `calibration_by_decile`) and writes loan_outcomes and model_performance. The
report reads the landing file (its digest, its rows from the footer), the report's columns of the
scores and applications, the back-test cohort and the registry's records of the versions (their
runs, training windows: MLflow's first import), builds the report (`build_report`) and renders and
writes its JSON and HTML; its small inputs (drift, stability pack, ledger trail, AUC history) are
read untimed (milliseconds).

The world (landing files of 4 training months of --train-rows rows and of the measured month, a
trained champion and a challenger, the Dagster instance, the MLflow registry) is cached under
--cache/<rows>: a second run measures again without generating or training again. The scoring
stage is measured twice: as the month's scoring (champion only), and with a staged rollout's
canary cell active (issue 17: the challenger scores every application beside the champion). The
canary stage runs on a copy of the cached world, deleted after it (the copy's registry reads the
models' artifacts in the world): its canary, its canary scores, shadow scores and swap set never
reach the world the other stages measure, in this run or the next (performance would rebuild the
swap set, monitoring would read a canary month). A cache from before this kept its canary: remove it.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.isolated import report, run_child

MONTH = "2023-05"  # the measured month: after the training months, matured as of AS_OF
AS_OF = "2023-07"
NAME = "monthly"  # the portfolio is scenario_monthly (tests.integration.worlds.World)
SEED = 11
# A month's report is published once; rebuilt after the month was scored again, it differs by the new
# scoring run's id and this check fails, by design. The bench times that rebuild all the same.
REBUILT = "check_report_matches_published"
# stage -> (job, assets it materialises or None for the whole job)
STAGES = {
    "ingestion": ("monthly_ingestion_job", None),
    "scoring": ("monthly_scoring_job", ["risk_scores"]),
    "monitoring": ("monitoring_job", None),
    "performance": ("performance_job", None),
    "report": ("regulatory_report_job", None),
    "scoring with canary": ("monthly_scoring_job", ["risk_scores", "challenger_scores", "swap_set"]),
}


def _deliver(rows: int, train_rows: int):
    """A World `deliver`: the training months at train_rows, the measured month at rows, outcomes of all (cached)."""

    def deliver(landing: str, as_of: str) -> None:
        from resources.storage import atomic_write_bytes, parquet_bytes, resolve_path
        from riskcore.synthetic import applications_frame, generate_month, outcomes_frame
        from tests.integration.worlds import TRAINING_MONTHS

        root = resolve_path(landing, {})
        for month in [*TRAINING_MONTHS, MONTH]:
            apps, outcomes = root / "applications" / f"{month}.parquet", root / "outcomes" / f"{month}.parquet"
            if apps.exists() and outcomes.exists():
                continue
            frame = generate_month(SEED, month, rows if month == MONTH else train_rows)
            atomic_write_bytes(outcomes, parquet_bytes(outcomes_frame(frame, month, 1)))
            atomic_write_bytes(apps, parquet_bytes(applications_frame(frame)))

    return deliver


def _world(root: Path, rows: int, train_rows: int, as_of: str = AS_OF):
    import dagster as dg

    from tests.integration.worlds import World

    (root / "dagster").mkdir(exist_ok=True)
    instance = dg.DagsterInstance.local_temp(tempdir=str(root / "dagster"))
    world = World(root, None, instance, NAME, deliver=_deliver(rows, train_rows))
    if as_of != world.as_of:
        world.set_as_of(as_of)
    return world


def prepare(root: Path, rows: int, train_rows: int) -> dict:
    """Landing files, a champion (trained on partly shuffled labels) and a challenger (clean labels,
    its gates passed), as the rollout tests make them; skipped when cached."""
    from resources.registry import CHALLENGER, CHAMPION

    world = _world(root, rows, train_rows, as_of="2023-05")
    started = time.perf_counter()
    if world.registry.by_alias(CHALLENGER) is None:
        world.train_noisy_champion_and_clean_challenger()
    champion, challenger = world.registry.by_alias(CHAMPION), world.registry.by_alias(CHALLENGER)
    if challenger is None or challenger.version == champion.version:
        raise RuntimeError("no challenger beside the champion: the canary stage needs one")
    return {"seconds": time.perf_counter() - started, "champion": champion.version, "challenger": challenger.version}


def canary_world(root: Path) -> Path:
    """A fresh copy of the cached world for the canary stage to start its canary in."""
    copy = root.with_name(f"{root.name}-canary")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    return copy


def start_canary(root: Path, rows: int, train_rows: int) -> dict:
    from resources.registry import CANARY, CHALLENGER
    from tests.integration.worlds import APPROVER
    from tests.signing import rollout_config

    world = _world(root, rows, train_rows)
    if world.registry.by_alias(CANARY) is None:
        challenger = world.registry.by_alias(CHALLENGER)
        world.run("canary_job", run_config=rollout_config("canary", world.name, challenger.version, APPROVER, "bench: the canary cell's cost"))
    return {"canary": world.registry.by_alias(CANARY).version}


def run_stage(root: Path, rows: int, train_rows: int, stage: str) -> dict:
    """The stage's run on MONTH; its steps' and its run's durations from the event log."""
    job, assets = STAGES[stage]
    world = _world(root, rows, train_rows)
    from pipelines.backfill import QUIET

    result = world.run(job, MONTH, assets=assets, run_config=QUIET, raise_on_error=False)
    starts, steps, run, failed = {}, {}, {}, []
    for entry in world.instance.all_logs(result.run_id):
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps[event.step_key.removeprefix(f"{world.name}__")] = entry.timestamp - starts[event.step_key]
        elif kind in ("PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE"):  # a run's start and end (their legacy names)
            run[kind] = entry.timestamp
        elif kind == "ASSET_CHECK_EVALUATION" and not event.event_specific_data.passed:
            failed.append(event.event_specific_data.check_name)
    end = run.get("PIPELINE_SUCCESS", run.get("PIPELINE_FAILURE"))
    if not result.success and not (stage == "report" and failed == [REBUILT]):
        raise RuntimeError(f"the {stage} run failed (failed checks: {failed or 'none'}): see run {result.run_id} in {root / 'dagster'}")
    return {"seconds": end - run["PIPELINE_START"], "steps": steps, "run_id": result.run_id, "failed": failed}


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def floor(root: Path, rows: int, train_rows: int, stage: str) -> dict:
    """Read the stage's inputs, run its core, write its outputs (the frames the stage wrote, read
    back untimed) to a scratch folder: seconds of each part."""
    import pandas as pd

    from resources.storage import atomic_write_bytes, parquet_bytes, resolve_path
    from riskcore.datasets import APPLICATIONS, DRIFT, FEATURES, OUTCOMES, PERFORMANCE, QUARANTINED, SCORES, STABILITY

    world = _world(root, rows, train_rows)
    store, landing, registry = world.store, world.portfolio.landing, world.registry
    scratch = resolve_path(tempfile.mkdtemp(dir=root), {})
    parts: dict[str, float] = {}

    def read(name: str, fn):
        value, parts[f"read {name}"] = _timed(fn)
        return value

    def write(*datasets: str, frames: dict | None = None):
        frames = frames or {d: store.read(d, MONTH) for d in datasets}
        _, parts["write " + ", ".join(frames)] = _timed(lambda: [atomic_write_bytes(scratch / f"{d}.parquet", parquet_bytes(f)) for d, f in frames.items()])

    def core(name: str, fn):
        value, parts[name] = _timed(fn)
        return value

    def scored(alias, features):
        from riskcore.features import feature_specs, model_matrix

        # the model is an input too: found in and loaded from the registry, its libraries' first import included
        model = read(f"model ({alias})", lambda: registry.load(registry.by_alias(alias).version))
        specs, reasons = feature_specs(landing.applications()), world.portfolio.decision_policy().max_reason_codes

        def pd_and_reasons():  # every score carries its reasons (adverse action): read from the contributions the PD sums
            from riskcore.model import reason_positions  # after the model's load (sklearn's import is the model's)

            contributions = model.logit_contributions(model_matrix(features, specs))
            return model.pd_from_contributions(contributions), reason_positions(contributions, model.reference_contributions_, k=reasons)

        return core(f"PD and reason codes ({alias})", pd_and_reasons)

    if stage == "ingestion":
        from riskcore.pii import tokenise

        applications = read("landing applications", lambda: pd.read_parquet(io.BytesIO(landing.applications_file(MONTH).read_bytes())))
        read("landing outcomes", lambda: pd.read_parquet(io.BytesIO(landing.outcomes_file(MONTH).read_bytes())))
        pii = landing.applications().columns("pii")
        core("tokenise PII (a keyed hash per distinct value)", lambda: tokenise(applications, pii, world.resources["tokeniser"].key))
        write(APPLICATIONS, QUARANTINED, FEATURES, OUTCOMES)
    elif stage in ("scoring", "scoring with canary"):
        from assets.scoring import ORIGIN
        from resources.registry import CANARY, CHAMPION

        features = read("features", lambda: store.read(FEATURES, MONTH))
        # every score names its application's landing file and contract, read from the applications
        id_column = landing.applications().only("id")
        read("applications (landing file, contract)", lambda: store.read(APPLICATIONS, MONTH, columns=[id_column, *ORIGIN], categories=ORIGIN))
        scored(CHAMPION, features)
        if stage == "scoring with canary":
            scored(CANARY, features)
            write(SCORES, "challenger_scores")
        else:
            write(SCORES)
    elif stage == "monitoring":
        from assets.monitoring import _evidently_html
        from riskcore.drift import REFERENCE_PROFILE_ARTIFACT, REFERENCE_SAMPLE_ARTIFACT, ReferenceProfile, drift_statistics, monitored_frame
        from riskcore.features import feature_specs, model_matrix
        from riskcore.stability import (
            STABILITY_REFERENCE,
            StabilityReference,
            characteristic_analysis,
            distinct_value_contributions,
            feature_points,
            score_band_stability,
        )

        sensitive = list(world.portfolio.spec.sensitive_attributes)
        features = read("features", lambda: store.read(FEATURES, MONTH))
        scores = read("scores", lambda: store.read(SCORES, MONTH, columns=["pd", "score_points"]))
        groups = read("sensitive attributes", lambda: store.read(APPLICATIONS, MONTH, columns=sensitive))
        # the drift reference is kept with the champion in the registry: found and read there (MLflow's first import included)
        champion = read("champion (registry)", lambda: registry.by_alias("champion"))
        profile = read("reference profile", lambda: ReferenceProfile.from_json(registry.read_text(champion.run_id, REFERENCE_PROFILE_ARTIFACT)))
        specs, policy, monitoring = feature_specs(landing.applications()), world.portfolio.decision_policy(), world.portfolio.monitoring_policy()
        matrix = core("model matrix", lambda: model_matrix(features, specs))
        current = core("monitored frame", lambda: monitored_frame(matrix, scores["pd"].to_numpy(), policy, groups))
        core("drift_statistics", lambda: drift_statistics(profile, current, monitoring))
        # the Evidently report for people the stage must produce: the policy's seeded sample of the month against the
        # training rows kept with the champion, Evidently's first import included; nothing else of drift_report
        sample = read("Evidently reference sample", lambda: pd.read_parquet(io.BytesIO(registry.read_bytes(champion.run_id, REFERENCE_SAMPLE_ARTIFACT))))
        seed = int(MONTH.replace("-", ""))
        html = core("Evidently report (import included)", lambda: _evidently_html(profile, current, monitoring.sample_rows, seed, reference_sample=sample))
        # the stability pack's characteristic analysis weighs each feature's points on the month's rows: the
        # model is an input (as scoring's), applied once per distinct value of each feature (the cheapest way)
        model = read("model (champion)", lambda: registry.load(champion.version))
        reference = StabilityReference.from_json(registry.read_text(champion.run_id, STABILITY_REFERENCE))
        points = core("feature points (per distinct value)", lambda: feature_points(distinct_value_contributions(model, matrix), policy.scaling.factor))
        core(
            "stability tables", lambda: (characteristic_analysis(reference, matrix, points), score_band_stability(reference, scores["score_points"].to_numpy()))
        )
        write(DRIFT, STABILITY)
        _, parts["write evidently.html"] = _timed(lambda: atomic_write_bytes(scratch / "evidently.html", html.encode()))
    elif stage == "performance":
        from riskcore.datasets import REALISED
        from riskcore.joins import join
        from riskcore.metrics import calibration_by_decile
        from riskcore.performance import realised_performance
        from riskcore.rollout import read_scores

        id_column, target = landing.applications().only("id"), landing.outcomes().only("target")
        outcomes = read("landing outcomes", lambda: pd.read_parquet(io.BytesIO(landing.outcomes_file(MONTH).read_bytes()), columns=[id_column, target]))
        scores = read("scores", lambda: read_scores(store, MONTH, [id_column, "pd", "model_version", "cell"], categories=["model_version", "cell"]))
        version = str(scores["model_version"].iloc[0])
        # what the stage publishes beside the figures: the version it replaced and its training window (in-sample or not)
        replaced = read(
            "registry records (MLflow's first import)", lambda: (registry.version_tags(version).get("promoted_over"), registry.training_window(version))
        )[0]
        if replaced:
            raise RuntimeError(f"the champion replaced v{replaced}: the stage scores the month with it too, which this floor leaves out")

        def measured():
            labelled = join(scores[scores["cell"] != "canary"], outcomes, id_column, "one_to_one")
            y, pd_ = labelled[target].to_numpy(), labelled["pd"].to_numpy()
            return realised_performance(y, pd_), calibration_by_decile(y, pd_)

        core("join + realised performance + calibration by decile", measured)
        write(
            frames={
                OUTCOMES: store.read(OUTCOMES, MONTH),
                PERFORMANCE: store.read(PERFORMANCE, MONTH),
                REALISED: store.read_table(PERFORMANCE, MONTH, REALISED),
            }
        )
    elif stage == "report":
        import hashlib

        from assets.monitoring import matured_cohort
        from assets.reporting import report_inputs
        from riskcore.ingestion import delivered_rows
        from riskcore.report import SCORE_CATEGORIES, SCORE_COLUMNS, build_report, canonical_json, render_html
        from riskcore.rollout import read_scores

        contract, portfolio = landing.applications(), world.portfolio
        id_column, lineage = contract.only("id"), ["contract_version", "source_file_sha256", *portfolio.spec.sensitive_attributes]
        source = landing.applications_file(MONTH)

        def landed():  # the file as delivered: its digest and the rows its footer counts
            data = source.read_bytes()
            return hashlib.sha256(data).hexdigest(), delivered_rows(source.name, data, contract)

        read("landing applications (digest, rows)", landed)
        scores = read("scores (report columns)", lambda: read_scores(store, MONTH, [id_column, *SCORE_COLUMNS], categories=SCORE_CATEGORIES))
        read("applications (report columns)", lambda: store.read(APPLICATIONS, MONTH, columns=[id_column, *lineage], categories=lineage))
        _, backtest, _ = read("back-test cohort (scores + outcomes)", lambda: matured_cohort(portfolio, MONTH, ["pd", "score_points", "model_version"]))

        def records():  # each scoring version's run, each back-tested version's training window
            client = registry.client()
            runs = [client.get_model_version(n, v).run_id for n, v in scores[["model_name", "model_version"]].drop_duplicates().itertuples(index=False)]
            return runs, [registry.training_window(str(v)) for v in ([] if backtest is None else backtest["model_version"].unique())]

        read("registry records (MLflow's first import)", records)
        inputs = report_inputs(MONTH, portfolio)  # the same frames, and the small inputs (drift, stability pack, ledger trail, history), untimed
        doc = core("build_report", lambda: build_report(inputs))
        pages = core("canonical JSON + HTML", lambda: (canonical_json(doc), render_html(doc).encode()))
        _, parts["write report.json, report.html"] = _timed(
            lambda: [atomic_write_bytes(scratch / name, data) for name, data in zip(("report.json", "report.html"), pages)]
        )
    shutil.rmtree(scratch.path)
    return {"seconds": sum(parts.values()), "parts": parts}


def _run(*args: str) -> dict:
    """A child's figures; its error output when it failed."""
    import subprocess

    try:
        return run_child("bench.monthly_scale", "child", *args)
    except subprocess.CalledProcessError as failed:
        raise SystemExit(f"bench.monthly_scale child {' '.join(args)} failed:\n{failed.stderr[-4000:]}") from None


def _child(argv: list[str]) -> int:
    what, root, rows, train_rows, *rest = argv
    args = (Path(root), int(rows), int(train_rows))
    if what == "prepare":
        return report(prepare(*args))
    if what == "canary":
        return report(start_canary(*args))
    if what == "stage":
        return report(run_stage(*args, rest[0]))
    return report(floor(*args, rest[0]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--train-rows", type=int, default=20_000, help="rows of each of the 4 training months (training at scale is bench elsewhere)")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "monthly-scale"))
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated, in order: " + ", ".join(STAGES))
    args = parser.parse_args(argv)
    root = Path(args.cache) / f"{args.rows}-{args.train_rows}"
    root.mkdir(parents=True, exist_ok=True)
    common = (str(root), str(args.rows), str(args.train_rows))
    prepared = _run("prepare", *common)
    print(f"world under {root}: champion v{prepared['champion']}, challenger v{prepared['challenger']} ({prepared['seconds']:.0f} s to prepare)", flush=True)
    lines = ["| stage | seconds | floor s | ratio | peak MB | floor peak MB |", "|---|---:|---:|---:|---:|---:|"]
    details = []
    for stage in args.stages.split(","):
        world = common
        if stage == "scoring with canary":
            world = (str(canary_world(root)), *common[1:])
            _run("canary", *world)
        ran = _run("stage", *world, stage)
        floored = _run("floor", *world, stage)
        if world != common:
            shutil.rmtree(world[0])
        lines.append(
            f"| {stage} | {ran['seconds']:.1f} | {floored['seconds']:.1f} | {ran['seconds'] / floored['seconds']:.2f} | {ran['peak_mb']:.0f} | {floored['peak_mb']:.0f} |"
        )
        rebuilt = f" ({REBUILT} failed: a rebuild of a report published before the month was scored again)" if ran["failed"] else ""
        details.append(
            f"{stage} (run {ran['run_id'][:8]}){rebuilt}: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(ran["steps"].items(), key=lambda kv: -kv[1]))
        )
        details.append("  floor: " + ", ".join(f"{k} {v:.1f}" for k, v in floored["parts"].items()))
        print(lines[-1], flush=True)
    print("\n".join(["", f"{args.rows:,} applications in {MONTH}", *lines, "", *details]))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        sys.exit(_child(sys.argv[2:]))
    sys.exit(main())
