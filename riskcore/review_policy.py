"""The review policy: controlled reasons, four eyes, service level and override band. Light on
purpose (no numpy or pandas): the code location checks every portfolio's policies at load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riskcore.yamlfile import load_policy_mapping

DEFAULT_REVIEW_POLICY = Path(__file__).parent / "policies" / "review.yaml"
DECISIONS = ("approve", "decline")


@dataclass(frozen=True)
class ReviewPolicy:
    policy_id: str
    version: str
    reasons: dict[str, dict[str, str]]  # decision -> reason code -> text
    four_eyes_min_amount: float
    amount_feature: str
    segment_feature: str
    sla_days: int
    override_rate_band: tuple[float, float]
    note_max_chars: int
    referrals_count_as_overrides: bool  # False: deciding the refer band is the decision policy's hand-over to people, not an override

    @property
    def label(self) -> str:
        return f"{self.policy_id}@{self.version}"


def load_review_policy(path: str | Path = DEFAULT_REVIEW_POLICY) -> ReviewPolicy:
    """Every key checked, errors naming the file and the key: a half-read policy would control nothing."""
    doc, get = load_policy_mapping(path)
    band = doc.get("override_rate_band")
    if not (
        isinstance(band, list)
        and len(band) == 2
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in band)
        and 0 <= band[0] <= band[1] <= 1
    ):
        raise ValueError(f"{path}: override_rate_band: expected [low, high] with 0 <= low <= high <= 1, got {band!r}")
    referrals = doc.get("referrals_count_as_overrides")
    if not isinstance(referrals, bool):
        raise ValueError(f"{path}: referrals_count_as_overrides: expected true or false, got {referrals!r}")
    return ReviewPolicy(
        policy_id=get("policy_id", str),
        version=get("version", str),
        reasons={decision: _reasons(doc, decision, path) for decision in DECISIONS},
        four_eyes_min_amount=get("four_eyes_min_amount", float, 0),
        amount_feature=get("amount_feature", str),
        segment_feature=get("segment_feature", str),
        sla_days=get("sla_days", int, 1),
        override_rate_band=(float(band[0]), float(band[1])),
        note_max_chars=get("note_max_chars", int, 1, 100_000),
        referrals_count_as_overrides=referrals,
    )


def _reasons(doc: dict, decision: str, path) -> dict[str, str]:
    reasons = (doc.get("reasons") or {}).get(decision) if isinstance(doc.get("reasons"), dict) else None
    if not isinstance(reasons, dict) or not reasons or not all(isinstance(k, str) and isinstance(v, str) and k and v for k, v in reasons.items()):
        raise ValueError(f"{path}: reasons.{decision}: expected a non-empty mapping of reason code to text, got {reasons!r}")
    return dict(reasons)
