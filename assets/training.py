"""Training data from matured months, and a candidate model registered in MLflow."""

import dagster as dg

from resources.portfolios import Portfolios
from resources.storage import DatasetStore, parquet_bytes
from riskcore.datasets import APPLICATIONS, FEATURES, OUTCOMES, TRAINING_SET
from riskcore.lineage import code_version
from riskcore.months import sample_windows

TRAINING = "training"


@dg.asset(group_name=TRAINING, kinds={"parquet"}, deps=[FEATURES, OUTCOMES])
def training_set(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """Matured months only; the latest `out_of_time_months` of them held out for out-of-time testing."""
    from riskcore.features import feature_set_version
    from riskcore.training import SAMPLE_COLUMN, assemble_training_set

    portfolio = portfolios.of(context)
    landing, calendar, store = portfolio.landing, portfolio.calendar, portfolio.store
    contract = landing.applications()
    matured = [m for m in store.partitions(OUTCOMES) if calendar.matured(m)]
    outcomes = {m: store.read(OUTCOMES, m) for m in matured}
    features = {m: store.read(FEATURES, m) for m in store.partitions(FEATURES) if m in outcomes}
    frame = assemble_training_set(features, outcomes, contract.only("id"), landing.outcomes().only("target"), calendar.out_of_time_months)
    written = store.write(TRAINING_SET, frame)
    samples = frame.groupby(SAMPLE_COLUMN).size()
    windows = sample_windows(frame, SAMPLE_COLUMN, "application_month")
    return dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "as_of": calendar.as_of,
            "train_months": windows["train"],
            "out_of_time_months": windows["out_of_time"],
            "train_rows": int(samples["train"]),
            "out_of_time_rows": int(samples["out_of_time"]),
            "feature_set_version": feature_set_version(contract),
        }
    )


