import numpy as np
import pandas as pd
import pytest

from riskcore.gates import adverse_impact_ratio, calibration_max_z, evaluate_gates, hosmer_lemeshow_p, load_promotion_policy, psi

RNG = np.random.default_rng(0)
PD = RNG.beta(1.2, 12, 40_000)
Y = (RNG.random(40_000) < PD).astype(int)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift():
    assert psi(PD[:20_000], PD[20_000:]) < 0.01
    assert psi(PD, np.clip(PD * 3, 0, 1)) > 0.25


def test_calibration_tests_accept_calibrated_and_reject_miscalibrated_pds():
    assert hosmer_lemeshow_p(Y, PD) > 0.01 and calibration_max_z(Y, PD) < 3.29
    assert hosmer_lemeshow_p(Y, PD * 0.6) < 1e-6 and calibration_max_z(Y, PD * 0.6) > 5


def test_adverse_impact_ratio_is_lowest_over_highest_approval_rate():
    approved = np.array([1] * 80 + [0] * 20 + [1] * 60 + [0] * 40)
    group = pd.Series(["a"] * 100 + ["b"] * 100)
    ratio, rates = adverse_impact_ratio(approved, group, min_group_size=30)
    assert ratio == pytest.approx(0.6 / 0.8) and rates == {"a": 0.8, "b": 0.6}
    assert adverse_impact_ratio(approved, group, min_group_size=101)[0] is None  # too small to judge


def test_a_challenger_worse_than_the_champion_fails_its_gate():
    policy = load_promotion_policy()
    noisy = np.clip(PD + RNG.normal(0, 0.08, len(PD)), 1e-4, 0.99)  # a weaker model
    sensitive = pd.DataFrame({"sex": np.where(RNG.random(len(PD)) < 0.5, "female", "male")})
    approved = PD < 0.1
    gates = {g.name: g for g in evaluate_gates(policy, Y, noisy, PD, noisy, approved, sensitive, signature_ok=True)}
    assert not gates["auc_vs_champion"].passed and gates["auc_vs_champion"].value < -policy.auc_tolerance
    good = {g.name: g for g in evaluate_gates(policy, Y, PD, noisy, PD, approved, sensitive, signature_ok=True)}
    assert all(g.passed for g in good.values()), [g for g in good.values() if not g.passed]
    unfair = pd.DataFrame({"sex": np.where(PD < 0.05, "female", "male")})  # approvals follow the group
    assert not {g.name: g for g in evaluate_gates(policy, Y, PD, None, PD, approved, unfair, True)}["adverse_impact_ratio"].passed
    assert not {g.name: g for g in evaluate_gates(policy, Y, PD, None, PD, approved, sensitive, False)}["signature_matches_feature_store"].passed


def test_the_policy_names_its_approvers_and_refuses_unknown_auto_approval(tmp_path):
    policy = load_promotion_policy()
    assert policy.approvers and policy.auto_approve == "never"
    assert load_promotion_policy(auto_approve="bootstrap").auto_approve == "bootstrap"
    with pytest.raises(ValueError, match="auto_approve must be one of"):
        load_promotion_policy(auto_approve="sometimes")
