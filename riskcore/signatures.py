"""Who made a governance request, proven: SSH signatures as git and OpenSSH make them.

Why SSH signatures: approvers already hold SSH keys (often on a hardware token or in an agent),
`ssh-keygen -Y sign` makes the signature without the key ever reaching the pipeline, and a
validator re-checks any ledger entry offline with `ssh-keygen -Y verify` and the same
allowed-signers file git uses (`principal [namespaces="..."] ssh-ed25519 AAAA... [comment]`).
This module reads and writes that format (PROTOCOL.sshsig, Ed25519 keys) with `cryptography`,
so the pipeline needs no ssh binary; `ssh-keygen` and this module accept each other's signatures
(tested).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, fields
from pathlib import Path

NAMESPACE = "risk-governance"
MAGIC = b"SSHSIG"
ARMOUR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOUR_END = "-----END SSH SIGNATURE-----"
KEY_TYPE = "ssh-ed25519"
HASH = "sha512"


class SignatureRefused(PermissionError):
    """A signature that does not prove what it is offered for: nothing was changed."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _read_strings(blob: bytes, count: int) -> tuple[list[bytes], bytes]:
    out = []
    for _ in range(count):
        if len(blob) < 4 or len(blob) < 4 + struct.unpack(">I", blob[:4])[0]:
            raise SignatureRefused("malformed SSH signature: truncated field")
        size = struct.unpack(">I", blob[:4])[0]
        out.append(blob[4 : 4 + size])
        blob = blob[4 + size :]
    return out, blob


def _signed_data(message: bytes, namespace: str) -> bytes:
    return MAGIC + _string(namespace.encode()) + _string(b"") + _string(HASH.encode()) + _string(hashlib.sha512(message).digest())


