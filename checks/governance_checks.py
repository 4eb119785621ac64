"""The governance ledger is intact: no entry edited, deleted or reordered."""

import dagster as dg

from resources.governance import Governance


@dg.asset_check(asset="champion_model", description="The governance ledger's hash chain verifies from its first entry to its head.")
def check_ledger_intact(governance: Governance) -> dg.AssetCheckResult:
    result = governance.ledger().verify()
    return dg.AssetCheckResult(passed=result.ok, metadata={"entries": result.entries, "head": result.head, "problem": result.problem or "none"})
