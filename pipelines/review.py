"""Human review from the command line: officers' logins, the queue, and the review page's server.

    python -m pipelines.review add-officer --identity officer@example.com    # password from the terminal (or stdin)
    python -m pipelines.review enqueue --month 2024-12 [--appeal APP-...]    # the month's referrals (and appeals) into the queue
    python -m pipelines.review serve [--port 8050]                           # gunicorn on 127.0.0.1 (make review)

Passwords are kept as salted scrypt hashes in the portfolio's reviewers file (`reviewers:`,
`${RISK_REVIEWERS:-...}`; locally data/keys/reviewers), one `identity scrypt$n$r$p$salt$hash` a line.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import hashlib
import hmac
import json
import os
import secrets
import sys
from pathlib import Path

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB, about 50 ms a hash here
SESSION_KEY_VAR = "RISK_REVIEW_SESSION_KEY"
IDENTITY_HEADER_VAR = "RISK_REVIEW_IDENTITY_HEADER"  # a trusted proxy's identity header (off unless set)
PORTFOLIO_VAR = "RISK_REVIEW_PORTFOLIO"
SIGNING_KEY_VAR = "RISK_REVIEW_SIGNING_KEY"  # the review service's own ed25519 key (OpenSSH text)
REVIEW_SERVICE = "review_service"  # its identity: in the promotion policy's services, its public key in allowed_signers
MIN_PASSWORD_CHARS = 12


def hash_password(password: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


# Checked when the identity is unknown, so a wrong identity costs the same time as a wrong password.
_DUMMY = hash_password(secrets.token_hex(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time comparison of the scrypt hash; an unknown identity (None) still costs a hash."""
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY).split("$")
        made = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(base64.b64decode(digest)))
    except ValueError:
        return False
    return hmac.compare_digest(made, base64.b64decode(digest)) and scheme == "scrypt" and stored is not None


def load_reviewers(path: str | None) -> dict[str, str]:
    """identity -> stored hash; a malformed line is an error naming the file and line (never its hash)."""
    if path is None or not Path(path).is_file():
        return {}
    reviewers = {}
    for number, raw in enumerate(Path(path).read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].startswith("scrypt$") or parts[1].count("$") != 5:
            raise ValueError(f"{path}:{number}: expected `identity scrypt$n$r$p$salt$hash` (python -m pipelines.review add-officer)")
        reviewers[parts[0]] = parts[1]
    return reviewers


def add_officer(path: str, identity: str, password: str) -> None:
    """Add or replace `identity`'s line in the reviewers file (created 600)."""
    if not identity or any(c.isspace() for c in identity):
        raise ValueError(f"identity {identity!r}: expected one word, such as officer@example.com")
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValueError(f"the password must be at least {MIN_PASSWORD_CHARS} characters")
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    kept = [line for line in (file.read_text().splitlines() if file.exists() else []) if line.split()[:1] != [identity]]
    file.write_text("\n".join([*kept, f"{identity} {hash_password(password)}"]) + "\n")
    file.chmod(0o600)


