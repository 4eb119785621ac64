import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.drift import ReferenceProfile, build_profile, drift_statistics
from riskcore.features import build_features, feature_specs
from riskcore.ingestion import LandedFile, conform
from riskcore.monitoring_policy import load_monitoring_policy
from riskcore.synthetic import Scenario, applications_frame, generate_month

CONTRACT = load_contract(contract_path("loan_applications.yaml"))
SPECS = feature_specs(CONTRACT)
NUMERIC = [s.name for s in SPECS if s.kind == "numeric"]
CATEGORICAL = [s.name for s in SPECS if s.kind == "categorical"]


def _features(month: str, scenario: Scenario = Scenario(), rows: int = 20_000) -> pd.DataFrame:
    accepted, _ = conform(LandedFile(month, "", 0, applications_frame(generate_month(42, month, rows, scenario))), CONTRACT, month)
    return build_features(accepted, CONTRACT, month)


def test_the_profile_round_trips_byte_for_byte():
    profile = build_profile(_features("2023-01", rows=3000), NUMERIC, CATEGORICAL)
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.to_json() == profile.to_json()
    assert again.rows == 3000 and set(again.numeric) == set(NUMERIC)


def test_distances_match_the_scipy_definitions_evidently_uses():
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 50_000), rng.normal(0.3, 1.2, 50_000)
    profile = build_profile(pd.DataFrame({"x": ref, "c": rng.choice(list("abc"), 50_000, p=[0.5, 0.3, 0.2])}), ["x"], ["c"])
    current = pd.DataFrame({"x": cur, "c": rng.choice(list("abcd"), 50_000, p=[0.3, 0.3, 0.2, 0.2])})
    stats = drift_statistics(profile, current, load_monitoring_policy()).set_index("column")
    assert abs(stats.loc["x", "distance"] - wasserstein_distance(ref, cur) / ref.std()) < 0.01
    expected_js = jensenshannon([0.5, 0.3, 0.2, 0.0], [0.3, 0.3, 0.2, 0.2])
    assert abs(stats.loc["c", "distance"] - expected_js) < 0.01
    assert stats.loc["c", "new_categories"] == "d" and stats.loc["c", "psi_band"] == "shift"


def test_a_stable_month_does_not_drift_and_the_economic_shock_does():
    profile = build_profile(_features("2023-01"), NUMERIC, CATEGORICAL)
    stable = drift_statistics(profile, _features("2023-02"), load_monitoring_policy()).set_index("column")
    assert not stable["drifted"].any() and (stable["psi_band"] == "stable").all(), stable[stable["drifted"]]
    shock = drift_statistics(profile, _features("2024-07", Scenario("economic_shock", start="2024-06")), load_monitoring_policy()).set_index("column")
    assert shock.loc["annual_income", "drifted"] and shock.loc["credit_utilisation", "drifted"]
    assert not shock.loc["loan_purpose", "drifted"] and not shock.loc["loan_term_months", "drifted"]


def test_a_new_segment_is_named():
    profile = build_profile(_features("2023-01"), NUMERIC, CATEGORICAL)
    segment = drift_statistics(profile, _features("2024-07", Scenario("new_segment", start="2024-06")), load_monitoring_policy()).set_index("column")
    assert segment.loc["channel", "new_categories"] == "partner_api" and segment.loc["channel", "drifted"]
    assert segment.loc["credit_history_years", "drifted"]


def test_retraining_needs_persistent_drift_and_respects_the_cooldown():
    from riskcore.drift import retraining_decision

    policy = load_monitoring_policy()  # persistence 2, cooldown 3, drifted month from 10% of features
    quiet = {f"2024-{m:02d}": 0.0 for m in range(1, 13)}
    assert retraining_decision(quiet, None, policy)[0] is None
    shock = {**quiet, "2024-06": 0.25}
    month, why = retraining_decision({k: v for k, v in shock.items() if k <= "2024-06"}, None, policy)
    assert month is None and "did not persist: 2024-05" in why  # flagged at X, not launched at X
    persisted = {**{k: v for k, v in quiet.items() if k <= "2024-05"}, "2024-06": 0.25, "2024-07": 0.3}
    assert retraining_decision(persisted, None, policy) == ("2024-07", "drift persisted 2 months (2024-06, 2024-07)")
    second = {**persisted, "2024-08": 0.3, "2024-09": 0.4}
    month, why = retraining_decision(second, "2024-07", policy)
    assert month is None and why.startswith("cooldown: last retraining launched for 2024-07")
    assert retraining_decision({**second, "2024-10": 0.4}, "2024-07", policy)[0] == "2024-10"
    gap = {"2024-06": 0.3, "2024-08": 0.3}
    assert "no drift report for 2024-07" in retraining_decision(gap, None, policy)[1]
