"""Governance from the command line (the same functions the Dagster jobs call):
`make approve VERSION= APPROVER= REASON= [KEY=]`, `make reject ...`, `make rollback APPROVER= REASON= [VERSION=]`,
`make canary VERSION= APPROVER= REASON=` (a staged rollout's first step), `make advance VERSION= APPROVER= REASON=` (its next,
the last one the promotion), `make ledger`, `make verify-ledger`, `make signing-key IDENTITY=`. While a rollout runs,
`make rollback` without VERSION returns its canary cell to the champion.

Every approval, rejection and rollback is a request signed with its maker's own SSH key: `--key`
signs here; or `request` prints what to sign, the maker signs it wherever their key lives
(`ssh-keygen -Y sign -f <key> -n risk-governance request.json`) and `--signature request.json.sig
--signed-at <the request's signed_at>` hands the signature in."""

import argparse
import json
import sys

import dagster as dg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["verify", "list", "approve", "reject", "rollback", "canary", "advance", "request", "signing-key"])
    parser.add_argument("action", nargs="?", choices=["approve", "reject", "rollback", "canary", "advance"], help="request: the action to print a request for")
    parser.add_argument("--version", help="model version (approve, reject, canary, advance; rollback: a named target)")
    parser.add_argument("--approver", help="identity of the approver (must be listed in the promotion policy)")
    parser.add_argument("--reason", help="why: recorded in the ledger and on the model version")
    parser.add_argument("--expected-entries", type=int, help="verify: entries of a head kept elsewhere (a report's ledger_head.txt: count:hash)")
    parser.add_argument("--expected-head", help="verify: the hash of that head")
    parser.add_argument("--portfolio", default="retail_pd", help="the portfolio whose model is approved, rejected or rolled back")
    parser.add_argument("--key", help="the signer's OpenSSH ed25519 private key (unencrypted); default: the local development key of --approver")
    parser.add_argument("--signature", help="a file with the signature ssh-keygen -Y sign made of the printed request")
    parser.add_argument("--signed-at", help="with --signature: the request's signed_at")
    parser.add_argument("--from-version", help="rollback: only if this version is still champion")
    parser.add_argument("--identity", help="signing-key: the identity a development key is made for")
    args = parser.parse_args(argv)
    if args.command == "signing-key":
        return _development_key(args.identity or parser.error("signing-key needs --identity"))

    from pipelines.environment import configured_portfolio
    from riskcore.promotion import PromotionRefused

    portfolio = configured_portfolio(args.portfolio)
    governance, registry = portfolio.governance, portfolio.registry
    if args.command in ("approve", "reject", "rollback", "canary", "advance", "request"):
        action = args.action if args.command == "request" else args.command
        if action is None:
            parser.error("request needs the action: approve, reject or rollback")
        missing = [
            f"--{name}" for name in ("version", "approver", "reason") if getattr(args, name) is None and not (action == "rollback" and name == "version")
        ]
        if missing:
            parser.error(f"{action} needs {', '.join(missing)}")
        request = _request(args, action, registry.model_name)
        if args.command == "request":
            sys.stdout.write(request.message().decode())  # exactly the signed bytes: no newline
            print(
                f"sign it: ssh-keygen -Y sign -f <your key> -n risk-governance <this file>; then --signature <file>.sig --signed-at {request.signed_at}",
                file=sys.stderr,
            )
            return 0
        try:
            request = _signed(args, request)
        except (OSError, PermissionError) as error:
            print(f"REFUSED: {error}", file=sys.stderr)
            return 2
        if action == "reject":
            try:
                governance.reject(registry, request)
            except PromotionRefused as refused:
                print(f"REFUSED: {refused}", file=sys.stderr)
                return 2
            print(f"{registry.model_name}/{args.version} rejected by {args.approver}")
            return 0
        # Approvals, rollbacks and rollout steps run as Dagster jobs on the instance, so the UI shows them too.
        return _run_job(args, request)
    ledger = governance.ledger()
    if args.command == "list":
        for entry in ledger.entries():
            print(f"{entry.seq:5d} {entry.recorded_at} {entry.kind:22} {entry.subject:32} {entry.actor:36} {json.dumps(entry.payload)[:120]}")
        return 0
    # The head anchored in the registry at the last governance event, and one the caller kept (a report's ledger_head.txt).
    result, anchored = governance.verify(registry)
    if result.ok and args.expected_entries:
        result = ledger.verify(expected_head=(args.expected_entries, args.expected_head))
    if not result.ok:
        print(f"LEDGER BROKEN: {result.problem}", file=sys.stderr)
        return 1
    keyed = "entries authenticated with the ledger key" if result.authenticated else "NOT authenticated: no ledger key (RISK_LEDGER_KEY)"
    print(f"ledger intact: {result.entries} entries, head {result.head}; holds the head anchored in the registry ({anchored or 'none yet'}); {keyed}")
    print(_signature_summary(ledger.entries(), portfolio))
    return 0


