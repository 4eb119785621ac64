"""`make run`: materialise the whole asset graph into the persistent instance, then summarise.

Runs land in $DAGSTER_HOME exactly as the UI's backfills would (one run per month and stage),
so `make dev` shows them afterwards.
"""

import argparse
import sys
import time

import dagster as dg

from pipelines.backfill import QUIET, run_local
from pipelines.jobs import job_name
from pipelines.local_runs import fail_interrupted_runs, process_tags
from riskcore.datasets import CHAMPION_MODEL, DRIFT, OUTCOMES, PERFORMANCE, SCORES, TRAINING_SET
from riskcore.months import month_label, months_between

TAGS = {"trigger": "make run"}


def resume_command(portfolio: str) -> str:
    """What continues a run that stopped for want of a champion, once someone approved one."""
    return f"python -m pipelines.run --portfolio {portfolio} --only scoring,monitoring,performance,reporting"


STAGES = ("ingestion", "training", "scoring", "monitoring", "performance", "reporting")


def _materialise(
    defs: dg.Definitions, instance: dg.DagsterInstance, resources, months: list[str], matured: list[str], stages: tuple[str, ...] = STAGES
) -> dict[str, float]:
    """Each stage in order; without a champion (production: nobody approved yet) it stops before scoring."""
    from resources.registry import CHAMPION

    portfolio = resources.name
    timings = {}
    tags = {**TAGS, **process_tags()}  # a run this process leaves STARTED when killed is marked failed by the next CLI

    def per_month(job: str, which: list[str], label: str, assets: list[str] | None = None) -> None:
        """One run per month, as a UI backfill of the job would make them."""
        started = time.perf_counter()
        for month in which:
            defs.resolve_job_def(job_name(portfolio, job)).execute_in_process(
                QUIET,
                partition_key=f"{month}-01",
                instance=instance,
                tags=tags,
                asset_selection=[dg.AssetKey([portfolio, a]) for a in assets] if assets else None,
            )
            print(f"  {label} {month}", end="\n" if month == which[-1] else "\r", flush=True)
        timings[label] = time.perf_counter() - started

    if "ingestion" in stages:
        per_month("monthly_ingestion_job", months, "ingestion + features")
    if "training" in stages:
        started = time.perf_counter()
        trained = defs.resolve_job_def(job_name(portfolio, "model_training_job")).execute_in_process(QUIET, instance=instance, tags=tags, raise_on_error=False)
        timings["training + registration"] = time.perf_counter() - started
        failed = {e.step_key for e in trained.all_events if e.event_type_value == "STEP_FAILURE"}
        if any(not step.endswith(CHAMPION_MODEL) for step in failed):  # champion_model alone fails while a candidate awaits approval
            raise RuntimeError(f"training run {trained.run_id} failed in {', '.join(sorted(failed))}: see it in the UI")
        print("  trained and registered a candidate, evaluated its gates, settled the champion", flush=True)
    if set(stages) - {"ingestion", "training"} and resources.registry.by_alias(CHAMPION) is None:
        print(
            f"  {portfolio} has no champion: stopping before scoring until a listed approver approves its challenger;"
            f" then `{resume_command(portfolio)}` resumes",
            flush=True,
        )
        return timings
    if "scoring" in stages:
        per_month("monthly_scoring_job", months, "scoring", assets=[SCORES])
    if "monitoring" in stages:
        per_month("monitoring_job", months, "drift monitoring")
    if "performance" in stages and matured:
        per_month("performance_job", matured, "realised performance")
    if "reporting" in stages:
        started = time.perf_counter()
        (result,) = run_local(defs, instance, portfolio, months, per_partition=False, tags=tags)
        evaluations = result.get_asset_check_evaluations()
        problems = evaluations[0].metadata["problems"].value if evaluations else {"all": {"status": f"the report run {result.run_id} failed before its check"}}
        for month, problem in sorted(problems.items()):
            print(f"  regulatory report {month}: {problem['status']} {problem.get('changed_sections', problem.get('files', ''))}")
        if problems:
            print("  (a rebuild differs when its inputs changed since publication, e.g. the month was scored again; the published report is kept)")
        timings["regulatory reports (1 run)"] = time.perf_counter() - started
    return timings


