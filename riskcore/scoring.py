"""From PD to points, decision and reasons, under a versioned decision policy."""

from __future__ import annotations

import pandas as pd

from riskcore.decision_policy import DecisionPolicy, ScoreScaling, load_policy  # noqa: F401 - the policy's home; callers import it here too
from riskcore.features import FeatureSpec, model_matrix
from riskcore.model import PDScorecard, reason_codes


def score(
    features: pd.DataFrame, id_column: str, model: PDScorecard, specs: list[FeatureSpec], policy: DecisionPolicy, lineage: dict[str, str]
) -> pd.DataFrame:
    """One row per application: PD, points, decision, reasons, and the lineage of the decision.

    The PD comes from the contributions the reasons are read from: one pass of the model's feature
    transform per month, not one for the PD and another for the reasons."""
    X = model_matrix(features, specs)
    contributions = model.logit_contributions(X)
    pd_ = model.pd_from_contributions(contributions)
    points = policy.points(pd_)
    out = pd.DataFrame({id_column: features[id_column].to_numpy(), "pd": pd_, "score_points": points, "decision": policy.decide(points)})
    reasons = pd.DataFrame(reason_codes(contributions, model.reference_contributions_, k=policy.max_reason_codes))
    codes = {s.name: s.reason_code for s in specs}
    texts = {s.name: s.reason_text for s in specs}
    for i in range(policy.max_reason_codes):
        out[f"reason_code_{i + 1}"] = reasons[i].map(codes).astype("string").to_numpy()
        out[f"reason_text_{i + 1}"] = reasons[i].map(texts).astype("string").to_numpy()
    out["policy_version"] = policy.label
    for key, value in lineage.items():
        out[key] = value
    return out
