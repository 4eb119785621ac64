"""Training data and out-of-time evaluation: only matured months, the latest held out."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from riskcore.features import FeatureSpec, model_matrix
from riskcore.joins import join
from riskcore.metrics import bayes_optimal_auc, brier, calibration_by_decile, ks_statistic, roc_auc
from riskcore.model import train_scorecard
from riskcore.training_policy import TrainingPolicy

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
        joined = join(features[month], outcomes[month][[id_column, target]], id_column, "one_to_one", how="left")
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


def training_sample(train: pd.DataFrame, id_column: str, target: str, max_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The rows the fit uses: (positions in `train`, their weights, what the lineage records).

    Up to `max_rows` rows: all, unweighted (the fit is as it always was). Above: a seeded sample
    stratified by outcome, `max_rows` rows, every default while they are at most half of them; each
    row weighs its class's rows / sampled rows, so weighted counts equal the full window's exactly."""
    y = train[target].to_numpy()
    n = len(y)
    if n <= max_rows:
        return np.arange(n), None, {"sample": "all rows", "sample_train_rows": n}
    rng = np.random.default_rng(seed)
    defaults, goods = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    kept_defaults = min(len(defaults), max_rows // 2)
    picked = [rng.choice(rows, size, replace=False) for rows, size in ((defaults, kept_defaults), (goods, max_rows - kept_defaults))]
    positions = np.sort(np.concatenate(picked))
    weight = {1: len(defaults) / kept_defaults, 0: len(goods) / (max_rows - kept_defaults)}
    weights = np.where(y[positions] == 1, weight[1], weight[0])
    ids = "\n".join(train[id_column].iloc[positions].astype(str)).encode()
    return (
        positions,
        weights,
        {
            "sample": "stratified by outcome, weighted",
            "sample_seed": seed,
            "sample_max_rows": max_rows,
            "sample_train_rows": n,
            "sample_rows": int(len(positions)),
            "sample_defaults": kept_defaults,
            "sample_weight_defaults": weight[1],
            "sample_weight_goods": weight[0],
            "sample_ids_sha256": hashlib.sha256(ids).hexdigest(),
        },
    )


def sample_label(sample: dict) -> str:
    """One line for the version's tags and card: which rows the fit used."""
    if "sample_seed" not in sample:
        return f"all {sample['sample_train_rows']:,} train rows"
    return (
        f"{sample['sample_rows']:,} of {sample['sample_train_rows']:,} train rows, {sample['sample']}, seed {sample['sample_seed']}, "
        f"ids sha256 {sample['sample_ids_sha256'][:16]}"
    )


def evaluate(y: np.ndarray, pd_: np.ndarray) -> dict[str, float]:
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


def fit_and_evaluate(
    training_set: pd.DataFrame, specs: list[FeatureSpec], target: str, id_column: str, policy: TrainingPolicy | None = None, random_state: int = 0
):
    """Fit on the train months (sampled as `policy` says, none without one); measure on every train and
    out-of-time row. Returns (model, metrics, calibration, the sample's lineage record).

    Rows are selected by position, never copied per sample: at a bank's volume the training set is
    the largest object held, and a copy of its train months would be most of another."""
    sample_of = training_set[SAMPLE_COLUMN].to_numpy()
    train_rows, oot = np.flatnonzero(sample_of == "train"), sample_of == "out_of_time"
    max_rows, seed = (policy.max_rows, policy.seed) if policy else (len(train_rows), 0)
    positions, weights, sample = training_sample(training_set[[id_column, target]].iloc[train_rows], id_column, target, max_rows, seed)
    fitted = train_rows[positions]
    fit_frame = model_matrix(training_set.iloc[fitted], specs)
    fit_frame[target] = training_set[target].to_numpy()[fitted]
    model = train_scorecard(fit_frame, target, specs, random_state=random_state, sample_weight=weights)
    del fit_frame
    if policy:
        sample["training_policy"] = policy.label
    y, pd_ = training_set[target].to_numpy(), model.predict_pd(model_matrix(training_set, specs))
    metrics = {f"train_{k}": v for k, v in evaluate(y[train_rows], pd_[train_rows]).items()}
    metrics |= {f"oot_{k}": v for k, v in evaluate(y[oot], pd_[oot]).items()}
    calibration = calibration_by_decile(y[oot], pd_[oot])
    return model, metrics, calibration, sample
