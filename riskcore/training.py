"""Training data and out-of-time evaluation: only matured months, the latest held out."""

from __future__ import annotations

import pandas as pd

from riskcore.features import FeatureSpec, model_matrix
from riskcore.metrics import bayes_optimal_auc, brier, calibration_by_decile, ks_statistic, roc_auc
from riskcore.model import PDScorecard, train_scorecard

SAMPLE_COLUMN = "sample"


def assemble_training_set(
    features: dict[str, pd.DataFrame], outcomes: dict[str, pd.DataFrame], id_column: str, target: str, out_of_time_months: int
) -> pd.DataFrame:
    """Join features to matured outcomes; the last `out_of_time_months` months are the out-of-time sample.

    `outcomes` holds matured months only. A feature row of a matured month without an outcome is
    an error, not a silent drop: the collections feed must cover every accepted application.
    """
    months = sorted(outcomes)
    if len(months) <= out_of_time_months:
        raise ValueError(f"need more than {out_of_time_months} matured months to train and test out of time; have {len(months)}: {months}")
    missing_features = [m for m in months if m not in features]
    if missing_features:
        raise ValueError(f"months with matured outcomes but no features: {missing_features}")
    oot = set(months[-out_of_time_months:])
    parts = []
    for month in months:
        joined = features[month].merge(outcomes[month][[id_column, target]], on=id_column, how="left", validate="one_to_one")
        unlabelled = int(joined[target].isna().sum())
        if unlabelled:
            raise ValueError(
                f"{month}: {unlabelled} accepted applications have no outcome; if loan_outcomes {month} was "
                "materialised before its labels matured, materialise it again (performance_job)"
            )
        joined[target] = joined[target].astype("int64")
        joined[SAMPLE_COLUMN] = "out_of_time" if month in oot else "train"
        parts.append(joined)
    return pd.concat(parts, ignore_index=True)


def evaluate(model: PDScorecard, frame: pd.DataFrame, specs: list[FeatureSpec], target: str) -> dict[str, float]:
    y = frame[target].to_numpy()
    pd_ = model.predict_pd(model_matrix(frame, specs))
    auc = roc_auc(y, pd_)
    return {
        "auc": auc,
        "gini": 2 * auc - 1,
        "ks": ks_statistic(y, pd_),
        "brier": brier(y, pd_),
        "mean_pd": float(pd_.mean()),
        "estimated_auc": bayes_optimal_auc(pd_),  # from the PDs alone: what estimated_performance compares each month with
        "default_rate": float(y.mean()),
        "rows": float(len(y)),
    }


def fit_and_evaluate(training_set: pd.DataFrame, specs: list[FeatureSpec], target: str, random_state: int = 0):
    """Fit on the train months; measure on train and out of time. Returns (model, metrics, calibration)."""
    train = training_set[training_set[SAMPLE_COLUMN] == "train"]
    oot = training_set[training_set[SAMPLE_COLUMN] == "out_of_time"]
    fit_frame = model_matrix(train, specs)
    fit_frame[target] = train[target].to_numpy()
    model = train_scorecard(fit_frame, target, specs, random_state=random_state)
    metrics = {f"train_{k}": v for k, v in evaluate(model, train, specs, target).items()}
    metrics |= {f"oot_{k}": v for k, v in evaluate(model, oot, specs, target).items()}
    calibration = calibration_by_decile(oot[target].to_numpy(), model.predict_pd(model_matrix(oot, specs)))
    return model, metrics, calibration
