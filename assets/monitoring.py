"""Each month against the champion's training reference: drift of its inputs, its performance
estimated before labels mature, and its realised performance once they have."""

import functools

import dagster as dg

from assets.training import sensitive_attributes
from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from resources.registry import CHAMPION
from resources.storage import atomic_write_bytes
from riskcore.datasets import APPLICATIONS, CHAMPION_MODEL, DRIFT, ESTIMATED, FEATURES, OUTCOMES, PERFORMANCE, REALISED, SCORES, STABILITY
from riskcore.months import month_label


class LabelsNotLoaded(RuntimeError):
    """The cohort's labels have matured but loan_outcomes of its month holds none yet."""


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="monitoring",
    kinds={"parquet", "evidently"},
    deps=[FEATURES, APPLICATIONS, CHAMPION_MODEL],  # applications: sensitive attributes
    check_specs=[
        dg.AssetCheckSpec(
            "check_feature_drift_within_policy",
            asset=DRIFT,
            description="PSI of every monitored column (features, PD, decision, sensitive attributes): WARN from 'investigate', ERROR from 'shift' (monitoring policy).",
        )
    ],
)
def drift_report(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """Full-data statistics from the reference profile (PSI on the reference's own bins, drifted when
    material and beyond sampling noise: riskcore.drift), and an Evidently report for people, a seeded
    sample of the month against the training rows kept with the champion, saved next to the data."""
    import io
    import json

    import pandas as pd

    from riskcore.drift import REFERENCE_PROFILE_ARTIFACT, REFERENCE_SAMPLE_ARTIFACT, ReferenceProfile, drift_statistics, monitored_frame
    from riskcore.features import feature_specs

    portfolio = portfolios.of(context)
    landing, store, registry = portfolio.landing, portfolio.store, portfolio.registry
    month = month_label(context.partition_key)
    champion = registry.by_alias(CHAMPION)
    profile_text = registry.read_text(champion.run_id, REFERENCE_PROFILE_ARTIFACT) if champion else None
    if profile_text is None:
        raise ValueError(f"the champion {champion.label if champion else '(none)'} has no reference profile: train it with this code")
    policy = portfolio.monitoring_policy()
    specs = feature_specs(landing.applications())
    rows, matrix = month_features(portfolio, month)
    current = monitored_frame(
        matrix, _champion_pd(portfolio, champion, month, rows, matrix), portfolio.decision_policy(), sensitive_attributes(portfolio, rows)
    )
    profile = ReferenceProfile.from_json(profile_text)
    stats = drift_statistics(profile, current, policy)
    # the bands it was read with travel with it: a later report draws the lines the month was judged by
    written = store.write(DRIFT, stats.assign(reference_model=champion.label, psi_investigate=policy.investigate, psi_shift=policy.shift), month)
    sample_bytes = registry.read_bytes(champion.run_id, REFERENCE_SAMPLE_ARTIFACT)
    sample = pd.read_parquet(io.BytesIO(sample_bytes)) if sample_bytes is not None else None
    html = _evidently_html(profile, current, policy.sample_rows, seed=int(month.replace("-", "")), reference_sample=sample)
    report_path = store.file(DRIFT, month, "evidently.html")
    atomic_write_bytes(report_path, html.encode())
    registry.log_text(champion.run_id, html, f"monitoring/drift_{month}.html")
    by_column = stats.set_index("column")
    features_only = by_column.loc[[s.name for s in specs]]  # the drift share counts model features only
    yield dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "model": champion.label,
            "policy": policy.label,
            "drift_share": float(features_only["drifted"].mean()),
            "score_psi": float(by_column.loc["pd", "psi"]),
            **({"decision_psi": float(by_column.loc["decision", "psi"])} if "decision" in by_column.index else {}),  # profiles before 2026-11 lack it
            **{f"psi_{name}": float(value) for name, value in by_column["psi"].items()},
            "drifted_features": ", ".join(features_only.index[features_only["drifted"]]) or "none",
            "new_categories": json.dumps({k: v for k, v in by_column["new_categories"].items() if v}),
            "evidently_report": dg.MetadataValue.path(str(report_path)),
            "evidently_reference": f"{len(sample)} training rows kept with {champion.label}"
            if sample is not None
            else f"resampled from the reference profile's quantiles: {champion.label} has no {REFERENCE_SAMPLE_ARTIFACT} (discrete columns smoothed)",
        }
    )
    worst = float(by_column["psi"].max())
    severity = dg.AssetCheckSeverity.ERROR if worst >= policy.shift else dg.AssetCheckSeverity.WARN
    yield dg.AssetCheckResult(
        check_name="check_feature_drift_within_policy",
        passed=worst < policy.investigate,
        severity=severity,
        metadata={
            "worst_psi": worst,
            "investigate": {k: float(v) for k, v in by_column["psi"].items() if policy.investigate <= v < policy.shift},
            "shift": {k: float(v) for k, v in by_column["psi"].items() if v >= policy.shift},
        },
    )


