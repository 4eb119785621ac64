"""From PD to points, decision and reasons, under a versioned decision policy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskcore.decision_policy import DecisionPolicy, ScoreScaling, load_policy  # noqa: F401 - the policy's home; callers import it here too
from riskcore.features import FeatureSpec, model_matrix
from riskcore.lineage import repeated
from riskcore.model import PDScorecard, reason_positions


def score(
    features: pd.DataFrame, id_column: str, model: PDScorecard, specs: list[FeatureSpec], policy: DecisionPolicy, lineage: dict[str, str]
) -> pd.DataFrame:
    """One row per application: PD, points, decision, reasons, and the lineage of the decision.

    The PD comes from the contributions the reasons are read from: one pass of the model's feature
    transform per month, not one for the PD and another for the reasons. Text columns are pandas
    categoricals (a month holds a few distinct decisions, reasons and one lineage): no Python
    string per row to build, and none to convert when the month is written (stored as text)."""
    X = model_matrix(features, specs)
    contributions = model.logit_contributions(X)
    pd_ = model.pd_from_contributions(contributions)
    points = policy.points(pd_)
    out = pd.DataFrame({id_column: features[id_column].to_numpy(), "pd": pd_, "score_points": points, "decision": pd.Categorical(policy.decide(points))})
    reasons = reason_positions(contributions, model.reference_contributions_, k=policy.max_reason_codes)
    codes = {s.name: s.reason_code for s in specs}
    texts = {s.name: s.reason_text for s in specs}
    for i in range(policy.max_reason_codes):
        named = pd.Categorical.from_codes(reasons[:, i], categories=list(contributions.columns))
        out[f"reason_code_{i + 1}"] = _relabelled(named, codes)
        out[f"reason_text_{i + 1}"] = _relabelled(named, texts)
    for key, value in {"policy_version": policy.label, **lineage}.items():
        out[key] = repeated(value, len(out))
    return out


def _relabelled(named: pd.Categorical, label_of: dict[str, str]) -> pd.Categorical:
    """`label_of` each category of `named` (labels may repeat; a missing value stays missing)."""
    labels = pd.Index(list(dict.fromkeys(label_of.values())))
    code_of = np.append(labels.get_indexer([label_of[c] for c in named.categories]), -1)  # code -1 (missing) picks the trailing -1
    return pd.Categorical.from_codes(code_of[named.codes], categories=labels)
