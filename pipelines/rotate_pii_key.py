"""PII token key rotation: `make rotate-pii-key` (`python -m pipelines.rotate_pii_key`).

Tokens are made with RISK_PII_TOKEN_KEY only. RISK_PII_TOKEN_KEY_PREVIOUS (comma-separated, newest
first) holds the keys used before: the tokeniser gives a clear value's tokens under every known key,
so data tokenised before and after the change still match. Clear PII is never kept, so stored
tokens are never rewritten: they keep the key id they were made under until their data ages out.

Prints a new key (32 random bytes as 64 hex characters) once on stdout, for the secret store; it
is written nowhere. On stderr: the key ids (new, current, previous) and, per portfolio and dataset,
how many stored tokens carry each key id. `--report`: the report only, no new key. Never prints
the current or a previous key.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

import dagster as dg

from resources.pii import DEVELOPMENT_TOKEN_KEY, PII_KEY_VAR, PII_PREVIOUS_KEYS_VAR, PiiTokeniser

TOKEN_COLUMN_SUFFIX = "_token"


def stored_key_ids(root) -> dict[str, dict[str, int]]:
    """Per dataset under `root` (a portfolio's datasets), how many stored tokens carry each key id:
    every `*_token` column of every Parquet part, read column by column from the files."""
    import pyarrow.parquet as pq

    from riskcore.pii import count_key_ids

    counts: dict[str, dict[str, int]] = {}
    if not root.exists():
        return counts
    for part in sorted(root.rglob("*.parquet"), key=str):
        dataset = part.relative_to(root).parts[0]
        with part.open("rb") as handle:
            parquet = pq.ParquetFile(handle)
            columns = [c for c in parquet.schema_arrow.names if c.endswith(TOKEN_COLUMN_SUFFIX)]
            if not columns:
                continue
            table = parquet.read(columns=columns)
        for column in columns:
            for kid, n in count_key_ids(table.column(column)).items():
                per_dataset = counts.setdefault(dataset, {})
                per_dataset[kid] = per_dataset.get(kid, 0) + n
    return counts


def _role(kid: str, current: str | None, previous: list[str]) -> str:
    from riskcore.pii import LEGACY_KEY_ID, NOT_A_TOKEN

    if kid == current:
        return "current"
    if kid in previous:
        return "previous"
    if kid == LEGACY_KEY_ID:
        return "before key ids (matched by digest under a known key)"
    if kid == NOT_A_TOKEN:
        return NOT_A_TOKEN
    return "UNKNOWN KEY (neither current nor previous: cannot be matched)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only report key ids and stored tokens; no new key")
    parser.add_argument("--portfolio", action="append", help="a portfolio whose datasets are counted (repeatable; default: every portfolio)")
    args = parser.parse_args(argv)

    from pipelines.environment import current_environment, resources_for
    from resources.storage import resolve_path
    from riskcore.pii import key_id

    env = current_environment()
    resources = resources_for(env)  # locally this sets the development key when none is given
    current = os.environ.get(PII_KEY_VAR, "")
    tokeniser = PiiTokeniser(key=current, previous_keys=os.environ.get(PII_PREVIOUS_KEYS_VAR), production=env == "production")
    report = sys.stderr

    def say(text: str = "") -> None:
        print(text, file=report, flush=True)

    say(f"PII token keys (RISK_ENV={env})")
    if not args.report:
        new_key = secrets.token_hex(32)
        print(new_key, flush=True)  # the only place the key ever goes
        say(f"  new key id        {key_id(new_key)}   the new key is the line on stdout, shown once and written nowhere: put it in the secret store")
    current_id = key_id(current) if current else None
    label = " (DEVELOPMENT DEFAULT, not secret)" if current == DEVELOPMENT_TOKEN_KEY else ""
    say(f"  current key id    {current_id or 'none'}   {PII_KEY_VAR}{label if current else ' is not set'}")
    if current and tokeniser.key_problem():
        say(f"  REFUSED: {tokeniser.key_problem()}")
    previous = [key_id(k) for k in tokeniser.previous()]
    shown = [f"{kid} (DEVELOPMENT DEFAULT)" if k == DEVELOPMENT_TOKEN_KEY else kid for kid, k in zip(previous, tokeniser.previous())]
    say(f"  previous key ids  {', '.join(shown) or 'none'}   {PII_PREVIOUS_KEYS_VAR}")

    with dg.build_resources({"portfolios": resources["portfolios"]}) as built:
        names = args.portfolio or [spec.name for spec in built.portfolios.specs()]
        say("stored tokens by key id (every *_token column of each portfolio's datasets):")
        say(f"  {'portfolio':<16} {'dataset':<28} {'key id':<12} {'tokens':>10}  key")
        for name in names:
            store = built.portfolios.named(name).store
            counts = stored_key_ids(resolve_path(store.base_path, store.storage_options))
            if not counts:
                say(f"  {name:<16} {'(no tokens stored)':<28}")
            for dataset, by_id in counts.items():
                for kid, n in sorted(by_id.items(), key=lambda item: -item[1]):
                    say(f"  {name:<16} {dataset:<28} {kid:<12} {n:>10}  {_role(kid, current_id, previous)}")
    if not args.report:
        say(
            f"next: {PII_PREVIOUS_KEYS_VAR} = the current key, then the previous ones (comma-separated); {PII_KEY_VAR} = the new key; "
            "restart the code location and run workers. Follow the change with `make rotate-pii-key ARGS=--report`; "
            "drop a previous key once no stored token you still need carries its id."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
