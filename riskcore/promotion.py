"""Who may promote what: the rules, apart from the registry and the ledger that carry them out."""

from __future__ import annotations

from riskcore.gates import PromotionPolicy

AUTO_APPROVER = "auto-approval"


class PromotionRefused(PermissionError):
    """A promotion, approval or rollback that the policy does not allow; nothing was changed."""


def check_approver(policy: PromotionPolicy, approver: str) -> None:
    if approver not in policy.approvers:
        raise PromotionRefused(f"{approver!r} may not approve under {policy.label}; approvers: {', '.join(policy.approvers)}")


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