def _public_blob(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    line = public_key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return base64.b64decode(line.split()[1])


def _private_key(private_key: str | bytes):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    text = private_key.encode() if isinstance(private_key, str) else private_key
    try:
        key = serialization.load_ssh_private_key(text, password=None)
    except (ValueError, TypeError) as error:
        raise SignatureRefused(f"not an unencrypted OpenSSH private key ({error}); sign with `ssh-keygen -Y sign -n {NAMESPACE}` instead") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureRefused(f"only {KEY_TYPE} keys sign governance requests (ssh-keygen -t ed25519)")
    return key


def sign(message: bytes, private_key: str | bytes, namespace: str = NAMESPACE) -> str:
    """The armoured signature `ssh-keygen -Y sign -n <namespace>` would make of `message`."""
    key = _private_key(private_key)
    signature = _string(KEY_TYPE.encode()) + _string(key.sign(_signed_data(message, namespace)))
    blob = MAGIC + struct.pack(">I", 1) + _string(_public_blob(key.public_key())) + _string(namespace.encode()) + _string(b"") + _string(HASH.encode())
    encoded = base64.b64encode(blob + _string(signature)).decode()
    return "\n".join([ARMOUR_BEGIN, *(encoded[i : i + 70] for i in range(0, len(encoded), 70)), ARMOUR_END]) + "\n"


def public_key_line(private_key: str | bytes, comment: str = "") -> str:
    """`ssh-ed25519 AAAA... comment` of a private key: what goes into allowed_signers."""
    encoded = base64.b64encode(_public_blob(_private_key(private_key).public_key())).decode()
    return f"{KEY_TYPE} {encoded}" + (f" {comment}" if comment else "")


def generate_key(comment: str) -> tuple[str, str]:
    """A new Ed25519 key: (OpenSSH private key text, public key line)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()
    return private, public_key_line(private, comment)


@dataclass(frozen=True)
class AllowedSigner:
    principals: tuple[str, ...]
    namespaces: tuple[str, ...] | None  # None: any namespace
    key_blob: bytes
    where: str  # file:line, for messages


@dataclass(frozen=True)
class AllowedSigners:
    source: str
    signers: tuple[AllowedSigner, ...]

    def keys_of(self, identity: str, namespace: str = NAMESPACE) -> list[bytes]:
        return [s.key_blob for s in self.signers if identity in s.principals and (s.namespaces is None or namespace in s.namespaces)]


def parse_allowed_signers(text: str, source: str) -> AllowedSigners:
    """git's allowed-signers format. Principals are exact identities (no wildcards: an approver list
    names people); the only option read is `namespaces=`, any other option is an error, since
    ignoring a restriction such as `valid-before` would widen who may sign."""
    signers = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}:{number}"
        principals, _, rest = line.partition(" ")
        namespaces = None
        rest = rest.strip()
        if rest.startswith("namespaces="):
            if not rest.startswith('namespaces="') or '"' not in rest[len('namespaces="') :]:
                raise ValueError(f'{where}: namespaces= needs a quoted list, e.g. namespaces="{NAMESPACE}"')
            value, _, rest = rest[len('namespaces="') :].partition('"')
            namespaces, rest = tuple(n.strip() for n in value.split(",") if n.strip()), rest.strip()
        parts = rest.split()
        if len(parts) < 2 or parts[0] != KEY_TYPE:
            raise ValueError(f'{where}: expected `principals [namespaces="..."] {KEY_TYPE} <base64> [comment]` (options other than namespaces are refused)')
        if any(ch in principals for ch in "*?!"):
            raise ValueError(f"{where}: principal patterns are refused; name each identity")
        try:
            blob = base64.b64decode(parts[1], validate=True)
        except ValueError:
            raise ValueError(f"{where}: the key is not valid base64") from None
        try:
            (kind, key), _ = _read_strings(blob, 2)
        except SignatureRefused:
            kind, key = b"", b""
        if kind != KEY_TYPE.encode() or len(key) != 32:
            raise ValueError(f"{where}: not an {KEY_TYPE} public key")
        signers.append(AllowedSigner(tuple(principals.split(",")), namespaces, blob, where))
    return AllowedSigners(source, tuple(signers))


def load_allowed_signers(path: str | Path) -> AllowedSigners:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ValueError(f"{path}: allowed-signers file cannot be read ({error.strerror})") from None
    return parse_allowed_signers(text, str(path))


def verify(message: bytes, armoured: str, signers: AllowedSigners, identity: str, namespace: str = NAMESPACE) -> None:
    """Raise SignatureRefused unless `armoured` is a signature of `message` in `namespace` by a key
    that `signers` lists for `identity`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    body = armoured.strip()
    if not (body.startswith(ARMOUR_BEGIN) and body.endswith(ARMOUR_END)):
        raise SignatureRefused("not an SSH signature (expected -----BEGIN SSH SIGNATURE-----)")
    try:
        blob = base64.b64decode("".join(body[len(ARMOUR_BEGIN) : -len(ARMOUR_END)].split()), validate=True)
    except ValueError:
        raise SignatureRefused("malformed SSH signature: not base64") from None
    if blob[:6] != MAGIC or struct.unpack(">I", blob[6:10])[0] != 1:
        raise SignatureRefused("malformed SSH signature: not SSHSIG version 1")
    (public_blob, signed_namespace, _reserved, hash_name, signature), _ = _read_strings(blob[10:], 5)
    if signed_namespace.decode() != namespace:
        raise SignatureRefused(f"the signature is for namespace {signed_namespace.decode()!r}, not {namespace!r}")
    if public_blob not in signers.keys_of(identity, namespace):
        raise SignatureRefused(f"{identity!r} has no key in {signers.source} that made this signature")
    if hash_name.decode() not in ("sha512", "sha256"):
        raise SignatureRefused(f"unsupported hash {hash_name.decode()!r}")
    (kind, raw), _ = _read_strings(signature, 2)
    (_, key), _ = _read_strings(public_blob, 2)
    digest = hashlib.new(hash_name.decode(), message).digest()
    data = MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_name) + _string(digest)
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(raw, data)
    except InvalidSignature:
        raise SignatureRefused(f"the signature does not match the request: it was not made by {identity!r} for these words") from None


@dataclass(frozen=True)
class SignedRequest:
    """A governance request as its maker signed it: the message is every field but the signature,
    as canonical JSON, so the ledger keeps what was signed and anyone can re-verify it."""

    action: str  # approve | reject | rollback | canary | advance (a staged rollout)
    model: str
    version: str | None  # approve, reject: the version; rollback: the target (None: previous_champion)
    identity: str
    reason: str
    signed_at: str  # ISO 8601 UTC, e.g. 2026-12-02T01:00:00Z
    from_version: str | None = None  # rollback: only if this version is still champion (or, with from_step, still in the canary cell)
    from_step: int | None = None  # rollback of a rollout: only if it is still at this step (a sensor's request may be stale)
    signature: str = ""

    def message(self) -> bytes:
        # from_step only when set: every other request signs the same bytes as before it existed (one printed and signed offline still verifies)
        fields_ = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "signature" and not (f.name == "from_step" and self.from_step is None)}
        return json.dumps(fields_, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()

    def signed_with(self, private_key: str | bytes) -> SignedRequest:
        return SignedRequest(**{**self.__dict__, "signature": sign(self.message(), private_key)})

    @property
    def signature_digest(self) -> str:
        return hashlib.sha256(self.signature.encode()).hexdigest()
