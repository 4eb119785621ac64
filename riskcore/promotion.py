"""Who may promote what: the rules, apart from the registry and the ledger that carry them out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from riskcore.yamlfile import load_policy_mapping

AUTO_APPROVER = "auto-approval"
DEFAULT_PROMOTION_POLICY = Path(__file__).parent / "policies" / "promotion.yaml"
AUTO_APPROVE = ("never", "bootstrap", "always")
# override, referral_decision, confirm: a review decision's ledger entry (services only); canary, advance: a staged rollout's start and steps (approvers)
ACTIONS = ("approve", "reject", "rollback", "override", "referral_decision", "confirm", "canary", "advance")
NO_SENSITIVE_ATTRIBUTE = ("pass", "refuse")


@dataclass(frozen=True)
class PromotionPolicy:
    policy_id: str
    version: str
    auc_tolerance: float
    min_auc: float
    min_ks: float
    calibration_confidence: float
    calibration_tolerance: float
    calibration_max_red_grades: int
    calibration_min_expected_defaults: float
    max_score_psi: float
    min_adverse_impact_ratio: float
    min_group_size: int
    when_no_sensitive_attribute: str
    approvers: tuple[str, ...]
    auto_approve: str
    rollback: tuple[str, ...] = ()
    services: dict[str, tuple[str, ...]] = field(default_factory=dict)
    signature_max_age_hours: float = 24.0

    def may(self, identity: str, action: str) -> bool:
        """Approvers approve, reject, start and advance a rollout; the rollback list rolls back (a champion
        or a rollout); a service only what it lists."""
        people = {"approve": self.approvers, "reject": self.approvers, "canary": self.approvers, "advance": self.approvers, "rollback": self.rollback}
        people = people.get(action, ())
        return identity in people or action in self.services.get(identity, ())

    def allowed(self, action: str) -> list[str]:
        return [i for i in dict.fromkeys([*self.approvers, *self.rollback, *self.services]) if self.may(i, action)]

    @property
    def label(self) -> str:
        return f"{self.policy_id}@{self.version}"


def load_promotion_policy(path: str | Path = DEFAULT_PROMOTION_POLICY, auto_approve: str | None = None) -> PromotionPolicy:
    """`auto_approve` overrides the file's setting: the environment decides (development only)."""
    doc, get = load_policy_mapping(path)
    file_auto_approve = get("approval.auto_approve", AUTO_APPROVE)
    if auto_approve is not None and auto_approve not in AUTO_APPROVE:
        raise ValueError(f"{path}: auto_approve must be one of {AUTO_APPROVE}, not {auto_approve!r}")
    return PromotionPolicy(
        policy_id=get("policy_id", str),
        version=get("version", str),
        auc_tolerance=get("gates.auc_tolerance_vs_champion", float, 0),
        min_auc=get("gates.min_auc", float, 0, 1),
        min_ks=get("gates.min_ks", float, 0, 1),
        calibration_confidence=get("gates.calibration_confidence", float, 0.5, 0.9999),
        calibration_tolerance=get("gates.calibration_tolerance", float, 0),
        calibration_max_red_grades=get("gates.calibration_max_red_grades", int, 0),
        calibration_min_expected_defaults=get("gates.calibration_min_expected_defaults", float, 1),
        max_score_psi=get("gates.max_score_psi", float, 0),
        min_adverse_impact_ratio=get("gates.min_adverse_impact_ratio", float, 0, 1),
        min_group_size=get("gates.min_group_size", int, 1),
        when_no_sensitive_attribute=get("fairness.when_no_sensitive_attribute", NO_SENSITIVE_ATTRIBUTE),
        approvers=get("approval.approvers", list),
        auto_approve=auto_approve or file_auto_approve,
        rollback=get("approval.rollback", list),
        services=_services(doc.get("approval", {}).get("services") or {}, path),
        signature_max_age_hours=get("approval.signature_max_age_hours", float, 0.01, 24 * 30),
    )


def _services(section, path) -> dict[str, tuple[str, ...]]:
    """Service identities (sensors) and the actions each may take: nothing beyond what is listed."""
    if not isinstance(section, dict):
        raise ValueError(f"{path}: approval.services: expected a mapping of identity to actions, got {section!r}")
    for identity, actions in section.items():
        if not isinstance(actions, list) or not actions or any(a not in ACTIONS for a in actions):
            raise ValueError(f"{path}: approval.services.{identity}: expected a non-empty list of actions among {ACTIONS}, got {actions!r}")
    return {identity: tuple(actions) for identity, actions in section.items()}


class PromotionRefused(PermissionError):
    """A promotion, approval or rollback that the policy does not allow; nothing was changed."""


def check_authority(policy: PromotionPolicy, identity: str, action: str) -> None:
    if not policy.may(identity, action):
        raise PromotionRefused(f"{identity!r} may not {action} under {policy.label}; who may: {', '.join(policy.allowed(action)) or 'no one'}")


def check_gates(version_label: str, tags: dict[str, str]) -> None:
    """A challenger that failed any gate is never promoted, whatever the approval says."""
    if tags.get("gates_passed") != "true":
        failed = [k.removeprefix("gate.") for k, v in sorted(tags.items()) if k.startswith("gate.") and " FAIL " in v]
        why = f"failed gates: {', '.join(failed)}" if failed else "its gates were never evaluated (materialise model_evaluation)"
        raise PromotionRefused(f"{version_label} cannot be promoted: {why}")


def auto_approval(policy: PromotionPolicy, has_champion: bool) -> str | None:
    """The auto-approval that applies now, if any: its name is the actor the ledger records."""
    if policy.auto_approve == "always" or (policy.auto_approve == "bootstrap" and not has_champion):
        return f"{AUTO_APPROVER} ({policy.auto_approve}, development policy {policy.label})"
    return None