# applications: the sensitive attributes of the training rows, for the reference profile.
@dg.asset(group_name=TRAINING, kinds={"mlflow", "sklearn"}, deps=[training_set, APPLICATIONS])
def risk_model(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """A calibrated additive scorecard, logged and registered in MLflow as the `challenger`."""
    from riskcore.features import feature_set_version, feature_specs, model_matrix
    from riskcore.training import SAMPLE_COLUMN, fit_and_evaluate, sample_label

    portfolio = portfolios.of(context)
    landing, store, registry, governance = portfolio.landing, portfolio.store, portfolio.registry, portfolio.governance
    contract = landing.applications()
    specs = feature_specs(contract)
    target = landing.outcomes().only("target")
    frame = store.read(TRAINING_SET)
    policy = portfolio.training_policy()
    model, metrics, calibration, sample = fit_and_evaluate(frame, specs, target, contract.only("id"), policy)
    digest = store.sha256(TRAINING_SET)
    fs_version = feature_set_version(contract)
    tags = {
        "dagster_run_id": context.run_id,
        "dagster_asset_key": context.asset_key.to_user_string(),
        "code_version": code_version(),
        "feature_set_version": fs_version,
        "contract_version": contract.label,
        "training_set_sha256": digest,
        "training_policy": policy.label,
        "training_sample": sample_label(sample),
        # the months it learnt from: a back-test of those months is in-sample, and says so
        **{f"{sample}_months": window for sample, window in sample_windows(frame, SAMPLE_COLUMN, "application_month").items()},
    }
    params = {
        "model_class": type(model).__name__,
        "n_knots": model.n_knots,
        "C": model.C,
        "calibration": "sigmoid",
        "calibration_folds": model.calibration_folds,
        "features": ",".join(model.feature_names),
        **sample,
    }
    registered = registry.register(
        model,
        model_matrix(frame.head(200), specs),
        params=params,
        metrics=metrics,
        tags=tags,
        dataset=frame,
        dataset_digest=digest,
        dataset_source=store.path(TRAINING_SET).as_uri(),
        run_name=f"risk_model {context.run_id[:8]}",
        target=target,
    )
    log_monitoring_reference(portfolio, registered.run_id, frame[frame[SAMPLE_COLUMN] == "train"], model, specs)
    ledger = governance.ledger()
    # Registration is idempotent (the same training set and code give the same version): so is its entry.
    if not ledger.entries(kind="candidate_registered", subject=registered.label):
        ledger.append(
            "candidate_registered",
            registered.label,
            "pipeline",
            {
                "mlflow_run_id": registered.run_id,
                "training_set_sha256": digest,
                "feature_set_version": fs_version,
                "contract_version": contract.label,
                "code_version": code_version(),
                "dagster_run_id": context.run_id,
                "oot_auc": metrics["oot_auc"],
            },
        )
    return dg.MaterializeResult(
        metadata={
            "model_name": registered.name,
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "feature_set_version": fs_version,
            "training_sample": sample_label(sample),
            **{k: dg.MetadataValue.float(float(v)) for k, v in metrics.items() if k.startswith("oot_")},
            "oot_calibration_by_decile": dg.MetadataValue.json(calibration.round(4).to_dict("records")),
        }
    )


def log_monitoring_reference(portfolio, run_id: str, train, model, specs) -> None:
    """The references for monitoring, computed once from the training window and kept with the
    version: the profile the drift statistics use, a seeded sample of real rows Evidently compares,
    and the stability pack's reference (feature points per bin, score-band shares). A version
    registered before, by a run killed before it got here, or by older code, gets what it lacks now."""
    from riskcore.drift import REFERENCE_PROFILE_ARTIFACT, REFERENCE_SAMPLE_ARTIFACT, build_profile, monitored_columns, monitored_frame, reference_sample
    from riskcore.features import model_matrix
    from riskcore.stability import STABILITY_REFERENCE, build_stability_reference, feature_points

    registry, contract = portfolio.registry, portfolio.landing.applications()
    profile_missing = registry.read_text(run_id, REFERENCE_PROFILE_ARTIFACT) is None
    sample_missing = registry.read_bytes(run_id, REFERENCE_SAMPLE_ARTIFACT) is None
    stability_missing = registry.read_text(run_id, STABILITY_REFERENCE) is None
    if not (profile_missing or sample_missing or stability_missing):
        return
    matrix, decision = model_matrix(train, specs), portfolio.decision_policy()
    features = [s.name for s in specs if s.kind == "numeric"], [s.name for s in specs if s.kind == "categorical"]
    pd_ = model.predict_pd(matrix)
    reference = monitored_frame(matrix, pd_, decision, sensitive_attributes(portfolio, train))
    numeric, categorical = monitored_columns(*features, list(portfolio.spec.sensitive_attributes))
    if stability_missing:
        points = feature_points(model.logit_contributions(matrix), decision.scaling.factor)
        stability = build_stability_reference(matrix, points, decision.points(pd_), *features, portfolio.monitoring_policy().score_bands)
        registry.log_text(run_id, stability.to_json(), STABILITY_REFERENCE)
    if profile_missing:
        registry.log_text(run_id, build_profile(reference, numeric, categorical).to_json(), REFERENCE_PROFILE_ARTIFACT)
    if sample_missing:
        pii = contract.columns("pii")
        forbidden = {*contract.columns("id"), *pii, *(f"{c}_token" for c in pii)}
        rows = portfolio.monitoring_policy().sample_rows
        sample = reference_sample(reference, train[contract.only("id")], numeric + categorical, rows, forbidden)
        registry.log_bytes(run_id, parquet_bytes(sample), REFERENCE_SAMPLE_ARTIFACT)


def sensitive_attributes(portfolio, frame):
    """The portfolio's sensitive columns (for fairness gates and monitoring, never for features) of
    `frame`'s applications, row-aligned with it; read back from the accepted applications of their months."""
    from riskcore.joins import aligned

    store: DatasetStore = portfolio.store
    id_column, columns = portfolio.landing.applications().only("id"), list(portfolio.spec.sensitive_attributes)
    months = sorted(frame["application_month"].unique())
    return aligned(frame[id_column], store.read_many(APPLICATIONS, months, columns=[id_column, *columns]), id_column)[columns]
