"""The training policy: when and how the fit samples the training window. Light on purpose (no numpy
or pandas): the code location checks every portfolio's policies at load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riskcore.yamlfile import load_policy_mapping

DEFAULT_TRAINING_POLICY = Path(__file__).parent / "policies" / "training.yaml"


@dataclass(frozen=True)
class TrainingPolicy:
    policy_id: str
    version: str
    max_rows: int  # train rows the fit holds at most; above, a weighted sample of this size
    seed: int

    @property
    def label(self) -> str:
        return f"{self.policy_id}@{self.version}"


def load_training_policy(path: str | Path = DEFAULT_TRAINING_POLICY) -> TrainingPolicy:
    _, get = load_policy_mapping(path)
    return TrainingPolicy(
        policy_id=get("policy_id", str),
        version=get("version", str),
        max_rows=get("sample.max_rows", int, 1000),
        seed=get("sample.seed", int, 0),
    )
