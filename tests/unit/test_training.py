"""Training above the policy's row threshold fits a seeded, outcome-stratified, weighted sample."""

import numpy as np
import pandas as pd
import pytest

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.features import build_features, feature_specs, model_matrix
from riskcore.ingestion import LandedFile, conform
from riskcore.model import train_scorecard
from riskcore.synthetic import applications_frame, generate_month
from riskcore.training import SAMPLE_COLUMN, assemble_training_set, fit_and_evaluate, sample_label, training_sample
from riskcore.training_policy import TrainingPolicy, load_training_policy

CONTRACT = load_contract(contract_path("loan_applications.yaml"))
SPECS = feature_specs(CONTRACT)


@pytest.fixture(scope="module")
def training_set():
    features, outcomes = {}, {}
    for month in ("2023-01", "2023-02", "2023-03", "2023-04"):
        frame = generate_month(7, month, 3000)
        accepted, _ = conform(LandedFile(month, "", 0, applications_frame(frame)), CONTRACT, month)
        features[month], outcomes[month] = build_features(accepted, CONTRACT, month), frame[["application_id", "defaulted"]]
    return assemble_training_set(features, outcomes, "application_id", "defaulted", out_of_time_months=1)


def _labels(n: int, default_rate: float) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame({"application_id": [f"APP-{i:07d}" for i in range(n)], "defaulted": (rng.random(n) < default_rate).astype("int64")})


@pytest.mark.parametrize("default_rate", [0.08, 0.4])
def test_the_sample_has_its_size_keeps_defaults_first_and_weighs_back_to_the_full_window(default_rate):
    train = _labels(50_000, default_rate)
    y = train["defaulted"].to_numpy()
    positions, weights, record = training_sample(train, "application_id", "defaulted", 10_000, seed=11)
    assert len(positions) == 10_000 == record["sample_rows"] and np.all(np.diff(positions) > 0)
    sampled_defaults = int(y[positions].sum())
    assert sampled_defaults == record["sample_defaults"] == min(int(y.sum()), 5_000)  # every default while they are at most half
    # Weighted, the sample is the full window: as many rows, and exactly its default rate.
    assert weights.sum() == pytest.approx(len(train), rel=1e-12)
    assert np.average(y[positions], weights=weights) == pytest.approx(y.mean(), rel=1e-12)
    assert record["sample_seed"] == 11 and record["sample_train_rows"] == 50_000


def test_the_sample_is_the_same_for_the_same_seed_and_its_ids_are_recorded():
    train = _labels(20_000, 0.1)
    first, again, other = (training_sample(train, "application_id", "defaulted", 5_000, seed) for seed in (1, 1, 2))
    np.testing.assert_array_equal(first[0], again[0])
    assert first[2] == again[2] and first[2]["sample_ids_sha256"] != other[2]["sample_ids_sha256"]
    # The hash names the sampled ids: a different row in the sample changes it.
    shifted = train.assign(application_id=train["application_id"].where(train.index != first[0][0], "APP-other"))
    assert training_sample(shifted, "application_id", "defaulted", 5_000, 1)[2]["sample_ids_sha256"] != first[2]["sample_ids_sha256"]
    assert "seed 1" in sample_label(first[2]) and first[2]["sample_ids_sha256"][:16] in sample_label(first[2])


def test_below_the_threshold_training_is_unchanged(training_set):
    train = training_set[training_set[SAMPLE_COLUMN] == "train"]
    model, _, _, record = fit_and_evaluate(training_set, SPECS, "defaulted", "application_id", TrainingPolicy("p", "1", len(train), 5))
    before = train_scorecard(model_matrix(train, SPECS).assign(defaulted=train["defaulted"].to_numpy()), "defaulted", SPECS)
    assert record == {"sample": "all rows", "sample_train_rows": len(train), "training_policy": "p@1"}
    np.testing.assert_array_equal(model._parts()[0].named_steps["logit"].coef_, before._parts()[0].named_steps["logit"].coef_)
    assert model.intercept_logit == before.intercept_logit


def test_a_sampled_fit_is_calibrated_to_the_full_window_and_deterministic(training_set):
    policy = TrainingPolicy("p", "1", 3_000, 5)
    model, metrics, _, record = fit_and_evaluate(training_set, SPECS, "defaulted", "application_id", policy)
    again, _, _, record_again = fit_and_evaluate(training_set, SPECS, "defaulted", "application_id", policy)
    assert record == record_again and record["sample_rows"] == 3_000 and record["sample_train_rows"] == 9_000
    # Defaults are over-represented three-fold in the sample; weighted, the PDs are the population's.
    assert record["sample_defaults"] / 3_000 > 2 * metrics["train_default_rate"]
    assert abs(metrics["oot_mean_pd"] - metrics["oot_default_rate"]) < 0.02
    assert abs(metrics["train_mean_pd"] - metrics["train_default_rate"]) < 0.01
    # Metrics are measured on every row, not the sample.
    assert metrics["train_rows"] == 9_000 and metrics["oot_rows"] == 3_000
    X = model_matrix(training_set, SPECS)
    np.testing.assert_array_equal(model.predict_pd(X), again.predict_pd(X))
    np.testing.assert_array_equal(model.reference_contributions_, again.reference_contributions_)


def test_the_shipped_training_policy_loads_and_a_tiny_sample_is_refused(tmp_path):
    policy = load_training_policy()
    assert policy.max_rows >= 100_000 and policy.label.startswith("pd-training@")
    bad = tmp_path / "training.yaml"
    bad.write_text("policy_id: x\nversion: '1'\nsample: {max_rows: 10, seed: 1}\n")
    with pytest.raises(ValueError, match="sample.max_rows"):
        load_training_policy(bad)
