"""The monitoring policy: how drift is read and when it acts (retraining, rollback). Light on
purpose: the code location checks every portfolio's policy at load, without numpy or pandas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riskcore.yamlfile import load_yaml


@dataclass(frozen=True)
class MonitoringPolicy:
    label: str
    investigate: float
    shift: float
    distance_threshold: float
    sample_rows: int
    drifted_month_min_share: float = 0.1
    persistence: int = 2
    cooldown_months: int = 3
    auc_tolerance: float = 0.02
    auc_floor: float = 0.65
    min_matured_months: int = 1


def load_monitoring_policy(path=None) -> MonitoringPolicy:
    path = Path(path) if path else Path(__file__).parent / "policies" / "monitoring.yaml"
    doc = load_yaml(path.read_text())
    retraining, performance = doc.get("retraining", {}), doc.get("performance", {})
    return MonitoringPolicy(
        f"{doc['policy_id']}@{doc['version']}",
        float(doc["psi"]["investigate"]),
        float(doc["psi"]["shift"]),
        float(doc["distance_threshold"]),
        int(doc["evidently_sample_rows"]),
        float(retraining.get("drifted_month_min_share", 0.1)),
        int(retraining.get("persistence", 2)),
        int(retraining.get("cooldown_months", 3)),
        float(performance.get("auc_tolerance", 0.02)),
        float(performance.get("auc_floor", 0.65)),
        int(performance.get("min_matured_months", 1)),
    )
