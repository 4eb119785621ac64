"""The offline feature store's contract: which columns are features, of what kind, in which version.

Caps (winsorising bounds declared in the contract) are applied here, where model inputs are
built: they are part of the feature set's version and every clip is counted, never silent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskcore.contract import Cap, Contract
from riskcore.months import month_label

# Bump when the code that turns applications into features changes meaning.
FEATURE_CODE_VERSION = "1"
MONTH_COLUMN = "application_month"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: str  # "numeric" | "categorical"
    reason_code: str
    reason_text: str


def feature_specs(contract: Contract) -> list[FeatureSpec]:
    specs = []
    for f in contract.features:
        if f.reason is None:
            raise ValueError(f"contract {contract.id}: feature {f.name!r} declares no reason code (needed for adverse action)")
        specs.append(FeatureSpec(f.name, "categorical" if f.is_categorical else "numeric", f.reason.code, f.reason.text))
    return specs


def caps(contract: Contract) -> dict[str, Cap]:
    """The features the contract caps, in feature order."""
    return {f.name: f.cap for f in contract.features if f.cap is not None}


def feature_set_version(contract: Contract) -> str:
    """Changes whenever a feature's name, kind, derivation or cap changes, so models and scores pin it."""
    payload = {
        "code": FEATURE_CODE_VERSION,
        "features": [[s.name, s.kind] for s in feature_specs(contract)],
        "derived": [[d.name, d.expression, d.function, list(d.args)] for d in contract.derived],
    }
    capped = caps(contract)
    if capped:  # only when declared: versions of contracts without caps stay as they were
        payload["caps"] = {name: [cap.lower, cap.upper] for name, cap in capped.items()}
    return "fs-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def feature_inputs(contract: Contract) -> list[str]:
    """The applications' columns `build_features` and `clipped_by_caps` read: the id and the features
    (a month's applications also hold six token columns of a million distinct values each)."""
    return [contract.only("id"), *(s.name for s in feature_specs(contract))]


def build_features(applications: pd.DataFrame, contract: Contract, month: str) -> pd.DataFrame:
    """Key, month and model inputs only: no PII tokens, no sensitive attributes, no target.

    Capped features are clipped to their bounds; `clipped_by_caps` counts what that changed."""
    id_column = contract.only("id")
    bounds = caps(contract)
    out = pd.DataFrame({id_column: applications[id_column].astype("string"), MONTH_COLUMN: month_label(month)})
    for spec in feature_specs(contract):
        values = applications[spec.name]
        if spec.kind == "categorical":
            out[spec.name] = values.astype("string")
        elif spec.name in bounds:
            out[spec.name] = values.astype("float64").clip(bounds[spec.name].lower, bounds[spec.name].upper)
        else:
            out[spec.name] = values.astype("float64")
    return out


def clipped_by_caps(applications: pd.DataFrame, contract: Contract) -> dict[str, dict[str, int]]:
    """Per capped feature, how many values `build_features` clips at each declared bound
    ({"annual_income": {"lower": 0, "upper": 12}}): the record that keeps a cap from being silent."""
    counts = {}
    for name, cap in caps(contract).items():
        values = applications[name].astype("float64")
        counts[name] = {}
        if cap.lower is not None:
            counts[name]["lower"] = int((values < cap.lower).sum())
        if cap.upper is not None:
            counts[name]["upper"] = int((values > cap.upper).sum())
    return counts


def model_matrix(features: pd.DataFrame, specs: list[FeatureSpec]) -> pd.DataFrame:
    """What a model sees: numeric as float with NaN, categoricals as object with None."""
    out = {}
    for spec in specs:
        col = features[spec.name]
        if spec.kind == "categorical":
            out[spec.name] = col.astype("object").where(col.notna(), None)
        else:
            out[spec.name] = pd.to_numeric(col, errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
    return pd.DataFrame(out, index=features.index)