def session_key() -> str:
    """RISK_REVIEW_SESSION_KEY signs the session cookies; locally, when unset, a development key
    generated once under data/keys/ (never in the repository). Production requires the variable."""
    from pipelines.environment import current_environment, data_dir, development_keys

    key = os.environ.get(SESSION_KEY_VAR)
    if key:
        if len(key) < 32:
            raise ValueError(f"{SESSION_KEY_VAR} must be at least 32 characters (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
        return key
    if current_environment() == "production":
        raise ValueError(f"{SESSION_KEY_VAR} is not set: the review page needs its own session key in production")
    path = development_keys(data_dir()) / "review_session_key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def service_attestation(resources):
    """What signs each review decision's ledger entry: the review service's key (RISK_REVIEW_SIGNING_KEY;
    locally, when unset, the development key `make signing-key IDENTITY=review_service` made), the
    signature checked against the portfolio's allowed signers and promotion policy before the entry
    is appended, as the rollback sensor's requests are. The officer stays the entry's actor; the
    signed request binds the whole payload. No key: the server does not start."""
    import datetime as dt

    from pipelines.environment import current_environment, data_dir, development_keys
    from riskcore.portfolio import portfolio_signers
    from riskcore.promotion import PromotionRefused, check_authority
    from riskcore.review import ReviewRefused
    from riskcore.signatures import SignatureRefused, SignedRequest, verify

    key = os.environ.get(SIGNING_KEY_VAR)
    development = development_keys(data_dir()) / REVIEW_SERVICE
    if not key and current_environment() == "local" and development.is_file():
        key = development.read_text()
    if not key:
        raise ValueError(
            f"{SIGNING_KEY_VAR} is not set: the review service signs every decision it records (locally: make signing-key IDENTITY={REVIEW_SERVICE})"
        )
    policy = resources.governance.policy()

    def attest(kind: str, subject: str, payload: dict) -> dict:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        signed_at = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        request = SignedRequest(kind, resources.name, payload["application_token"], REVIEW_SERVICE, body, signed_at).signed_with(key)
        try:
            check_authority(policy, REVIEW_SERVICE, kind)
            verify(request.message(), request.signature, portfolio_signers(resources.spec.file, resources.spec.allowed_signers), REVIEW_SERVICE)
        except (PromotionRefused, SignatureRefused, ValueError) as error:
            raise ReviewRefused(f"the review service could not sign this decision, so it was not recorded: {error}") from None
        return {
            "signed_by": REVIEW_SERVICE,
            "signed_request": request.message().decode(),
            "signature": request.signature,
            "signature_sha256": request.signature_digest,
        }

    return attest


def portfolio_name(name: str | None = None) -> str:
    return name or os.environ.get(PORTFOLIO_VAR, "retail_pd")


def enqueue(name: str, month: str, appealed: list[str]) -> int:
    """The month's referred applications (and the declined ones appealed) into the queue, from its scores and features."""
    import datetime as dt

    from assets.review import enqueue_month
    from pipelines.environment import configured_portfolio

    added, _ = enqueue_month(configured_portfolio(name), month, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), set(appealed))
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.review", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portfolio", default=None, help=f"the portfolio (default {PORTFOLIO_VAR} or retail_pd)")
    commands = parser.add_subparsers(dest="command", required=True)
    officer = commands.add_parser("add-officer", help="add or replace an officer's login in the reviewers file")
    officer.add_argument("--identity", required=True)
    queue = commands.add_parser("enqueue", help="queue a month's referred applications (and appeals)")
    queue.add_argument("--month", required=True)
    queue.add_argument("--appeal", action="append", default=[], help="an appealed application id (declined by the model); repeatable")
    serve = commands.add_parser("serve", help="the review page, on 127.0.0.1 (gunicorn)")
    serve.add_argument("--port", type=int, default=int(os.environ.get("RISK_REVIEW_PORT", "8050")))
    serve.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    name = portfolio_name(args.portfolio)
    if args.command == "add-officer":
        from pipelines.environment import configured_portfolio

        path = configured_portfolio(name).spec.reviewers
        if path is None:
            print(f"portfolio {name} names no reviewers file (key `reviewers`)", file=sys.stderr)
            return 2
        password = getpass.getpass(f"password for {args.identity}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        try:
            add_officer(path, args.identity, password)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        print(f"{args.identity} can log in to the review page of {name} ({path})", file=sys.stderr)
        return 0
    if args.command == "enqueue":
        print(f"{enqueue(name, args.month, args.appeal)} applications of {args.month} added to {name}'s review queue", file=sys.stderr)
        return 0
    session_key()  # a missing production key fails here, before gunicorn forks
    os.environ[PORTFOLIO_VAR] = name
    # Loopback only; no control socket (gunicorn's default puts one in the user's home, shared by every server of the user).
    gunicorn = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{args.port}", "--workers", str(args.workers), "--no-control-socket"]
    gunicorn += ["--access-logfile", "-", "pipelines.review_app:create_app()"]
    os.execv(sys.executable, gunicorn)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    raise SystemExit(main())