def month_features(portfolio, month: str):
    """(the month's features, what the model sees of them: model_matrix), row-aligned: drift_report
    and stability_pack of one monitoring run both read them, once (about 2 s a million rows).
    Neither is modified by its readers."""
    from riskcore.features import feature_set_version, feature_specs, model_matrix

    contract = portfolio.landing.applications()

    def read():
        rows = portfolio.store.read(FEATURES, month)
        return rows, model_matrix(rows, feature_specs(contract))

    return portfolio.store.derived(FEATURES, month, f"features and model matrix, feature set {feature_set_version(contract)}", read)


def _champion_pd(portfolio, champion, month: str, rows, matrix):
    """The champion's PD of each of the month's `rows`: the one its scores hold (`champion_pd`) when
    this champion scored the month, not a second pass of the model (seconds a million rows); predicted
    again when the month is not scored yet or another version scored it."""
    from riskcore.joins import aligned
    from riskcore.rollout import CHAMPION as CHAMPION_CELL
    from riskcore.rollout import read_scores

    store, id_column = portfolio.store, portfolio.landing.applications().only("id")
    if store.path(SCORES, month).exists():
        scores = read_scores(store, month, [id_column, "champion_pd", "model_version", "cell"], categories=["model_version", "cell"])
        if set(scores.loc[scores["cell"] == CHAMPION_CELL, "model_version"].astype(str)) == {champion.version}:
            held = aligned(rows[id_column], scores, id_column)["champion_pd"]
            if held.notna().all():
                return held.to_numpy()
    return portfolio.registry.load(champion.version).predict_pd(matrix)


def in_sample_metadata(month: str, training_window: str | None) -> dict:
    """Whether `month` lies in the scoring model's training window ("unknown" for models that did not record it)."""
    from riskcore.months import in_window

    return {"training_window": training_window or "not recorded", "in_sample": "unknown" if training_window is None else in_window(month, training_window)}


def _evidently_html(profile, current, sample_rows: int, seed: int, reference_sample=None) -> str:
    """Evidently compares raw rows: a seeded sample of the month against the training rows kept with
    the model version (`_evidently_reference`). Evidently embeds its data unescaped in a `<script>`
    element (a category holding `</script>` would end it): the page is returned with that data
    re-escaped (`riskcore.escaping.evidently_html`)."""
    from evidently import DataDefinition, Dataset, Report

    from riskcore.escaping import evidently_html

    n = min(sample_rows, len(current))
    sample = current.sample(n=n, random_state=seed).reset_index(drop=True)
    numeric, categorical = list(profile.numeric), list(profile.categorical)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = numeric + categorical
    reference = _evidently_reference(profile, reference_sample, n, seed)
    snapshot = Report([_drift_page()()]).run(
        Dataset.from_pandas(sample[columns], data_definition=definition), Dataset.from_pandas(reference[columns], data_definition=definition)
    )
    return evidently_html(snapshot.get_html_str(as_iframe=False))


@functools.cache
def _drift_page():
    """Evidently's DataDriftPreset without its per-column ValueDrift metrics: the preset draws its
    page from two table metrics of its own (`DataDriftPreset.render`), and computed and drew (in
    plotly) a ValueDrift per column only to throw it away: about half the report's time at 2,000
    rows. The page is the same (tests/unit/test_drift.py)."""
    from evidently.presets import DataDriftPreset

    class DriftPage(DataDriftPreset):
        def generate_metrics(self, context):
            return []

    return DriftPage


