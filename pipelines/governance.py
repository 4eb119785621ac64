"""Governance from the command line (the same functions the Dagster jobs call):
`make approve VERSION= APPROVER= REASON=`, `make reject ...`, `make rollback REASON= [VERSION=]`,
`make ledger`, `make verify-ledger`."""

import argparse
import json
import sys

import dagster as dg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["verify", "list", "approve", "reject", "rollback"])
    parser.add_argument("--version", help="model version (approve, reject; rollback: a named target)")
    parser.add_argument("--approver", help="identity of the approver (must be listed in the promotion policy)")
    parser.add_argument("--reason", help="why: recorded in the ledger and on the model version")
    parser.add_argument("--expected-entries", type=int, help="entries published earlier (detects a deleted tail)")
    parser.add_argument("--expected-head", help="hash of that last published entry")
    parser.add_argument("--portfolio", default="retail_pd", help="the portfolio whose model is approved, rejected or rolled back")
    args = parser.parse_args(argv)

    from pipelines.environment import configured_portfolio
    from riskcore.promotion import PromotionRefused

    portfolio = configured_portfolio(args.portfolio)
    governance, registry = portfolio.governance, portfolio.registry
    if args.command in ("approve", "reject", "rollback"):
        missing = [
            f"--{name}" for name in ("version", "approver", "reason") if getattr(args, name) is None and not (args.command == "rollback" and name == "version")
        ]
        if missing:
            parser.error(f"{args.command} needs {', '.join(missing)}")
        if args.command == "reject":
            try:
                governance.reject(registry, args.version, args.approver, args.reason)
            except PromotionRefused as refused:
                print(f"REFUSED: {refused}", file=sys.stderr)
                return 2
            print(f"{registry.model_name}/{args.version} rejected by {args.approver}")
            return 0
        # Approvals and rollbacks run as Dagster jobs on the instance, so the UI shows them too.
        return _run_job(args)
    ledger = governance.ledger()
    if args.command == "list":
        for entry in ledger.entries():
            print(f"{entry.seq:5d} {entry.recorded_at} {entry.kind:22} {entry.subject:32} {entry.actor:36} {json.dumps(entry.payload)[:120]}")
        return 0
    expected = (args.expected_entries, args.expected_head) if args.expected_entries else None
    result = ledger.verify(expected_head=expected)
    if result.ok:
        print(f"ledger intact: {result.entries} entries, head {result.head}")
        return 0
    print(f"LEDGER BROKEN: {result.problem}", file=sys.stderr)
    return 1


def _run_job(args) -> int:
    from pipelines.definitions import defs
    from pipelines.jobs import job_name

    if args.command == "approve":
        job, op, config = "promotion_job", "approve_and_promote", {"version": args.version, "approver": args.approver, "reason": args.reason}
    else:
        job, op, config = "rollback_job", "roll_back_champion", {"actor": args.approver, "reason": args.reason, "to_version": args.version}
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
