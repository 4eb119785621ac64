"""The decision policy: how a PD becomes score points and a decision. Light on purpose: the
code location checks every portfolio's policy at load, without the model's libraries."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from riskcore.yamlfile import load_yaml

if TYPE_CHECKING:
    import numpy as np

DEFAULT_POLICY = Path(__file__).parent / "policies" / "decision.yaml"
PD_FLOOR = 1e-6


@dataclass(frozen=True)
class ScoreScaling:
    """points = offset + factor * ln(good:bad odds), factor = PDO / ln 2."""

    base_points: float = 600.0
    base_odds: float = 50.0
    pdo: float = 20.0

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2)

    @property
    def offset(self) -> float:
        return self.base_points - self.factor * math.log(self.base_odds)

    def points(self, pd_: np.ndarray) -> np.ndarray:
        import numpy as np

        p = np.clip(np.asarray(pd_, dtype="float64"), PD_FLOOR, 1 - PD_FLOOR)
        return self.offset + self.factor * np.log((1 - p) / p)


@dataclass(frozen=True)
class DecisionPolicy:
    policy_id: str
    version: str
    scaling: ScoreScaling
    approve_min_score: float
    refer_min_score: float
    max_reason_codes: int = 4

    @property
    def label(self) -> str:
        return f"{self.policy_id}@{self.version}"

    def decide(self, points: np.ndarray) -> np.ndarray:
        import numpy as np

        points = np.asarray(points)
        return np.where(points >= self.approve_min_score, "approve", np.where(points >= self.refer_min_score, "refer", "decline"))

    def points(self, pd_: np.ndarray) -> np.ndarray:
        """Whole points, as printed on the decision and compared with the cut-offs."""
        import numpy as np

        return np.rint(self.scaling.points(pd_)).astype("int64")


def load_policy(path: str | Path = DEFAULT_POLICY) -> DecisionPolicy:
    doc = load_yaml(Path(path).read_text())
    policy = DecisionPolicy(
        policy_id=doc["policy_id"],
        version=str(doc["version"]),
        scaling=ScoreScaling(**doc["score_scaling"]),
        approve_min_score=float(doc["decision"]["approve_min_score"]),
        refer_min_score=float(doc["decision"]["refer_min_score"]),
        max_reason_codes=int(doc.get("max_reason_codes", 4)),
    )
    if policy.refer_min_score > policy.approve_min_score:
        raise ValueError(f"{path}: refer_min_score must not exceed approve_min_score")
    if not 0 < policy.max_reason_codes <= 4:
        raise ValueError(f"{path}: max_reason_codes must be 1..4 (Reg B asks for at most four)")
    return policy