def _evidently_reference(profile, reference_sample, n: int, seed: int):
    """The training sample kept with the model version: real rows, so a discrete column (a count)
    keeps its values. A version trained before it was kept gets rows rebuilt from the profile's
    quantiles (numeric, interpolated: discrete columns come out smoothed) and shares (categorical)."""
    import numpy as np
    import pandas as pd

    from riskcore.drift import MISSING

    if reference_sample is not None:
        return reference_sample
    rng = np.random.default_rng(seed)
    reference = {}
    for name, p in profile.numeric.items():
        values = np.interp(rng.random(n), np.linspace(0, 1, len(p.quantiles)), p.quantiles) if p.quantiles else np.full(n, np.nan)
        values[rng.random(n) < p.shares[-1]] = np.nan
        reference[name] = values
    for name, p in profile.categorical.items():
        categories, shares = zip(*sorted(p.shares.items()))
        drawn = rng.choice(np.array(categories, dtype=object), size=n, p=np.array(shares) / sum(shares))
        reference[name] = np.where(drawn == MISSING, None, drawn)
    return pd.DataFrame(reference)


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="monitoring",
    kinds={"parquet"},
    deps=[SCORES],
    check_specs=[
        dg.AssetCheckSpec(
            "check_estimated_performance_within_policy",
            asset=ESTIMATED,
            description="WARN when the month's estimated AUC or default rate breaks the monitoring policy's early-warning rule (an alert; nothing is blocked).",
        )
    ],
)
def estimated_performance(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """The month's AUC and default rate estimated from the PDs of the version that scored it, with
    bounds (riskcore.estimation, CBPE), long before its labels mature; beside that version's own
    estimate on its out-of-time rows, what the early-warning rule compares. model_performance
    back-tests it once the labels are in."""
    import pandas as pd

    from riskcore.estimation import early_warning
    from riskcore.estimation import estimated_performance as estimate
    from riskcore.rollout import read_scores

    portfolio = portfolios.of(context)
    store, registry = portfolio.store, portfolio.registry
    month = month_label(context.partition_key)
    scores = read_scores(store, month, ["pd", "model_version", "model_run_id", "cell"], categories=["model_version", "model_run_id", "cell"])
    scores = scores[scores["cell"] != "canary"]  # the champion's decisions: a rollout's canary cell is estimated in swap_set
    (version, run_id), *others = scores[["model_version", "model_run_id"]].drop_duplicates().itertuples(index=False)
    if others:
        raise ValueError(f"risk_scores {month}: expected the scores of one model version, found {sorted(scores['model_version'].unique())}")
    policy = portfolio.monitoring_policy()
    estimated = estimate(scores["pd"].to_numpy(), policy.confidence)
    trained = registry.run_metrics(run_id)  # versions trained before the estimate was recorded lack oot_estimated_auc
    reference = {"reference_auc": trained.get("oot_estimated_auc"), "reference_default_rate": trained.get("oot_mean_pd")}
    warning = early_warning(estimated, reference["reference_auc"], reference["reference_default_rate"], policy)
    row = {**estimated, **reference, "confidence": policy.confidence, "model_version": version, "early_warning": warning or ""}
    written = store.write(ESTIMATED, pd.DataFrame([row]), month)
    yield dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "model": f"{registry.model_name}/{version}",
            "model_version": version,
            "policy": policy.label,
            **{k: float(v) for k, v in {**estimated, **reference, "confidence": policy.confidence}.items() if v is not None},
            "early_warning": warning or "none",
        }
    )
    yield dg.AssetCheckResult(
        check_name="check_estimated_performance_within_policy",
        passed=warning is None,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "early_warning": warning or "none",
            "estimated_auc": estimated["estimated_auc"],
            "estimated_default_rate": estimated["estimated_default_rate"],
        },
    )


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="monitoring",
    kinds={"parquet"},
    deps=[SCORES, OUTCOMES, FEATURES, ESTIMATED],
    output_required=False,
)
def model_performance(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """Realised AUC, KS, Brier and calibration by decile of the version that scored month m, once
    its labels matured, beside the version it replaced on the same rows: what the rollback sensor
    compares; and beside the month's estimate made before the labels existed: the back-test of
    estimated_performance. Nothing is materialised before the labels mature."""
    import json

    import pandas as pd

    from riskcore.features import feature_specs, model_matrix
    from riskcore.joins import aligned, join
    from riskcore.metrics import calibration_by_decile
    from riskcore.performance import estimate_backtest, realised_performance
    from riskcore.rollout import read_scores

    portfolio = portfolios.of(context)
    landing, calendar, store, registry = portfolio.landing, portfolio.calendar, portfolio.store, portfolio.registry
    month = month_label(context.partition_key)
    if not calendar.matured(month):
        context.log.info(
            f"labels of {month} are not matured as of {calendar.as_of} ({calendar.performance_window_months}-month window): nothing to measure yet"
        )
        return
    contract = landing.applications()
    id_column, target = contract.only("id"), landing.outcomes().only("target")
    scores = read_scores(store, month, [id_column, "pd", "model_version", "cell"], categories=["model_version", "cell"])
    scores = scores[scores["cell"] != "canary"]  # the champion's decisions: a rollout's canary cell is judged in swap_set
    outcomes = store.read(OUTCOMES, month, columns=[id_column, target])
    if outcomes.empty:
        raise ValueError(
            f"labels of {month} matured as of {calendar.as_of} but loan_outcomes {month} holds none: materialise it first (performance_job does both)"
        )
    labelled = join(scores, outcomes, id_column, "one_to_one")
    versions = sorted(labelled["model_version"].unique())
    if len(versions) != 1:
        raise ValueError(f"risk_scores {month}: expected the scores of one model version, found {versions or 'none'}")
    version = versions[0]
    y = labelled[target].to_numpy()
    measured = realised_performance(y, labelled["pd"].to_numpy())
    replaced = registry.version_tags(version).get("promoted_over") or None
    compared = None
    if replaced:
        rows = aligned(labelled[id_column], store.read(FEATURES, month), id_column)
        compared = realised_performance(y, registry.load(replaced).predict_pd(model_matrix(rows, feature_specs(contract))))
    estimated = store.read(ESTIMATED, month).iloc[0].to_dict() if month in store.partitions(ESTIMATED) else None  # months scored before it existed have none
    calibration = calibration_by_decile(y, labelled["pd"].to_numpy())
    written = store.write(PERFORMANCE, calibration.assign(model_version=version), month)
    store.write_table(PERFORMANCE, month, REALISED, pd.DataFrame([{"model_version": version, **measured}]))  # what the report's AUC history reads
    yield dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "model": f"{registry.model_name}/{version}",
            "model_version": version,
            # a month the model learnt from measures fit, not performance: said, never hidden
            **in_sample_metadata(month, registry.training_window(version)),
            "labels_as_of": calendar.as_of,
            "unlabelled_rows": len(scores) - len(labelled),
            **{k: float(v) for k, v in measured.items()},
            "compared_with_version": replaced or "none",
            **({"compared_auc": compared["auc"], "compared_brier": compared["brier"], "auc_gap": compared["auc"] - measured["auc"]} if compared else {}),
            **(estimate_backtest(estimated, measured) if estimated and estimated["model_version"] == version else {"estimated_before_labels": False}),
            "calibration_by_decile": dg.MetadataValue.json(json.loads(calibration.round(4).to_json(orient="records"))),
        }
    )