def _signature_summary(entries, portfolio) -> str:
    """Re-verify every signed request the ledger kept against the portfolio's allowed-signers file now."""
    from riskcore.portfolio import PortfolioError, portfolio_signers
    from riskcore.signatures import SignatureRefused, verify

    signed = [e for e in entries if "signature" in e.payload and e.subject.startswith(f"{portfolio.name}/")]
    try:
        signers = portfolio_signers(portfolio.spec.file, portfolio.spec.allowed_signers)
    except PortfolioError as error:
        return f"signatures: {len(signed)} signed entries, not re-verified ({error})"
    unverified = []
    for entry in signed:
        try:
            verify(entry.payload["signed_request"].encode(), entry.payload["signature"], signers, entry.payload["signed_by"])
        except SignatureRefused:
            unverified.append(entry.seq)
    if not unverified:
        return f"signatures: {len(signed)} signed requests of {portfolio.name} verify against {signers.source}"
    return f"signatures: {len(signed) - len(unverified)} verify; entries {unverified} do not verify against {signers.source} (a key removed since, or a forged entry)"


def _request(args, action: str, model: str):
    """What the maker signs. Printed by `request`, signed here with --key, or taken with --signature."""
    import datetime as dt

    from riskcore.signatures import SignedRequest

    signed_at = args.signed_at or dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return SignedRequest(action, model, args.version, args.approver, args.reason, signed_at, args.from_version)


def _signed(args, request):
    from pathlib import Path

    from riskcore.signatures import SignedRequest

    if args.signature:
        return SignedRequest(**{**request.__dict__, "signature": Path(args.signature).read_text()})
    key = Path(args.key) if args.key else development_key_path(args.approver)
    if not key.is_file():
        raise PermissionError(
            f"no signing key: give --key (KEY=) the approver's own key, or --signature a signature made with ssh-keygen -Y sign (not found: {key})"
        )
    return request.signed_with(key.read_bytes())


def development_key_path(identity: str):
    """Where `make signing-key` keeps a local development key (never used in production)."""
    from pipelines.environment import data_dir, development_keys

    return development_keys(data_dir()) / identity


def _development_key(identity: str) -> int:
    """A development signing key for `identity` under data/keys/, and its line in data/keys/allowed_signers
    (the local environment's allowed-signers file). A deployment lists its people's own keys instead."""
    import os

    from pipelines.environment import current_environment
    from riskcore.signatures import NAMESPACE, generate_key

    if current_environment() == "production":
        print(
            "REFUSED: development keys are for the local environment; list the signer's own public key in the portfolio's allowed-signers file", file=sys.stderr
        )
        return 2
    path = development_key_path(identity)
    if path.exists():
        print(f"{path} exists already")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    private, public = generate_key(identity)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(private)
    with open(path.parent / "allowed_signers", "a") as signers:
        signers.write(f'{identity} namespaces="{NAMESPACE}" {public}\n')
    print(f"development key of {identity}: {path}; listed in {path.parent / 'allowed_signers'}")
    return 0


def _run_job(args, request) -> int:
    from pipelines.definitions import defs
    from pipelines.jobs import job_name
    from pipelines.local_runs import fail_interrupted_runs

    fail_interrupted_runs(dg.DagsterInstance.get())
    signed = {"reason": request.reason, "signed_at": request.signed_at, "signature": request.signature}
    if args.command == "approve":
        job, op, config = "promotion_job", "approve_and_promote", {"version": args.version, "approver": args.approver, **signed}
    elif args.command in ("canary", "advance"):
        job, op = {"canary": ("canary_job", "start_canary"), "advance": ("advance_job", "advance_rollout")}[args.command]
        config = {"version": args.version, "approver": args.approver, **signed}
    else:
        job, op, config = (
            "rollback_job",
            "roll_back_champion",
            {"actor": args.approver, "to_version": args.version, "from_version": args.from_version, **signed},
        )
    job = job_name(args.portfolio, job)
    result = defs.resolve_job_def(job).execute_in_process(
        {"ops": {op: {"config": config}}, "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        instance=dg.DagsterInstance.get(),
        raise_on_error=False,
        tags={"trigger": f"make {args.command}"},
    )
    if not result.success:
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").event_specific_data.error
        cause = failure.cause or failure
        print(f"REFUSED ({job} run {result.run_id}): {cause.message.strip()}", file=sys.stderr)
        return 2
    print(f"{job} run {result.run_id} succeeded: see `make dev`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