def summarise(portfolio, instance: dg.DagsterInstance, months: list[str]) -> list[str]:
    """The figures a reviewer asks for first, read back from the outputs themselves."""
    import pandas as pd

    from pipelines.prepare import synthetic_truth
    from pipelines.sensors import latest_metadata_by_month
    from resources.registry import CHALLENGER, CHAMPION
    from riskcore.features import feature_specs
    from riskcore.ingestion import read_landing_bytes, received_rows
    from riskcore.metrics import bayes_optimal_auc, roc_auc

    store, registry, landing = portfolio.store, portfolio.registry, portfolio.landing
    champion = registry.by_alias(CHAMPION)
    if champion is None:
        challenger = registry.by_alias(CHALLENGER)
        return [
            "no champion yet: the pipeline stops before scoring until a listed approver approves (signed: `make signing-key` locally, KEY= or SIGNATURE=)"
            + (f" `make approve PORTFOLIO={portfolio.name} VERSION={challenger.version} APPROVER=<listed approver> REASON=...`" if challenger else "")
            + f"; then `{resume_command(portfolio.name)}` resumes"
        ]
    contract = landing.applications()
    features = [s.name for s in feature_specs(contract)]
    realised = latest_metadata_by_month(instance, dg.AssetKey([portfolio.name, PERFORMANCE]))
    lines = [
        f"{'month':8} {'received':>9} {'accepted':>9} {'quarant.':>9} {'scored':>9} {'approve':>8} {'refer':>7} {'decline':>8} {'drifted features':>17} {'realised AUC':>13}"
    ]
    for month in months:
        target = landing.applications_file(month)
        received = received_rows(read_landing_bytes(target.name, target.read_bytes()), contract)
        scores = store.read(SCORES, month, columns=["decision"])["decision"].value_counts(normalize=True)
        drift = store.read(DRIFT, month) if store.path(DRIFT, month).exists() else None
        drifted = "-" if drift is None else str(int(drift.loc[drift["column"].isin(features), "drifted"].sum()))
        lines.append(
            f"{month:8} {received:9d} {store.rows('applications', month):9d} {store.rows('quarantined_applications', month):9d} "
            f"{store.rows('risk_scores', month):9d} {scores.get('approve', 0):8.1%} {scores.get('refer', 0):7.1%} {scores.get('decline', 0):8.1%} {drifted:>17} "
            f"{format(realised[month]['auc'], '.4f') if month in realised else 'not matured':>13}"
        )
    lines.append("")
    metrics = registry.run_metrics(champion.run_id)
    lines.append(f"champion model: {champion.name} version {champion.version} (MLflow run {champion.run_id})")
    tags = registry.version_tags(champion.version)
    failed = [k.removeprefix("gate.") for k, v in sorted(tags.items()) if k.startswith("gate.") and " FAIL " in v]
    lines.append(f"  promotion gates ({tags.get('gates_policy', '?')}): " + ("all passed" if not failed else "FAILED " + ", ".join(failed)))
    challenger = registry.by_alias(CHALLENGER)
    if challenger is not None and challenger != champion:
        passed = registry.version_tags(challenger.version).get("gates_passed")
        lines.append(
            f"  challenger: {challenger.label} (gates {'passed' if passed == 'true' else 'FAILED'}), awaiting "
            f"`make approve PORTFOLIO={portfolio.name} VERSION={challenger.version} APPROVER=<listed approver> REASON=...`"
        )
    verification = portfolio.governance.ledger().verify()
    lines.append(f"  governance ledger: {verification.entries} entries, " + ("chain intact" if verification.ok else f"BROKEN: {verification.problem}"))
    training = store.read(TRAINING_SET, columns=["application_id", "application_month", "sample"])
    oot = training[training["sample"] == "out_of_time"]
    oot_months = sorted(oot["application_month"].unique())
    lines.append(f"out-of-time sample: {oot_months[0]}..{oot_months[-1]}, {len(oot)} applications")
    lines.append(f"  champion AUC (out of time):        {metrics['oot_auc']:.4f}   Gini {metrics['oot_gini']:.4f}   KS {metrics['oot_ks']:.4f}")
    truths = [synthetic_truth(landing.path, m) for m in oot_months]
    if all(t is not None for t in truths):
        truth = pd.concat(truths).merge(oot, on="application_id")
        lines.append(f"  Bayes-optimal AUC (same rows):     {bayes_optimal_auc(truth['true_pd'].to_numpy()):.4f}   (expected AUC of the true PD)")
        outcomes = pd.concat([store.read(OUTCOMES, m) for m in oot_months]).merge(truth, on="application_id")
        lines.append(f"  true PD's AUC on realised labels:  {roc_auc(outcomes['defaulted'], outcomes['true_pd']):.4f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--start", default="2023-01", help="first application month (YYYY-MM)")
    parser.add_argument("--end", default="2024-12", help="last application month (YYYY-MM)")
    parser.add_argument(
        "--only",
        type=lambda text: tuple(text.split(",")),
        default=STAGES,
        help=f"comma-separated stages out of {','.join(STAGES)} (e.g. training: a new candidate on the current data)",
    )
    parser.add_argument("--portfolio", default="retail_pd", help="the portfolio to run (its name in its portfolio file)")
    parser.add_argument("--prepare", choices=["synthetic", "german_credit"], help="first land the files of this source (pipelines.prepare)")
    args = parser.parse_args(argv)
    if unknown := set(args.only) - set(STAGES):
        parser.error(f"unknown stage(s) {sorted(unknown)}; stages are {', '.join(STAGES)}")
    months = months_between(month_label(args.start), month_label(args.end))

    from pipelines.definitions import defs
    from pipelines.environment import configured_portfolio

    if args.prepare:
        from pipelines.prepare import main as prepare

        prepare([args.prepare, "--portfolio", args.portfolio, "--start", months[0], "--end", months[-1]])
    instance = dg.DagsterInstance.get()
    fail_interrupted_runs(instance)
    print(f"materialising {args.portfolio}, {len(months)} months ({months[0]}..{months[-1]}) into {instance.root_directory}", flush=True)
    portfolio = configured_portfolio(args.portfolio)
    matured = [m for m in months if portfolio.calendar.matured(m)]
    timings = _materialise(defs, instance, portfolio, months, matured, args.only)
    lines = summarise(portfolio, instance, months)
    data_root, mlflow_uri = portfolio.store.path("x").parent.parent, portfolio.registry._uri()
    print("\n".join(["", *lines, "", "time per stage:"]))
    for stage, seconds in timings.items():
        print(f"  {stage:26} {seconds:7.1f} s")
    print(f"  {'total':26} {sum(timings.values()):7.1f} s")
    print(f"\noutputs: datasets in {data_root}; MLflow registry {mlflow_uri}; Dagster runs in {instance.root_directory}")
    print("see them: `make dev` (Dagster UI, http://127.0.0.1:3000) and `make mlflow-ui` (http://127.0.0.1:5000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
