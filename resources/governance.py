"""The governance ledger and the promotion policy, as one resource."""

import contextlib
from pathlib import Path

import dagster as dg

from resources.registry import CHAMPION, PREVIOUS_CHAMPION, ModelRegistry, RegisteredModel
from resources.storage import absolute_sqlite_url
from riskcore.promotion import DEFAULT_PROMOTION_POLICY, PromotionPolicy, PromotionRefused, auto_approval, check_approver, check_gates, load_promotion_policy


class Governance(dg.ConfigurableResource):
    """Local: a SQLite ledger file. Production: PostgreSQL (`RISK_LEDGER_URL`, an EnvVar)."""

    ledger_url: str
    promotion_policy: str = str(DEFAULT_PROMOTION_POLICY.name)
    auto_approve: str | None = None  # overrides the policy file's setting (development only)
    # HMAC key of the ledger's entries (RISK_LEDGER_KEY, an EnvVar): a key the database does not hold,
    # so whoever holds the database credentials cannot rewrite the trail unseen. None: plain SHA-256.
    ledger_key: str | None = None

    def ledger(self):
        from riskcore.ledger import Ledger  # SQLAlchemy: at run time, not when the code location loads

        return Ledger.from_url(absolute_sqlite_url(self.ledger_url), key=self.ledger_key)

    def policy(self) -> PromotionPolicy:
        candidate = Path(self.promotion_policy)
        path = candidate if candidate.is_file() else DEFAULT_PROMOTION_POLICY.parent / self.promotion_policy
        return load_promotion_policy(path, auto_approve=self.auto_approve)

    def promote(self, registry: ModelRegistry, version: str, approver: str | None, reason: str, run_id: str | None = None) -> RegisteredModel:
        """Make `version` champion, the old one previous_champion. Needs passed gates and a listed
        approver (or an auto-approval the policy grants); serialised through the ledger's lock,
        so two racing promotions happen one after the other and both are recorded in order."""
        policy = self.policy()
        label = f"{registry.model_name}/{version}"
        with self.ledger().exclusive() as record, _registry_calls(label):
            current = registry.by_alias(CHAMPION)
            if current is not None and current.version == version:
                raise PromotionRefused(f"{label} is already champion")
            bootstrap = approver is None and policy.auto_approve == "bootstrap" and current is None
            if approver is None:
                approver = auto_approval(policy, current is not None)
                if approver is None:
                    raise PromotionRefused(f"{label} needs an approver: policy {policy.label} does not auto-approve it")
            else:
                check_approver(policy, approver)
            tags = registry.version_tags(version)
            if not bootstrap:
                check_gates(label, tags)
            payload = {
                "reason": reason,
                "policy": policy.label,
                "gates_passed": tags.get("gates_passed", "not evaluated"),
                "previous": current.label if current else None,
                "dagster_run_id": run_id,
            }
            record("approval", label, approver, payload)
            if current is not None:
                registry.set_alias(PREVIOUS_CHAMPION, current.version)
            registry.set_alias(CHAMPION, version)
            record("promotion", label, approver, {**payload, "bootstrap": bootstrap})
            # What this version replaced: its realised performance is later compared with it on the same rows.
            registry.tag_version(version, {"approved_by": approver, "approval_reason": reason, "promoted_over": current.version if current else ""})
            _add_to_card(registry, version, f"approved by {approver} and promoted to champion: {reason}" + (" (bootstrap)" if bootstrap else ""))
        return registry.by_alias(CHAMPION)

    def reject(self, registry: ModelRegistry, version: str, approver: str, reason: str) -> None:
        policy = self.policy()
        check_approver(policy, approver)
        label = f"{registry.model_name}/{version}"
        with self.ledger().exclusive() as record, _registry_calls(label):
            registry.tag_version(version, {"rejected_by": approver, "rejection_reason": reason})
            record("rejection", label, approver, {"reason": reason, "policy": policy.label})

    def rollback(
        self, registry: ModelRegistry, actor: str, reason: str, to_version: str | None = None, run_id: str | None = None, from_version: str | None = None
    ) -> RegisteredModel:
        """Point champion back to previous_champion (or a named version that passed its gates).
        With `from_version`, only if that version is still champion: a request made on stale
        information (a sensor's, say) changes nothing."""
        rolled_back_from = {e.payload.get("from") for e in self.ledger().entries(kind="rollback")}
        with self.ledger().exclusive() as record, _registry_calls(f"{registry.model_name} champion"):
            current = registry.by_alias(CHAMPION)
            if current is None:
                raise PromotionRefused(f"{registry.model_name} has no champion to roll back")
            if from_version is not None and current.version != from_version:
                raise PromotionRefused(f"the rollback was asked for version {from_version}, but {current.label} is champion now")
            if to_version is None:
                target = registry.by_alias(PREVIOUS_CHAMPION)
                if target is None:
                    raise PromotionRefused(f"{registry.model_name} has no {PREVIOUS_CHAMPION} to roll back to; name a version")
                if target.label in rolled_back_from:
                    # No ping-pong: after a rollback, previous_champion is the version rolled back from.
                    raise PromotionRefused(f"{PREVIOUS_CHAMPION} {target.label} was itself rolled back; name the version to return to")
                to_version = target.version
            else:
                check_gates(f"{registry.model_name}/{to_version}", registry.version_tags(to_version))
            if to_version == current.version:
                raise PromotionRefused(f"{current.label} is already champion")
            registry.set_alias(CHAMPION, to_version)
            registry.set_alias(PREVIOUS_CHAMPION, current.version)
            record("rollback", f"{registry.model_name}/{to_version}", actor, {"reason": reason, "from": current.label, "dagster_run_id": run_id})
            _add_to_card(registry, current.version, f"rolled back by {actor} (champion returned to version {to_version}): {reason}")
        return registry.by_alias(CHAMPION)


def _add_to_card(registry: ModelRegistry, version: str, event: str) -> None:
    """Append a governance event to the version's model card, when it has one; what a person typed
    (names, reasons) is escaped, never Markdown or HTML of its own."""
    from riskcore.model_card import markdown_text

    run_id = registry.client().get_model_version(registry.model_name, version).run_id
    card = registry.read_text(run_id, "model_card.md")
    if card is not None:
        registry.log_text(run_id, card.rstrip("\n") + "\n- " + markdown_text(event) + "\n", "model_card.md")


class RegistryUnavailable(RuntimeError):
    """The registry could not be reached or changed: nothing was recorded, the champion is as it was
    (at worst previous_champion was set to the unchanged champion)."""


@contextlib.contextmanager
def _registry_calls(what: str):
    """Fail closed: any registry error inside becomes one clear error, and the ledger entries of
    the block are rolled back with it."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except PromotionRefused:
        raise
    except (MlflowException, OSError, ConnectionError) as exc:
        raise RegistryUnavailable(f"registry unreachable while changing {what}: nothing changed ({type(exc).__name__}: {str(exc)[:200]})") from exc
