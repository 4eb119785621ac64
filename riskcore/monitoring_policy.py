"""The monitoring policy: how drift is read, how performance is estimated before labels mature, and
when either acts (retraining, rollback, an early warning). Light on purpose: the code location
checks every portfolio's policy at load, without numpy or pandas."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from riskcore.yamlfile import load_yaml


@dataclass(frozen=True)
class MonitoringPolicy:
    label: str
    investigate: float
    shift: float
    psi_floor: float  # a column drifted only from this PSI on (material)...
    false_alarm_rate: float  # ...and when sampling noise reaches its PSI with less than this probability
    sample_rows: int
    drifted_month_min_share: float = 0.1
    persistence: int = 2
    cooldown_months: int = 3
    auc_tolerance: float = 0.02
    auc_floor: float = 0.65
    min_matured_months: int = 1
    confidence: float = 0.95  # estimated performance: bounds cover the realised value with this probability if calibration holds
    auc_warning_drop: float = 0.03
    default_rate_warning_ratio: float = 1.2
    # the stability pack: frozen score bands in points, [edge i, edge i + 1), and the per-band calibration test
    score_bands: tuple[float, ...] = field(kw_only=True)
    calibration_confidence: float = field(kw_only=True)
    calibration_tolerance: float = field(kw_only=True)
    calibration_min_expected_defaults: float = field(kw_only=True)


def load_monitoring_policy(path=None) -> MonitoringPolicy:
    path = Path(path) if path else Path(__file__).parent / "policies" / "monitoring.yaml"
    doc = load_yaml(path.read_text())
    retraining, performance, drift = doc.get("retraining", {}), doc.get("performance", {}), doc["drift"]
    floor, rate = float(drift["psi_floor"]), float(drift["false_alarm_rate"])
    stability = doc["stability"]
    bands, calibration = tuple(float(b) for b in stability["score_bands"]), stability["calibration"]
    if len(bands) < 2 or any(lo >= hi for lo, hi in zip(bands, bands[1:])):
        raise ValueError(f"stability.score_bands must be at least two increasing points, not {list(bands)}")
    if floor < 0 or not 0 < rate < 1:
        raise ValueError(f"drift: psi_floor must be at least 0 and false_alarm_rate between 0 and 1 (exclusive), not {floor} and {rate}")
    confidence, drop, ratio = (
        _number(doc, "estimation", key, default) for key, default in (("confidence", 0.95), ("auc_warning_drop", 0.03), ("default_rate_warning_ratio", 1.2))
    )
    if not 0 < confidence < 1:
        raise ValueError(f"estimation.confidence must be between 0 and 1 (exclusive), not {confidence}")
    if drop < 0:
        raise ValueError(f"estimation.auc_warning_drop must be at least 0, not {drop}")
    if ratio <= 1:
        raise ValueError(f"estimation.default_rate_warning_ratio must be above 1 (a rise), not {ratio}")
    return MonitoringPolicy(
        f"{doc['policy_id']}@{doc['version']}",
        float(doc["psi"]["investigate"]),
        float(doc["psi"]["shift"]),
        floor,
        rate,
        int(doc["evidently_sample_rows"]),
        float(retraining.get("drifted_month_min_share", 0.1)),
        int(retraining.get("persistence", 2)),
        int(retraining.get("cooldown_months", 3)),
        float(performance.get("auc_tolerance", 0.02)),
        float(performance.get("auc_floor", 0.65)),
        int(performance.get("min_matured_months", 1)),
        confidence,
        drop,
        ratio,
        score_bands=bands,
        calibration_confidence=float(calibration["confidence"]),
        calibration_tolerance=float(calibration["tolerance"]),
        calibration_min_expected_defaults=float(calibration["min_expected_defaults"]),
    )


def _number(doc: dict, section: str, key: str, default: float) -> float:
    """`section.key` as a number (the default when absent); an error that names the key otherwise."""
    value = (doc.get(section) or {}).get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{section}.{key} must be a number, not {value!r}")
    return float(value)
