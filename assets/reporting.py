"""Monthly regulatory reports, reproducible byte for byte and published through the ledger."""

import dagster as dg

from assets.monitoring import LabelsNotLoaded, in_sample_metadata, matured_cohort
from resources.partitions import MONTHLY_BY_THE_3RD, monthly_partitions
from resources.portfolios import PortfolioResources, Portfolios
from resources.registry import ModelRegistry
from resources.storage import DatasetStore
from riskcore.datasets import (
    APPLICATIONS,
    DRIFT,
    ESTIMATED,
    FINAL_DECISIONS,
    OUTCOMES,
    OVERRIDE_METRICS,
    PERFORMANCE,
    QUARANTINED,
    REALISED,
    REPORT,
    SCORES,
    STABILITY,
    SWAP_SET,
)
from riskcore.months import month_label

TRAIL_KINDS = ("candidate_registered", "gate_results", "approval", "promotion", "rollout_canary", "rollout_advance", "rollout_rollback")


class ReportNotReady(RuntimeError):
    """An input the report must show is not there yet; nothing is published."""


def recorded_model(ledger, registry: ModelRegistry, label: str) -> dict:
    """A version as the ledger recorded it up to its first promotion: registration, gate results,
    approval, promotion. Later events (a rollback, a re-promotion) do not rewrite past reports."""
    trail = []
    for entry in ledger.entries(subject=label):
        if entry.kind in TRAIL_KINDS:
            trail.append(entry)
        if entry.kind == "promotion":
            break
    gates = next((e.payload for e in trail if e.kind == "gate_results"), {})
    name, version = label.rsplit("/", 1)
    return {
        "label": label,
        "run_id": registry.client().get_model_version(name, version).run_id,
        "gates": gates.get("gates", {}),
        "gates_passed": bool(gates.get("passed")),
        "gates_policy": gates.get("policy") or "not evaluated",
        "trail": [{"seq": e.seq, "kind": e.kind, "actor": e.actor, "recorded_at": e.recorded_at, "reason": e.payload.get("reason", "")} for e in trail],
    }


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="reporting",
    kinds={"html", "json"},
    # The back-test reads the cohort that matured by month m: m - 12 with the production calendar.
    # The overrides section reads month m - 1, whose review window closed when m was scored: the
    # report is published right after scoring, before any of m's referrals is decided.
    deps=[
        APPLICATIONS,
        QUARANTINED,
        SCORES,
        DRIFT,
        STABILITY,
        *[dg.AssetDep(name, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)) for name in (FINAL_DECISIONS, OVERRIDE_METRICS)],
        SWAP_SET,  # the rollout section
        # The AUC over the months: the estimates of the last 24 months, the realised AUC model_performance recorded of those matured (m - 23 .. m - 12).
        dg.AssetDep(ESTIMATED, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-23, end_offset=0)),
        dg.AssetDep(PERFORMANCE, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-23, end_offset=-12)),
        dg.AssetDep(OUTCOMES, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-12, end_offset=-12)),  # the back-test's cohort
    ],
    backfill_policy=dg.BackfillPolicy.single_run(),
    freshness_policy=MONTHLY_BY_THE_3RD,
    check_specs=[
        dg.AssetCheckSpec(
            "check_report_matches_published",
            asset=REPORT,
            blocking=True,
            description="Each month's rebuild has the digest the ledger published, and the published files are untouched.",
        )
    ],
)
def regulatory_report(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """report.json and report.html per month, from that month's recorded inputs only (its files,
    its scores and the model versions recorded with them, their gates and approval trail), never
    from the clock or today's champion. The first build is published in the ledger with its
    digest; a rebuild that differs is kept beside it, and the check names the sections that changed.
    One run may build many months (single-run backfill) or one."""
    portfolio = portfolios.of(context)
    outcomes = {}
    for key in context.partition_keys:
        month = month_label(key)
        try:
            outcomes[month] = publish_report(month, report_inputs(month, portfolio), portfolio, context.run_id)
        except (FileNotFoundError, ReportNotReady) as problem:  # one month's missing input does not stop the others
            outcomes[month] = {"status": f"not built: {problem}", "digest": None}
        context.log.info(f"{REPORT} {month}: {outcomes[month]['status']}")
    failing = {m: o for m, o in outcomes.items() if o["status"] not in ("published", "reproduced")}
    yield dg.MaterializeResult(
        asset_key=context.asset_key,
        metadata={
            "months": len(outcomes),
            "first_month": min(outcomes),
            "last_month": max(outcomes),
            "statuses": dg.MetadataValue.json({m: o["status"] for m, o in outcomes.items()}),
            "digests": dg.MetadataValue.json({m: o["digest"] for m, o in outcomes.items()}),
            **({"report_html": dg.MetadataValue.path(outcomes[month]["html"])} if len(outcomes) == 1 and "html" in outcomes[month] else {}),
        },
    )
    yield dg.AssetCheckResult(
        check_name="check_report_matches_published",
        asset_key=context.asset_key,
        passed=not failing,
        metadata={"months_checked": len(outcomes), "problems": dg.MetadataValue.json(failing)},
    )


def report_inputs(month: str, portfolio: PortfolioResources):
    """Everything the month's report says, read from what was recorded for that month."""
    import hashlib
    import json

    from riskcore.ingestion import count_reasons, delivered_rows
    from riskcore.months import add_months, month_index
    from riskcore.report import SCORE_CATEGORIES, SCORE_COLUMNS, ReportInputs
    from riskcore.rollout import read_scores

    landing, calendar, store, registry, governance = portfolio.landing, portfolio.calendar, portfolio.store, portfolio.registry, portfolio.governance
    contract, policy = landing.applications(), governance.policy()
    id_column, sensitive = contract.only("id"), list(portfolio.spec.sensitive_attributes)
    lineage = ["contract_version", "source_file_sha256"]  # with the sensitive columns: a few values a month, read as categories
    source = landing.applications_file(month)
    delivered = source.read_bytes()
    scores = read_scores(store, month, [id_column, *SCORE_COLUMNS], categories=SCORE_CATEGORIES)
    ledger = governance.ledger()
    models = [
        recorded_model(ledger, registry, f"{name}/{version}")
        for name, version in sorted(scores[["model_name", "model_version"]].drop_duplicates().itertuples(index=False))
    ]
    # The fairness threshold the scoring version was judged with (its gate record), not today's policy.
    air_thresholds = {float(m["gates"]["adverse_impact_ratio"]["threshold"].split()[-1]) for m in models if "adverse_impact_ratio" in m["gates"]}  # ">= 0.8"
    if month_index(month) > month_index(calendar.as_of):
        raise ReportNotReady(f"{month} is after the evaluation month {calendar.as_of}")
    try:
        cohort, backtest, note = matured_cohort(portfolio, month, ["pd", "score_points", "model_version"])
    except LabelsNotLoaded as problem:  # published without them, the report would be frozen with a hole a rebuild then fills
        raise ReportNotReady(str(problem)) from problem
    in_sample = (
        {}
        if backtest is None
        else {str(v): in_sample_metadata(cohort, registry.training_window(v))["in_sample"] for v in sorted(backtest["model_version"].unique())}
    )
    drift = store.read(DRIFT, month) if store.path(DRIFT, month).exists() else None
    # The PSI bands the month's drift was read with (recorded with it since issue 14), else today's monitoring policy.
    recorded, today = drift is not None and {"psi_investigate", "psi_shift"} <= set(drift.columns), portfolio.monitoring_policy()
    psi_thresholds = {band: float(drift[f"psi_{band}"].iloc[0]) if recorded else getattr(today, band) for band in ("investigate", "shift")}
    pack = None
    if store.path(STABILITY, month).exists():
        pack = {
            "notes": json.loads(store.file(STABILITY, month, "pack.json").read_bytes()),
            "characteristics": store.read(STABILITY, month),
            "score_bands": store.read_table(STABILITY, month, "score_bands"),
        }
    return ReportInputs(
        month=month,
        input_files=[{"name": source.name, "sha256": hashlib.sha256(delivered).hexdigest(), "rows": delivered_rows(source.name, delivered, contract)}],
        applications=store.read(APPLICATIONS, month, columns=[id_column, *lineage, *sensitive], categories=[*lineage, *sensitive]).rename(
            columns={id_column: "application_id"}
        ),
        quarantine_reasons=count_reasons(store.read(QUARANTINED, month, columns=["quarantine_reasons"])),
        quarantined=store.rows(QUARANTINED, month),
        scores=scores.rename(columns={id_column: "application_id"}),
        models=models,
        sensitive=sensitive,
        min_group_size=policy.min_group_size,
        min_adverse_impact_ratio=max(air_thresholds) if air_thresholds else policy.min_adverse_impact_ratio,
        decision_policy=", ".join(sorted(scores["policy_version"].unique())),
        monitoring=portfolio.monitoring_policy(),
        drift=drift,
        drift_reference=str(drift["reference_model"].iloc[0]) if drift is not None and "reference_model" in drift else None,
        psi_thresholds=psi_thresholds,
        backtest_cohort=cohort,
        backtest=backtest,
        backtest_note=note,
        backtest_in_sample=in_sample,
        stability_pack=pack,
        overrides=override_inputs(month_label(add_months(month, -1)), cohort, store, id_column, sensitive, backtest),
        swap_set=store.read(SWAP_SET, month) if month in store.partitions(SWAP_SET) else None,
        performance_history=performance_history(month, portfolio),
    )


def performance_history(month: str, portfolio: PortfolioResources) -> list[dict]:
    """The estimated AUC (with its bounds) of every month of the two performance windows up to
    `month` that was estimated, and the realised AUC model_performance recorded for those whose
    labels matured by `month`: how far the estimate was off, month after month, as recorded."""
    from riskcore.months import add_months, month_index, months_between

    store, window = portfolio.store, portfolio.calendar.performance_window_months
    matured_by = month_index(add_months(month, -window))
    history = []
    for past in months_between(add_months(month, -(2 * window - 1)), month):
        if not store.path(ESTIMATED, past).exists():
            continue
        estimate = store.read(ESTIMATED, past, columns=["estimated_auc", "estimated_auc_low", "estimated_auc_high"]).iloc[0]
        realised = None
        if month_index(past) <= matured_by and store.file(PERFORMANCE, past, f"{REALISED}.parquet").exists():
            realised = float(store.read_table(PERFORMANCE, past, REALISED)["auc"].iloc[0])
        history.append({"month": past, **{k: float(v) for k, v in estimate.items()}, "realised_auc": realised})
    return history


def override_inputs(reviewed: str, cohort: str, store: DatasetStore, id_column: str, sensitive: list[str], backtest):
    """The final_decisions and override_metrics of `reviewed` (the month before the report's) as
    recorded (this portfolio's store only), that month's applications' sensitive columns for the
    adverse impact ratio, and the back-test cohort's overridden applications with their realised outcome."""
    import json

    from riskcore.joins import join
    from riskcore.report import OverrideInputs

    if not store.path(FINAL_DECISIONS, reviewed).exists() or not store.file(OVERRIDE_METRICS, reviewed, "override_metrics.json").exists():
        return OverrideInputs(month=reviewed, note=f"final_decisions and override_metrics of {reviewed} are not materialised (review_job)", cohort=cohort)
    columns = [id_column, "model_decision", "final_decision", "side", "reason", "officer", "second_officer", "ledger_seq", "note"]
    cohort_final = None
    if backtest is not None and store.path(FINAL_DECISIONS, cohort).exists():
        overridden = store.read(FINAL_DECISIONS, cohort, columns=[id_column, "side"]).dropna(subset=["side"])
        outcomes = backtest[[id_column, "pd", "defaulted"]].astype({id_column: str})  # final_decisions keeps ids as text
        cohort_final = join(overridden, outcomes, id_column, "one_to_one")
    return OverrideInputs(
        month=reviewed,
        final=store.read(FINAL_DECISIONS, reviewed, columns=columns).rename(columns={id_column: "application_id"}),
        metrics=json.loads(store.file(OVERRIDE_METRICS, reviewed, "override_metrics.json").read_bytes()),
        # final_decisions[m - 1] stands on that month's applications (upstream of its scores)
        groups=store.read(APPLICATIONS, reviewed, columns=[id_column, *sensitive]).rename(columns={id_column: "application_id"}),
        note=f"What officers decided on {reviewed}'s referrals and appeals, as its final_decisions and override_metrics record it",
        cohort=cohort,
        cohort_final=cohort_final,
    )


def publish_report(month: str, inputs, portfolio: PortfolioResources, run_id: str) -> dict:
    """Write and publish the first build; afterwards compare every rebuild with what was published."""
    from resources.storage import atomic_write_bytes
    from riskcore.report import build_report, canonical_json, changed_sections, render_html, report_digest, section_digests

    doc = build_report(inputs)
    json_bytes, html_bytes = canonical_json(doc), render_html(doc).encode()
    digest, sections = report_digest(json_bytes, html_bytes), section_digests(doc)
    store, ledger, subject = portfolio.store, portfolio.governance.ledger(), report_subject(portfolio.name, month)
    published = ledger.entries(kind="report_published", subject=subject)
    json_path, html_path = store.file(REPORT, month, "report.json"), store.file(REPORT, month, "report.html")
    if not published:
        atomic_write_bytes(json_path, json_bytes)
        atomic_write_bytes(html_path, html_bytes)
        ledger.append("report_published", subject, "pipeline", {"month": month, "digest": digest, "sections": sections, "dagster_run_id": run_id})
        # The ledger's head after publication, kept outside its database twice: in the registry and beside the report.
        atomic_write_bytes(store.file(REPORT, month, "ledger_head.txt"), (portfolio.governance.anchor(portfolio.registry) + "\n").encode())
        return {"status": "published", "digest": digest, "html": str(html_path)}
    record = published[-1].payload
    tampered = verify_files(store, month, record)
    if tampered:
        return {"status": "published files altered", "digest": digest, "html": str(html_path), "files": tampered}
    if digest == record["digest"]:
        return {"status": "reproduced", "digest": digest, "html": str(html_path)}
    for name, data in ((f"rebuild-{digest[:12]}.json", json_bytes), (f"rebuild-{digest[:12]}.html", html_bytes)):
        atomic_write_bytes(store.file(REPORT, month, name), data)
    return {
        "status": "rebuild differs from the published report",
        "digest": digest,
        "published_digest": record["digest"],
        "changed_sections": changed_sections(record["sections"], sections),
        "html": str(store.file(REPORT, month, f"rebuild-{digest[:12]}.html")),
    }


def report_subject(portfolio: str, month: str) -> str:
    """The ledger subject a month's report is published under."""
    return f"{portfolio}/{REPORT}/{month}"


def verify_files(store: DatasetStore, month: str, record: dict) -> list[str]:
    """The published files whose bytes no longer give the digest the ledger recorded (empty: intact)."""
    import json

    from riskcore.report import changed_sections, report_digest, section_digests

    json_path, html_path = store.file(REPORT, month, "report.json"), store.file(REPORT, month, "report.html")
    if not (json_path.exists() and html_path.exists()):
        return [p.name + " missing" for p in (json_path, html_path) if not p.exists()]
    json_bytes, html_bytes = json_path.read_bytes(), html_path.read_bytes()
    if report_digest(json_bytes, html_bytes) == record["digest"]:
        return []
    try:
        altered = [f"report.json section {s}" for s in changed_sections(record["sections"], section_digests(json.loads(json_bytes)))]
    except ValueError:
        altered = ["report.json (not valid JSON)"]
    return altered or ["report.html"]
