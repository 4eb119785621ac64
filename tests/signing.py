"""Signing keys for tests: one ed25519 key per identity the shipped promotion policy names, made
once per test session, and the requests those identities sign (as `python -m pipelines.governance`
and the rollback sensor make them)."""

import datetime as dt
import functools
import hashlib
from pathlib import Path

from riskcore.signatures import NAMESPACE, SignedRequest, public_key_line

APPROVERS = ("head.of.credit.risk@example.com", "model.risk.officer@example.com")
SERVICE = "performance_rollback_sensor"
IDENTITIES = (*APPROVERS, SERVICE)


@functools.cache
def key_of(identity: str) -> tuple[str, str]:
    """(private key text, public key line) of a test identity: derived from its name, so every test
    process (spawned racers, subprocess CLIs) holds the same keys."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"test key of {identity}".encode()).digest())
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    return private, public_key_line(private, identity)


def write_allowed_signers(path: Path, identities=IDENTITIES) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f'{i} namespaces="{NAMESPACE}" {key_of(i)[1]}\n' for i in identities))
    return str(path)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def signed(
    action: str,
    model: str,
    version: str | None,
    identity: str,
    reason: str,
    from_version: str | None = None,
    key_identity: str | None = None,
    signed_at: str | None = None,
    from_step: int | None = None,
):
    """A request `identity` makes, signed with the key of `key_identity` (default: its own)."""
    return SignedRequest(action, model, version, identity, reason, signed_at or now(), from_version, from_step).signed_with(key_of(key_identity or identity)[0])


def approval_config(model: str, version: str, approver: str, reason: str, key_identity: str | None = None) -> dict:
    """Run config of a portfolio's promotion_job, signed."""
    request = signed("approve", model, version, approver, reason, key_identity=key_identity)
    config = {"version": version, "approver": approver, "reason": reason, "signed_at": request.signed_at, "signature": request.signature}
    return {"ops": {"approve_and_promote": {"config": config}}}


def rollback_config(
    model: str, actor: str, reason: str, to_version: str | None = None, from_version: str | None = None, key_identity: str | None = None
) -> dict:
    """Run config of a portfolio's rollback_job, signed."""
    request = signed("rollback", model, to_version, actor, reason, from_version, key_identity=key_identity)
    config = {
        "actor": actor,
        "reason": reason,
        "to_version": to_version,
        "from_version": from_version,
        "signed_at": request.signed_at,
        "signature": request.signature,
    }
    return {"ops": {"roll_back_champion": {"config": config}}}


def rollout_config(action: str, model: str, version: str, approver: str, reason: str) -> dict:
    """Run config of a portfolio's canary_job (`action` canary) or advance_job (advance), signed."""
    request = signed(action, model, version, approver, reason)
    op = {"canary": "start_canary", "advance": "advance_rollout"}[action]
    config = {"version": version, "approver": approver, "reason": reason, "signed_at": request.signed_at, "signature": request.signature}
    return {"ops": {op: {"config": config}}}