def matured_cohort(portfolio, month: str, columns: list[str]):
    """(the cohort whose labels matured by `month`, its scores' `columns` with their realised outcome
    `defaulted` or None when it was never scored, what it is or why none). Raises LabelsNotLoaded
    when the cohort was scored and its labels matured but are not loaded (performance_job loads them)."""
    from riskcore.joins import join
    from riskcore.months import add_months

    landing, calendar, store = portfolio.landing, portfolio.calendar, portfolio.store
    id_column, target = landing.applications().only("id"), landing.outcomes().only("target")
    cohort = month_label(add_months(month, -calendar.performance_window_months))
    if not store.path(SCORES, cohort).exists():
        return cohort, None, f"no scores of {cohort}, the cohort whose labels matured by {month}"
    outcomes = store.read(OUTCOMES, cohort, columns=[id_column, target]) if store.path(OUTCOMES, cohort).exists() else None
    if outcomes is None or outcomes.empty:
        raise LabelsNotLoaded(f"labels of {cohort} have matured but are not loaded: materialise loan_outcomes {cohort} (performance_job) first")
    labelled = join(store.read(SCORES, cohort, columns=[id_column, *columns]), outcomes.rename(columns={target: "defaulted"}), id_column, "one_to_one")
    return cohort, labelled, f"scores of {cohort} against their realised outcomes"


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="monitoring",
    kinds={"parquet"},
    # The cohort whose labels matured by month m (m - 12 with the production calendar) for the gains and calibration tables.
    deps=[FEATURES, SCORES, dg.AssetDep(OUTCOMES, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-12, end_offset=-12))],
    output_required=False,
    check_specs=[
        dg.AssetCheckSpec(
            "check_stability_within_policy",
            asset=STABILITY,
            description="CSI of every feature and the score-band PSI against the scoring version's training window: WARN from 'investigate', ERROR from 'shift' (monitoring policy).",
        ),
        dg.AssetCheckSpec(
            "check_grade_calibration",
            asset=STABILITY,
            description="Observed against expected default rate per frozen score band of the matured cohort (Jeffreys): fails on a red band or a red portfolio.",
        ),
    ],
)
def stability_pack(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """The validator's stability pack of month m (riskcore.stability): characteristic analysis and
    score-band stability against the training reference of the version that scored m, and the gains
    and per-band calibration tables of the cohort whose labels matured by m. Tables beside each other.
    Nothing is materialised before month m is scored (a monitoring run without scoring judges nothing)."""
    import json

    import pandas as pd

    from resources.storage import atomic_write_bytes
    from riskcore.joins import aligned
    from riskcore.rollout import read_scores
    from riskcore.stability import (
        STABILITY_REFERENCE,
        StabilityReference,
        characteristic_analysis,
        characteristic_summary,
        distinct_value_contributions,
        feature_points,
        gains_table,
        grade_calibration,
        score_band_stability,
    )

    portfolio = portfolios.of(context)
    landing, store, registry, policy = portfolio.landing, portfolio.store, portfolio.registry, portfolio.monitoring_policy()
    month, id_column = month_label(context.partition_key), landing.applications().only("id")
    if not store.path(SCORES, month).exists():
        why = f"risk_scores {month} not materialised: the month is not scored, nothing to measure yet"
        context.log.info(why)
        for check in ("check_stability_within_policy", "check_grade_calibration"):
            yield dg.AssetCheckResult(check_name=check, passed=True, severity=dg.AssetCheckSeverity.WARN, metadata={"not_judged": why})
        return
    lineage = ["cell", "model_name", "model_version", "model_run_id"]
    every_cell = read_scores(store, month, [id_column, *lineage, "score_points"], categories=lineage)
    champion_rows = (every_cell["cell"] != "canary").to_numpy()  # the champion's decisions, against its own reference
    scores = every_cell[champion_rows]
    versions = sorted(scores[["model_name", "model_version", "model_run_id"]].drop_duplicates().itertuples(index=False))
    if len(versions) != 1:
        raise ValueError(f"risk_scores {month}: expected the scores of one model version, found {len(versions) or 'none'}")
    (name, version, run_id), bands = versions[0], list(policy.score_bands)
    text, model = registry.read_text(run_id, STABILITY_REFERENCE), f"{name}/{version}"
    reference = StabilityReference.from_json(text) if text else None
    characteristics, score_bands = pd.DataFrame(), pd.DataFrame()
    if reference is None:
        reference_note = f"not available: {model} has no {STABILITY_REFERENCE} (trained before the stability pack): retrain to get one"
    elif reference.score_bands != bands:
        reference_note = f"not available: {model}'s reference has score bands {reference.score_bands}, the policy {bands}: retrain to get a reference on them"
    else:
        reference_note = f"against the training window of {model}"
        # the month's model matrix (drift_report's) aligned with every cell's scores (written in the
        # features' order: no join), then the champion's rows taken
        features, month_matrix = month_features(portfolio, month)
        with_ids = month_matrix.assign(**{id_column: features[id_column]})
        matrix = aligned(every_cell[id_column], with_ids, id_column)[champion_rows].reset_index(drop=True)
        points = feature_points(distinct_value_contributions(registry.load(version), matrix), portfolio.decision_policy().scaling.factor)
        characteristics = characteristic_analysis(reference, matrix, points)
        score_bands = score_band_stability(reference, scores["score_points"].to_numpy())
    gains, calibration = pd.DataFrame(), pd.DataFrame()
    try:
        cohort, labelled, cohort_note = matured_cohort(portfolio, month, ["pd", "score_points"])
    except LabelsNotLoaded as problem:
        cohort, labelled, cohort_note = None, None, f"not available: {problem}"
    if labelled is not None:
        y, pd_, points_ = labelled["defaulted"].to_numpy(), labelled["pd"].to_numpy(), labelled["score_points"].to_numpy()
        gains, calibration = gains_table(points_, y, bands), grade_calibration(pd_, y, points_, bands, policy)
    notes = {"model": model, "reference": reference_note, "cohort": cohort, "cohort_note": cohort_note, "policy": policy.label, "score_bands": bands}
    written = store.write(STABILITY, characteristics, month)
    for table, frame in (("score_bands", score_bands), ("gains", gains), ("calibration", calibration)):
        store.write_table(STABILITY, month, table, frame)
    atomic_write_bytes(store.file(STABILITY, month, "pack.json"), (json.dumps(notes, sort_keys=True, indent=2) + "\n").encode())
    summary = characteristic_summary(characteristics, policy) if len(characteristics) else pd.DataFrame(columns=["feature", "csi"])
    score_psi = float(score_bands["psi"].sum()) if len(score_bands) else None
    yield dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "model": model,
            "policy": policy.label,
            "reference": reference_note,
            "cohort": cohort_note,
            **({"score_band_psi": score_psi} if score_psi is not None else {}),
            **{f"csi_{r.feature}": float(r.csi) for r in summary.itertuples()},
            **(
                {"score_shift_points": dg.MetadataValue.json({r.feature: round(float(r.shift_points), 4) for r in summary.itertuples()})}
                if len(summary)
                else {}
            ),
            **({"gains_ks": float(gains["ks"].max())} if len(gains) else {}),
        }
    )
    if score_psi is None:
        yield dg.AssetCheckResult(
            check_name="check_stability_within_policy", passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={"not_judged": reference_note}
        )
    else:
        values = {**{f"csi {r.feature}": float(r.csi) for r in summary.itertuples()}, "score-band psi": score_psi}
        worst = max(values.values())
        yield dg.AssetCheckResult(
            check_name="check_stability_within_policy",
            passed=worst < policy.investigate,
            severity=dg.AssetCheckSeverity.ERROR if worst >= policy.shift else dg.AssetCheckSeverity.WARN,
            metadata={
                "worst": worst,
                "investigate": {k: v for k, v in values.items() if policy.investigate <= v < policy.shift},
                "shift": {k: v for k, v in values.items() if v >= policy.shift},
            },
        )
    if labelled is None:
        # no cohort scored yet is nothing to judge; labels matured but not loaded is a gap to fill
        yield dg.AssetCheckResult(
            check_name="check_grade_calibration", passed=cohort is not None, severity=dg.AssetCheckSeverity.WARN, metadata={"not_judged": cohort_note}
        )
    else:
        red = calibration.loc[calibration["light"] == "red", "grade"].tolist()
        lights = calibration.set_index("grade")["light"].to_dict()
        yield dg.AssetCheckResult(
            check_name="check_grade_calibration",
            passed=not red,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"cohort": cohort, "red": ", ".join(red) or "none", "lights": dg.MetadataValue.json(lights)},
        )
