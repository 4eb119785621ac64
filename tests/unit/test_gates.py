import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.special import expit, logit

from riskcore.gates import (
    adverse_impact_ratio,
    calibration_gate,
    calibration_table,
    evaluate_gates,
    fairness_gate,
    psi,
)
from riskcore.promotion import DEFAULT_PROMOTION_POLICY, load_promotion_policy

RNG = np.random.default_rng(0)
PD = RNG.beta(1.2, 12, 40_000)
Y = (RNG.random(40_000) < PD).astype(int)
POLICY = load_promotion_policy()


def portfolio(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Realistic true PDs (logit-normal, mean ~7%, clipped to 0.5%..60%) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    true_pd = np.clip(expit(rng.normal(-2.9, 0.9, rows)), 0.005, 0.6)
    return true_pd, (rng.random(rows) < true_pd).astype("int8")


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    assert psi(PD[:20_000], PD[20_000:]) < 0.01
    assert psi(PD, np.clip(PD * 3, 0, 1)) > 0.25


def test_the_calibration_table_has_pd_grades_that_each_expect_enough_defaults_and_the_portfolio():
    for rows, deciles in ((100_000, True), (5_000, False), (1_000, False)):  # 5,000 rows: the lowest decile expects < 20 defaults
        true_pd, y = portfolio(rows, 0)
        table = calibration_table(y, true_pd, 0.9, 0.1, 20)
        assert list(table.columns) == ["grade", "rows", "defaults", "mean_pd", "observed_rate", "jeffreys_lower", "jeffreys_upper", "p_value", "light"]
        by_grade, total = table.iloc[:-1], table.iloc[-1]
        assert total["grade"] == "all" and total["rows"] == rows and total["defaults"] == y.sum()
        assert by_grade["rows"].sum() == rows and by_grade["defaults"].sum() == y.sum()
        assert (len(by_grade) == 10) == deciles and by_grade["mean_pd"].is_monotonic_increasing
        assert (by_grade["rows"] * by_grade["mean_pd"]).min() >= 20 or len(by_grade) == 1
        assert ((table["jeffreys_lower"] <= table["observed_rate"]) & (table["observed_rate"] <= table["jeffreys_upper"])).all()


@pytest.mark.parametrize("rows,seed", [(100_000, 0), (100_000, 1), (100_000, 2), (1_000_000, 0), (1_000_000, 1)])
def test_at_large_samples_calibrated_and_slightly_off_models_pass_and_30pct_off_models_fail(rows, seed):
    """The model is judged, not the sample: PDs 2% too high pass at a million rows although the
    portfolio's Jeffreys p-value rejects them (amber), while PDs 30% off fail either way."""
    true_pd, y = portfolio(rows, seed)
    assert calibration_gate(POLICY, y, true_pd).passed
    slightly_high = calibration_gate(POLICY, y, true_pd * 1.02)
    assert slightly_high.passed
    too_low, too_high = calibration_gate(POLICY, y, true_pd * 0.7), calibration_gate(POLICY, y, true_pd * 1.3)
    assert not too_low.passed and too_low.note.startswith("portfolio red") and too_low.value > 1 + POLICY.calibration_tolerance
    assert not too_high.passed and too_high.note.startswith("portfolio red") and too_high.value < 1 - POLICY.calibration_tolerance
    if rows == 1_000_000:
        table = calibration_table(y, true_pd * 1.02, POLICY.calibration_confidence, POLICY.calibration_tolerance, POLICY.calibration_min_expected_defaults)
        assert table.iloc[-1]["light"] == "amber" and table.iloc[-1]["p_value"] < 1e-3  # what a p-value gate would fail


def test_at_1000_rows_calibrated_models_pass_most_30pct_underestimates_fail_and_overestimates_are_not_reliably_seen():
    """1,000 rows hold ~70 defaults: the observed/expected ratio has a sampling sd of ~0.12, so no
    test separates a calibrated model from a 30% error reliably (the best threshold on that ratio
    fails ~5% of calibrated models and misses ~6% of 0.7 x PD). This gate, which also demands that
    the error exceed the 10% materiality tolerance, catches PDs 0.7 x too low in ~70% of samples
    (defaults 43% above PD) and PDs 1.3 x too high (defaults 23% below PD) in only ~40%. In
    simulation, 0.7 x is caught in every sample from 5,000 rows, 1.3 x in ~95% at 5,000 and ~99%
    at 10,000 rows; the test above shows both caught at 100,000 and 1,000,000."""
    seeds = range(200)
    verdicts = np.array([[calibration_gate(POLICY, y, true_pd * f).passed for f in (1.0, 0.7, 1.3)] for true_pd, y in (portfolio(1_000, s) for s in seeds)])
    calibrated_fails, underestimate_caught, overestimate_caught = 1 - verdicts.mean(axis=0)
    assert calibrated_fails <= 0.03
    assert underestimate_caught >= 0.6
    assert overestimate_caught > 3 * calibrated_fails  # the gate sees it, just not reliably


def test_a_too_steep_model_fails_on_its_grades_though_its_portfolio_default_rate_is_right():
    """PDs too extreme at both ends (an overfitted model): low grades too low, high grades too
    high; the portfolio's mean may match, the grades do not."""
    true_pd, y = portfolio(100_000, 3)
    steep = expit(1.4 * logit(true_pd) + 1.1)
    steep *= true_pd.mean() / steep.mean()
    gate = calibration_gate(POLICY, y, steep)
    table = calibration_table(y, steep, POLICY.calibration_confidence, POLICY.calibration_tolerance, POLICY.calibration_min_expected_defaults)
    assert table.iloc[-1]["light"] != "red" and (table.iloc[:-1]["light"] == "red").sum() > POLICY.calibration_max_red_grades
    assert not gate.passed


def test_adverse_impact_ratio_is_lowest_over_highest_approval_rate():
    approved = np.array([1] * 80 + [0] * 20 + [1] * 60 + [0] * 40)
    group = pd.Series(["a"] * 100 + ["b"] * 100)
    ratio, rates = adverse_impact_ratio(approved, group, min_group_size=30)
    assert ratio == pytest.approx(0.6 / 0.8) and rates == {"a": 0.8, "b": 0.6}
    assert adverse_impact_ratio(approved, group, min_group_size=101)[0] is None  # too small to judge


def test_adverse_impact_ratio_on_real_shapes_of_a_sensitive_attribute():
    """Missing attributes (None, NaN) are no group, a group under the minimum size is not judged, a
    numeric code is a group as its text, and no approval at all is nothing to judge."""
    approved = np.array([1] * 45 + [0] * 5 + [1] * 20 + [0] * 20 + [1] * 3 + [0] * 7)
    group = pd.Series([1] * 50 + [2] * 40 + [None] * 5 + [float("nan")] * 2 + [3] * 3, dtype="object")
    ratio, rates = adverse_impact_ratio(approved, group, min_group_size=30)
    assert rates == {"1": 0.9, "2": 0.5} and ratio == pytest.approx(0.5 / 0.9)  # the 5 + 2 missing and group 3 (3 rows) left out
    assert adverse_impact_ratio(np.zeros(len(group)), group, min_group_size=30) == (None, {})


def test_a_challenger_worse_than_the_champion_fails_its_gate():
    policy = load_promotion_policy()
    noisy = np.clip(PD + RNG.normal(0, 0.08, len(PD)), 1e-4, 0.99)  # a weaker model
    sensitive = pd.DataFrame({"sex": np.where(RNG.random(len(PD)) < 0.5, "female", "male")})
    approved = PD < 0.1
    gates = {g.name: g for g in evaluate_gates(policy, Y, noisy, PD, noisy, approved, sensitive, signature_ok=True)}
    assert not gates["auc_vs_champion"].passed and gates["auc_vs_champion"].value < -policy.auc_tolerance
    good = evaluate_gates(policy, Y, PD, noisy, PD, approved, sensitive, signature_ok=True)
    assert [g.name for g in good] == [
        "auc",
        "auc_vs_champion",
        "ks",
        "calibration_jeffreys",
        "score_psi_train_vs_oot",
        "adverse_impact_ratio",
        "signature_matches_feature_store",
    ]
    assert all(g.passed for g in good), [g for g in good if not g.passed]
    unfair = pd.DataFrame({"sex": np.where(PD < 0.05, "female", "male")})  # approvals follow the group
    assert not {g.name: g for g in evaluate_gates(policy, Y, PD, None, PD, approved, unfair, True)}["adverse_impact_ratio"].passed
    assert not {g.name: g for g in evaluate_gates(policy, Y, PD, None, PD, approved, sensitive, False)}["signature_matches_feature_store"].passed


def _policy_file(tmp_path, edit) -> str:
    doc = yaml.safe_load(DEFAULT_PROMOTION_POLICY.read_text())
    edit(doc)
    path = tmp_path / "promotion.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_without_a_sensitive_attribute_the_fairness_verdict_says_so_and_the_policy_decides(tmp_path):
    none = pd.DataFrame(index=range(len(PD)))
    gate = {g.name: g for g in evaluate_gates(POLICY, Y, PD, None, PD, PD < 0.1, none, True, contract_label="applications@3")}["adverse_impact_ratio"]
    assert POLICY.when_no_sensitive_attribute == "pass"
    assert gate.passed and gate.value is None and "no sensitive attribute declared in applications@3" in gate.note
    refusing = load_promotion_policy(_policy_file(tmp_path, lambda d: d["fairness"].update(when_no_sensitive_attribute="refuse")))
    refused = {g.name: g for g in evaluate_gates(refusing, Y, PD, None, PD, PD < 0.1, none, True)}["adverse_impact_ratio"]
    assert not refused.passed and "no sensitive attribute declared" in refused.note and "refused" in refused.note


def test_groups_too_small_to_judge_fail_the_fairness_gate_with_the_reason():
    sensitive = pd.DataFrame({"sex": ["female"] * 20 + ["male"] * 30})
    gate = fairness_gate(POLICY, PD[:50] < 0.1, sensitive, "applications@3")
    assert not gate.passed and gate.value is None
    assert "groups too small to judge" in gate.note and "female 20" in gate.note and "male 30" in gate.note


def test_the_policy_names_its_approvers_and_refuses_unknown_auto_approval(tmp_path):
    policy = load_promotion_policy()
    assert policy.approvers and policy.auto_approve == "never" and policy.version == "2.1.0"
    assert load_promotion_policy(auto_approve="bootstrap").auto_approve == "bootstrap"
    with pytest.raises(ValueError, match="auto_approve must be one of"):
        load_promotion_policy(auto_approve="sometimes")


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["gates"].update(calibration_tolerance="x"), "gates.calibration_tolerance: expected a number >= 0, got 'x'"),
        (lambda d: d["gates"].pop("calibration_confidence"), "gates.calibration_confidence: missing"),
        (lambda d: d["gates"].update(calibration_confidence=1.5), r"gates.calibration_confidence: expected a number in \[0.5, 0.9999\], got 1.5"),
        (lambda d: d["gates"].update(calibration_max_red_grades=1.5), "gates.calibration_max_red_grades: expected an integer >= 0, got 1.5"),
        (lambda d: d["gates"].update(min_auc=True), "gates.min_auc: expected a number in"),
        (lambda d: d["fairness"].update(when_no_sensitive_attribute="maybe"), "fairness.when_no_sensitive_attribute: expected one of"),
        (lambda d: d["approval"].update(approvers="someone"), "approval.approvers: expected a non-empty list of strings"),
        (lambda d: d.pop("fairness"), "fairness.when_no_sensitive_attribute: missing"),
    ],
)
def test_a_missing_or_mistyped_policy_key_names_the_file_and_the_key(tmp_path, edit, message):
    with pytest.raises(ValueError, match=f"promotion.yaml: {message}"):
        load_promotion_policy(_policy_file(tmp_path, edit))
