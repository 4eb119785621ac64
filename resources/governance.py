"""The governance ledger and the promotion policy, as one resource."""

import contextlib
from pathlib import Path

import dagster as dg

from resources.registry import CANARY, CHAMPION, PREVIOUS_CHAMPION, ModelRegistry, RegisteredModel
from resources.storage import absolute_sqlite_url
from riskcore.promotion import DEFAULT_PROMOTION_POLICY, PromotionPolicy, PromotionRefused, auto_approval, check_authority, check_gates, load_promotion_policy
from riskcore.rollout_policy import DEFAULT_ROLLOUT_POLICY, RolloutPolicy, load_rollout_policy
from riskcore.signatures import SignedRequest

# The registered-model tag that keeps the ledger's head (`count:hash`) outside the ledger's database.
LEDGER_HEAD_TAG = "ledger_head"


class Governance(dg.ConfigurableResource):
    """Local: a SQLite ledger file. Production: PostgreSQL (`RISK_LEDGER_URL`, an EnvVar)."""

    ledger_url: str
    promotion_policy: str = str(DEFAULT_PROMOTION_POLICY.name)
    auto_approve: str | None = None  # overrides the policy file's setting (development only)
    # HMAC key of the ledger's entries (RISK_LEDGER_KEY, an EnvVar): a key the database does not hold,
    # so whoever holds the database credentials cannot rewrite the trail unseen. None: plain SHA-256.
    ledger_key: str | None = None
    # Who may sign: the portfolio's allowed-signers file (public keys), and the portfolio file that names it.
    allowed_signers: str | None = None
    portfolio_file: str = "(no portfolio file)"
    # The private key of the deployment's service identity (sensors), RISK_SERVICE_SIGNING_KEY: an EnvVar.
    service_signing_key: str | None = None
    # The staged-rollout policy, and the secret key of the canary cell's keyed hash (RISK_ROLLOUT_KEY, an EnvVar).
    rollout_policy: str = str(DEFAULT_ROLLOUT_POLICY)
    assignment_key: str | None = None

    def ledger(self):
        from riskcore.ledger import Ledger  # SQLAlchemy: at run time, not when the code location loads

        return Ledger.from_url(absolute_sqlite_url(self.ledger_url), key=self.ledger_key)

    def policy(self) -> PromotionPolicy:
        candidate = Path(self.promotion_policy)
        path = candidate if candidate.is_file() else DEFAULT_PROMOTION_POLICY.parent / self.promotion_policy
        return load_promotion_policy(path, auto_approve=self.auto_approve)

    def rollout_rules(self) -> RolloutPolicy:
        return load_rollout_policy(self.rollout_policy)

    def sign_as_service(self, request: SignedRequest) -> SignedRequest:
        """A service identity's request (a sensor's), signed with the deployment's service key; unsigned
        when there is none, so the run it launches is refused and alerts."""
        from riskcore.signatures import sign

        return (
            request
            if self.service_signing_key is None
            else SignedRequest(**{**request.__dict__, "signature": sign(request.message(), self.service_signing_key)})
        )

    def authorise(self, policy: PromotionPolicy, request: SignedRequest, action: str, model: str, version: str | None) -> dict:
        """Refuse unless `request` is for exactly this action, signed by a key the allowed-signers
        file lists for its identity, recent, never used before, and the policy lets that identity
        act. Returns what the ledger keeps so anyone can re-verify the signature later."""
        import datetime as dt

        from riskcore.portfolio import portfolio_signers
        from riskcore.signatures import SignatureRefused, verify

        if (request.action, request.model) != (action, model) or (version is not None and request.version != version):
            raise PromotionRefused(f"the signed request is for {request.action} of {request.model}/{request.version}, not {action} of {model}/{version}")
        check_authority(policy, request.identity, action)
        try:
            signers = portfolio_signers(self.portfolio_file, self.allowed_signers)
            if not request.signature:
                raise SignatureRefused(f"{request.identity!r} sent no signature: sign the request with its own key (ssh-keygen -Y sign, or --key)")
            verify(request.message(), request.signature, signers, request.identity)
        except (SignatureRefused, ValueError) as error:
            raise PromotionRefused(f"{action} of {model}/{version} refused: {error}") from None
        try:
            signed_at = dt.datetime.fromisoformat(request.signed_at.replace("Z", "+00:00"))
            age = dt.datetime.now(dt.timezone.utc) - signed_at
        except (ValueError, TypeError):
            raise PromotionRefused(f"signed_at {request.signed_at!r} is not an ISO 8601 UTC time") from None
        if age > dt.timedelta(hours=policy.signature_max_age_hours) or age < -dt.timedelta(minutes=5):
            raise PromotionRefused(
                f"the request was signed at {request.signed_at}: older than {policy.signature_max_age_hours} h or in the future; sign it again"
            )
        if any(e.payload.get("signature_sha256") == request.signature_digest for e in self.ledger().entries()):
            raise PromotionRefused("this signed request was already used: a signature authorises one action; sign a new request")
        return {
            "signed_by": request.identity,
            "signed_request": request.message().decode(),
            "signature": request.signature,
            "signature_sha256": request.signature_digest,
        }

    def promote(self, registry: ModelRegistry, version: str, request: SignedRequest | None, run_id: str | None = None) -> RegisteredModel:
        """Make `version` champion, the old one previous_champion. Needs passed gates and a request
        signed by an approver (or an auto-approval the policy grants: `request` None); serialised
        through the ledger's lock, so two racing promotions happen one after the other and both
        are recorded in order. Refused while a rollout runs: it ends in its own promotion or rollback."""
        policy = self.policy()
        # Checked before the ledger's write lock is taken (the check reads the ledger).
        proof = {} if request is None else self.authorise(policy, request, "approve", registry.model_name, version)
        rollout = self.rollout(registry)
        if rollout.active:
            raise PromotionRefused(
                f"a rollout of {registry.model_name}/{rollout.version} runs ({self.rollout_rules().step_label(rollout.step)}): advance it to its last step "
                "(the promotion) or roll it back first"
            )
        return self._promote(registry, version, request, proof, run_id)

    def _promote(self, registry: ModelRegistry, version: str, request: SignedRequest | None, proof: dict, run_id: str | None, **recorded) -> RegisteredModel:
        """The promotion itself, once authorised: by an approval, or by a rollout's last step (`recorded`: its gates)."""
        policy = self.policy()
        label = f"{registry.model_name}/{version}"
        with self.ledger().exclusive() as record, _registry_calls(label):
            current = registry.by_alias(CHAMPION)
            if current is not None and current.version == version:
                raise PromotionRefused(f"{label} is already champion")
            bootstrap = request is None and policy.auto_approve == "bootstrap" and current is None
            if request is None:
                approver, reason = auto_approval(policy, current is not None), "auto-approval by policy"
                if approver is None:
                    raise PromotionRefused(f"{label} needs an approver: policy {policy.label} does not auto-approve it")
            else:
                approver, reason = request.identity, request.reason
            tags = registry.version_tags(version)
            if not bootstrap:
                check_gates(label, tags)
            payload = {
                **proof,
                "reason": reason,
                "policy": policy.label,
                "gates_passed": tags.get("gates_passed", "not evaluated"),
                "previous": current.label if current else None,
                "dagster_run_id": run_id,
                **recorded,
            }
            record("approval", label, approver, payload)
            if current is not None:
                registry.set_alias(PREVIOUS_CHAMPION, current.version)
            registry.set_alias(CHAMPION, version)
            record("promotion", label, approver, {**payload, "bootstrap": bootstrap})
            # What this version replaced: its realised performance is later compared with it on the same rows.
            registry.tag_version(version, {"approved_by": approver, "approval_reason": reason, "promoted_over": current.version if current else ""})
            _add_to_card(registry, version, f"approved by {approver} and promoted to champion: {reason}" + (" (bootstrap)" if bootstrap else ""))
        registry.tag_version(version, {LEDGER_HEAD_TAG: self.anchor(registry)})
        return registry.by_alias(CHAMPION)

    def reject(self, registry: ModelRegistry, request: SignedRequest) -> None:
        policy = self.policy()
        label = f"{registry.model_name}/{request.version}"
        proof = self.authorise(policy, request, "reject", registry.model_name, request.version)
        with self.ledger().exclusive() as record, _registry_calls(label):
            registry.tag_version(request.version, {"rejected_by": request.identity, "rejection_reason": request.reason})
            record("rejection", label, request.identity, {**proof, "reason": request.reason, "policy": policy.label})
        self.anchor(registry)

    def rollback(self, registry: ModelRegistry, request: SignedRequest, run_id: str | None = None) -> RegisteredModel:
        """Point champion back to previous_champion (or the named version, which must have passed its
        gates), as a member of the policy's rollback list or a service allowed to roll back asked,
        signed. With `from_version`, only if that version is still champion: a request made on
        stale information (a sensor's, say) changes nothing.

        While a rollout runs, a rollback without a version, or from the canary's version, rolls the
        rollout back instead (its cell returns to the champion; the champion stays); a rollback of
        the champion itself ends the rollout too. A request naming `from_step` is for the rollout
        only: refused unless the ledger's rollout still has `from_version` in its cell at that step
        (a sensor's tick may be followed by a promotion, a rollback or an advance before its run)."""
        policy = self.policy()
        actor, reason, to_version, from_version = request.identity, request.reason, request.version, request.from_version
        proof = self.authorise(policy, request, "rollback", registry.model_name, None)
        rollout = self.rollout(registry)
        if request.from_step is not None:
            self._check_still_in_cell(registry, rollout, from_version, request.from_step)
            return self._roll_back_rollout(registry, rollout, request, proof, run_id)
        if rollout.active and to_version is None and from_version in (None, rollout.version):
            return self._roll_back_rollout(registry, rollout, request, proof, run_id)
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
            ended = self._end_rollout(registry, rollout)
            record(
                "rollback",
                f"{registry.model_name}/{to_version}",
                actor,
                {**proof, "reason": reason, "from": current.label, "dagster_run_id": run_id, **({"ended_rollout": ended} if ended else {})},
            )
            _add_to_card(registry, current.version, f"rolled back by {actor} (champion returned to version {to_version}): {reason}")
        self.anchor(registry)
        if ended:
            self._card_rollout(registry, rollout.version)
        return registry.by_alias(CHAMPION)

    def _check_still_in_cell(self, registry: ModelRegistry, rollout, version: str | None, step: int) -> None:
        """Refuse a rollout rollback asked for `version` at `step` when the ledger's rollout moved on since, naming what changed."""
        from riskcore.rollout import ROLLBACK

        asked = f"{registry.model_name}/{version} at {self.rollout_rules().step_label(step)}"
        if rollout.active and (rollout.version, rollout.step) == (version, step):
            return
        if rollout.active:
            now = f"{registry.model_name}/{rollout.version} is at {self.rollout_rules().step_label(rollout.step)}"
        else:
            ended = [e for e in self.ledger().entries() if e.subject.startswith(f"{registry.model_name}/") and e.kind in ("promotion", "rollback", ROLLBACK)]
            now = f"no rollout runs (the last change: {ended[-1].kind} of {ended[-1].subject} by {ended[-1].actor})" if ended else "no rollout runs"
        raise PromotionRefused(f"the rollback was asked for the canary cell of {asked}, but {now}: the request is stale, nothing changed")

    def rollout(self, registry: ModelRegistry):
        """The model's rollout as the ledger records it (riskcore.rollout.RolloutState)."""
        from riskcore.rollout import rollout_state

        return rollout_state(self.ledger().entries(), registry.model_name)

    def governed_rollout(self, registry: ModelRegistry):
        """The rollout scoring follows: the ledger's, only if the registry's `canary` alias agrees (an
        alias moved by hand decides nothing) and the assignment key is the one the rollout began with
        (another key would reshuffle the cells mid-rollout)."""
        from riskcore.rollout import assignment_key_id

        state = self.rollout(registry)
        alias = registry.by_alias(CANARY)
        if (alias.version if alias else None) != state.version:
            raise ChampionNotGoverned(
                f"the registry's `{CANARY}` alias is {alias.label if alias else 'not set'}, but the ledger's rollout of {registry.model_name} "
                f"{'has ' + registry.model_name + '/' + state.version + ' in its canary cell' if state.active else 'is not running'}: "
                "the alias was moved outside governance; scoring refused (restore it, or use make canary / make advance / make rollback)"
            )
        if state.active and (self.assignment_key is None or assignment_key_id(self.assignment_key) != state.key_id):
            raise ChampionNotGoverned(
                f"the rollout of {registry.model_name}/{state.version} began under assignment key {state.key_id}; the environment holds "
                f"{'none' if self.assignment_key is None else assignment_key_id(self.assignment_key)} (RISK_ROLLOUT_KEY): scoring refused, "
                "the cells would be reshuffled"
            )
        return state

    def start_canary(self, registry: ModelRegistry, request: SignedRequest, run_id: str | None = None):
        """Step 1 of a staged rollout: the challenger `request.version` (its offline gates passed)
        decides the policy's first share of applicants, signed by an approver; ledgered, mirrored
        in the registry (alias `canary`, tag `rollout_step`)."""
        from riskcore.rollout import START, assignment_key_id
        from riskcore.rollout_policy import ANY_KEY

        policy, rules = self.policy(), self.rollout_rules()
        label = f"{registry.model_name}/{request.version}"
        proof = self.authorise(policy, request, "canary", registry.model_name, request.version)
        if self.assignment_key is None:
            raise PromotionRefused(f"canary of {label} refused: no assignment key (set RISK_ROLLOUT_KEY to a secret)")
        key_id = assignment_key_id(self.assignment_key)
        if rules.key_id not in (ANY_KEY, key_id):
            raise PromotionRefused(f"canary of {label} refused: {rules.label} names assignment key {rules.key_id}, the environment holds {key_id}")
        rollout = self.rollout(registry)
        if rollout.active:
            raise PromotionRefused(f"a rollout of {registry.model_name}/{rollout.version} runs already ({rules.step_label(rollout.step)})")
        with self.ledger().exclusive() as record, _registry_calls(label):
            champion = registry.by_alias(CHAMPION)
            if champion is None or champion.version == request.version:
                raise PromotionRefused(f"canary of {label} refused: {'it is the champion' if champion else 'no champion to compare it with'}")
            check_gates(label, registry.version_tags(request.version))
            payload = {
                **proof,
                "reason": request.reason,
                "policy": rules.label,
                "version": request.version,
                "champion": champion.version,
                "step": 1,
                "share": rules.share(1),
                "key_id": key_id,
                "dagster_run_id": run_id,
            }
            record(START, label, request.identity, payload)
            self._mirror_rollout(registry, request.version, rules.step_label(1))
            _add_to_card(registry, request.version, f"canary started by {request.identity} ({rules.step_label(1)}): {request.reason}")
        self.anchor(registry)
        self._card_rollout(registry, request.version)
        return self.rollout(registry)

    def advance(self, registry: ModelRegistry, request: SignedRequest, gates: list, run_id: str | None = None):
        """The rollout's next step, signed by an approver, only when every gate of the step holds
        (`gates`: riskcore.rollout.step_gates on the cell's decisions at this step). The last step
        is the promotion: the challenger becomes champion, the rollout ends."""
        from riskcore.rollout import ADVANCE

        policy, rules = self.policy(), self.rollout_rules()
        label = f"{registry.model_name}/{request.version}"
        proof = self.authorise(policy, request, "advance", registry.model_name, request.version)
        rollout = self.rollout(registry)
        if not rollout.active or rollout.version != request.version:
            raise PromotionRefused(
                f"advance of {label} refused: the rollout running is {registry.model_name + '/' + rollout.version if rollout.active else 'none'}"
            )
        judged = {
            g.name: {"value": None if g.value is None else round(float(g.value), 6), "threshold": g.threshold, "passed": g.passed, "note": g.note}
            for g in gates
        }
        failed = [
            f"{g.name} {g.value if g.value is None else round(float(g.value), 4)} ({g.threshold}{'; ' + g.note if g.note else ''})"
            for g in gates
            if not g.passed
        ]
        if failed:
            raise PromotionRefused(f"advance of {label} from {rules.step_label(rollout.step)} refused: gates failed: {'; '.join(failed)}")
        step = rollout.step + 1
        recorded = {"rollout_step": step, "share": rules.share(step), "rollout_policy": rules.label, "step_gates": judged}
        if rules.share(step) >= 1.0:
            champion = self._promote(registry, request.version, request, proof, run_id, **recorded)
            self._end_rollout(registry, rollout)
            self.anchor(registry)
            self._card_rollout(registry, request.version)
            return champion
        with self.ledger().exclusive() as record, _registry_calls(label):
            record(
                ADVANCE,
                label,
                request.identity,
                {**proof, "reason": request.reason, "policy": rules.label, "step": step, "share": rules.share(step), "gates": judged, "dagster_run_id": run_id},
            )
            self._mirror_rollout(registry, request.version, rules.step_label(step))
            _add_to_card(registry, request.version, f"rollout advanced by {request.identity} to {rules.step_label(step)}: {request.reason}")
        self.anchor(registry)
        self._card_rollout(registry, request.version)
        return self.rollout(registry)

    def _roll_back_rollout(self, registry: ModelRegistry, rollout, request: SignedRequest, proof: dict, run_id: str | None) -> RegisteredModel:
        from riskcore.rollout import ROLLBACK

        label = f"{registry.model_name}/{rollout.version}"
        step = self.rollout_rules().step_label(rollout.step)
        with self.ledger().exclusive() as record, _registry_calls(label):
            record(
                ROLLBACK,
                label,
                request.identity,
                {**proof, "reason": request.reason, "from_step": rollout.step, "share": rollout.share, "dagster_run_id": run_id},
            )
            self._end_rollout(registry, rollout)
            _add_to_card(
                registry, rollout.version, f"rollout rolled back by {request.identity} at {step} (its cell returned to the champion): {request.reason}"
            )
        self.anchor(registry)
        self._card_rollout(registry, rollout.version)
        return registry.by_alias(CHAMPION)

    def _card_rollout(self, registry: ModelRegistry, version: str) -> None:
        """The rollout section of the version's model card, rendered again from the ledger once a step was recorded."""
        from riskcore.model_card import rollout_section, with_rollout_section

        section = rollout_section(self.ledger().entries(), f"{registry.model_name}/{version}")
        with _registry_calls(f"the model card of {registry.model_name}/{version}"):
            _rewrite_card(registry, version, lambda card: with_rollout_section(card, section))

    def _mirror_rollout(self, registry: ModelRegistry, version: str, step: str) -> None:
        registry.set_alias(CANARY, version)
        registry.tag_version(version, {"rollout_step": step})
        registry.set_model_tag("rollout", f"{registry.model_name}/{version} {step}")

    def _end_rollout(self, registry: ModelRegistry, rollout) -> str | None:
        """The registry's mirror of a rollout that ended (alias `canary` gone); returns what ended, or None."""
        if not rollout.active:
            return None
        registry.delete_alias(CANARY)
        registry.tag_version(rollout.version, {"rollout_step": "ended"})
        registry.set_model_tag("rollout", "none")
        return f"{registry.model_name}/{rollout.version}"

    def anchor(self, registry: ModelRegistry) -> str:
        """Keep the ledger's head outside its database, on the registered model in MLflow (another
        store, other credentials): whoever deletes or rewrites entries up to it is named by
        `verify`. Called after every governance event; returns the head as `count:hash`."""
        count, head = self.ledger().head()
        value = f"{count}:{head}"
        registry.set_model_tag(LEDGER_HEAD_TAG, value)
        return value

    def verify(self, registry: ModelRegistry):
        """The ledger's chain, and that it still holds the head last anchored in the registry."""
        anchored = registry.model_tag(LEDGER_HEAD_TAG)
        expected = (int(anchored.split(":")[0]), anchored.split(":")[1]) if anchored else None
        return self.ledger().verify(expected_head=expected), anchored

    def governed_champion(self, registry: ModelRegistry) -> RegisteredModel:
        """The registry's champion, only if the ledger's last promotion or rollback of this model put
        it there: an alias moved behind the ledger's back (with MLflow credentials alone) scores nothing."""
        champion = registry.by_alias(CHAMPION)
        if champion is None:
            raise ChampionNotGoverned(f"no `{CHAMPION}` alias on {registry.model_name}: materialise champion_model before scoring")
        settled = [e for e in self.ledger().entries() if e.kind in ("promotion", "rollback") and e.subject.startswith(f"{registry.model_name}/")]
        recorded = settled[-1].subject if settled else None
        if recorded != champion.label:
            raise ChampionNotGoverned(
                f"the registry's `{CHAMPION}` is {champion.label}, but the ledger's last promotion or rollback of {registry.model_name} "
                f"made {recorded or 'no version'} champion: the alias was moved outside governance; scoring refused "
                f"(restore the alias or record the change with `make approve` / `make rollback`)"
            )
        return champion


def _add_to_card(registry: ModelRegistry, version: str, event: str) -> None:
    """Append a governance event to the version's model card, when it has one; what a person typed
    (names, reasons) is escaped, never Markdown or HTML of its own."""
    from riskcore.model_card import markdown_text

    _rewrite_card(registry, version, lambda card: card.rstrip("\n") + "\n- " + markdown_text(event) + "\n")


def _rewrite_card(registry: ModelRegistry, version: str, change) -> None:
    """The version's model card, when it has one, replaced by `change(card)`."""
    run_id = registry.client().get_model_version(registry.model_name, version).run_id
    card = registry.read_text(run_id, "model_card.md")
    if card is not None:
        registry.log_text(run_id, change(card), "model_card.md")


class ChampionNotGoverned(PermissionError):
    """The registry's champion is not the version the ledger says governance made champion."""


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
