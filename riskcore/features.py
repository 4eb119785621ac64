"""The offline feature store's contract: which columns are features, of what kind, in which version."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskcore.contract import Contract
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


def feature_set_version(contract: Contract) -> str:
    """Changes whenever a feature's name, kind or derivation changes, so models and scores pin it."""
    payload = {
        "code": FEATURE_CODE_VERSION,
        "features": [[s.name, s.kind] for s in feature_specs(contract)],
        "derived": [[d.name, d.expression, d.function, list(d.args)] for d in contract.derived],
    }
    return "fs-" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]


def build_features(applications: pd.DataFrame, contract: Contract, month: str) -> pd.DataFrame:
    """Key, month and model inputs only: no PII tokens, no sensitive attributes, no target."""
    id_column = contract.only("id")
    out = pd.DataFrame({id_column: applications[id_column].astype("string"), MONTH_COLUMN: month_label(month)})
    for spec in feature_specs(contract):
        values = applications[spec.name]
        out[spec.name] = values.astype("string") if spec.kind == "categorical" else values.astype("float64")
    return out


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
