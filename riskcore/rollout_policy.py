"""The staged-rollout policy: steps, assignment and per-step gates. Light on purpose (no numpy or
pandas): the code location checks every portfolio's policies at load."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from riskcore.yamlfile import load_policy_mapping

DEFAULT_ROLLOUT_POLICY = Path(__file__).parent / "policies" / "rollout.yaml"
ANY_KEY = "any"


@dataclass(frozen=True)
class RolloutPolicy:
    policy_id: str
    version: str
    steps: tuple[float, ...]  # increasing shares, the last 1.0
    key_id: str  # ANY_KEY or the 8-hex id of the one assignment key allowed
    share_tolerance_sigmas: float
    min_cell_decisions: int
    min_estimated_auc: float
    estimated_auc_tolerance: float
    min_matured_defaults: int
    min_realised_auc: float
    realised_auc_tolerance: float
    min_adverse_impact_ratio: float
    min_group_size: int

    @property
    def label(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def share(self, step: int) -> float:
        """The share of applicants the challenger decides at `step` (1-based; 0: none)."""
        return 0.0 if step == 0 else self.steps[step - 1]

    def step_label(self, step: int) -> str:
        return "champion only" if step == 0 else f"step {step}/{len(self.steps)} ({self.share(step):.0%})"


def load_rollout_policy(path: str | Path = DEFAULT_ROLLOUT_POLICY) -> RolloutPolicy:
    """Every key checked, errors naming the file and the key: a half-read policy would gate nothing."""
    doc, get = load_policy_mapping(path)
    steps = doc.get("steps")
    if not (
        isinstance(steps, list)
        and steps
        and all(isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s <= 1 for s in steps)
        and all(a < b for a, b in zip(steps, steps[1:]))
        and steps[-1] == 1
    ):
        raise ValueError(f"{path}: steps: expected increasing shares in (0, 1], the last 1.0 (the promotion), got {steps!r}")
    key_id = get("assignment.key_id", str)
    if key_id != ANY_KEY and not re.fullmatch(r"[0-9a-f]{8}", key_id):
        raise ValueError(f"{path}: assignment.key_id: expected {ANY_KEY!r} or the 8-hex id of the assignment key, got {key_id!r}")
    return RolloutPolicy(
        policy_id=get("policy_id", str),
        version=get("version", str),
        steps=tuple(float(s) for s in steps),
        key_id=key_id,
        share_tolerance_sigmas=get("assignment.share_tolerance_sigmas", float, 1),
        min_cell_decisions=get("gates.min_cell_decisions", int, 1),
        min_estimated_auc=get("gates.min_estimated_auc", float, 0, 1),
        estimated_auc_tolerance=get("gates.estimated_auc_tolerance_vs_champion", float, 0, 1),
        min_matured_defaults=get("gates.min_matured_defaults", int, 1),
        min_realised_auc=get("gates.min_realised_auc", float, 0, 1),
        realised_auc_tolerance=get("gates.realised_auc_tolerance_vs_champion", float, 0, 1),
        min_adverse_impact_ratio=get("gates.min_adverse_impact_ratio", float, 0, 1),
        min_group_size=get("gates.min_group_size", int, 1),
    )
