import math

import numpy as np
import pandas as pd
import pytest

from riskcore.model import reason_codes
from riskcore.scoring import ScoreScaling, load_policy


def test_pdo_scaling_matches_the_textbook_example():
    scaling = ScoreScaling(base_points=600, base_odds=50, pdo=20)
    assert scaling.factor == pytest.approx(28.8539, abs=1e-4)
    assert scaling.offset == pytest.approx(487.123, abs=1e-3)
    pd_at_50_to_1 = 1 / 51
    assert scaling.points(np.array([pd_at_50_to_1]))[0] == pytest.approx(600.0)
    pd_at_100_to_1 = 1 / 101
    assert scaling.points(np.array([pd_at_100_to_1]))[0] == pytest.approx(620.0)
    assert scaling.points(np.array([0.5]))[0] == pytest.approx(487.123, abs=1e-3)


def test_policy_decisions_follow_the_score_bands():
    policy = load_policy()
    assert policy.label.startswith("retail-loan-decision@")
    points = np.array([policy.approve_min_score, policy.approve_min_score - 1, policy.refer_min_score, policy.refer_min_score - 1])
    assert policy.decide(points).tolist() == ["approve", "refer", "refer", "decline"]


def test_reason_codes_are_the_largest_adverse_contributions_in_order():
    contributions = pd.DataFrame(
        [
            [0.9, -0.2, 0.1, 0.5, 0.3, 0.05],  # adverse above reference: a .9, d .5, e .3, c .1, f .05
            [0.0, 0.0, 0.0, 0.4, 0.0, 0.2],
        ],  # only two adverse factors
        columns=list("abcdef"),
    )
    reference = np.zeros(6)
    first, second = reason_codes(contributions, reference, k=4).tolist()
    assert first == ["a", "d", "e", "c"]
    assert second == ["d", "f", None, None]


def test_reason_codes_are_relative_to_the_average_applicant():
    contributions = pd.DataFrame([[1.0, 0.6]], columns=["x", "y"])
    (row,) = reason_codes(contributions, np.array([0.9, 0.1]), k=4).tolist()
    assert row == ["y", "x", None, None]  # y is 0.5 above average, x only 0.1; padded to k


def test_scaling_is_monotone_and_finite_at_the_extremes():
    points = ScoreScaling().points(np.array([0.0, 1e-4, 0.5, 0.9999, 1.0]))
    assert np.all(np.isfinite(points)) and np.all(np.diff(points) < 0)
    assert math.isclose(points[2], ScoreScaling().offset)


def test_scores_carry_the_models_pd_from_one_pass_of_its_transform():
    from checks import contract_path
    from riskcore.contract import load_contract
    from riskcore.features import build_features, feature_specs, model_matrix
    from riskcore.ingestion import LandedFile, conform
    from riskcore.model import train_scorecard
    from riskcore.scoring import load_policy, score
    from riskcore.synthetic import applications_frame, generate_month

    contract = load_contract(contract_path("loan_applications.yaml"))
    month = generate_month(7, "2023-01", 4000)
    accepted, _ = conform(LandedFile("m", "", 0, applications_frame(month)), contract, "2023-01")
    specs, features = feature_specs(contract), build_features(accepted, contract, "2023-01")
    model = train_scorecard(model_matrix(features, specs).assign(defaulted=month["defaulted"].to_numpy()[: len(features)]), "defaulted", specs)
    policy = load_policy()
    scores = score(features, "application_id", model, specs, policy, {"model_version": "1"})
    expected = model.predict_pd(model_matrix(features, specs))
    np.testing.assert_allclose(scores["pd"].to_numpy(), expected, rtol=1e-12, atol=1e-15)
    assert (scores["decision"].to_numpy() == policy.decide(policy.points(expected))).all()
    adverse = reason_codes(model.logit_contributions(model_matrix(features, specs)), model.reference_contributions_, k=policy.max_reason_codes)
    code_of, text_of = {s.name: s.reason_code for s in specs}, {s.name: s.reason_text for s in specs}
    for i in range(policy.max_reason_codes):
        for column, label_of in ((f"reason_code_{i + 1}", code_of), (f"reason_text_{i + 1}", text_of)):
            assert [None if pd.isna(v) else v for v in scores[column].tolist()] == [label_of.get(name) for name in adverse[:, i]]
    assert scores["reason_code_1"].notna().any() and scores["reason_code_4"].isna().any()
    assert score(features, "application_id", model, specs, policy, {"model_version": "1"}).equals(scores)  # same inputs, same scores
