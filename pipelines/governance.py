"""`make ledger` / `make verify-ledger`: read and verify the governance ledger of the current environment."""

import argparse
import json
import sys

import dagster as dg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["verify", "list"])
    parser.add_argument("--expected-entries", type=int, help="entries published earlier (detects a deleted tail)")
    parser.add_argument("--expected-head", help="hash of that last published entry")
    args = parser.parse_args(argv)

    from pipelines.environment import current_environment, resources_for

    with dg.build_resources(resources_for(current_environment())) as resources:
        ledger = resources.governance.ledger()
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


if __name__ == "__main__":
    sys.exit(main())
