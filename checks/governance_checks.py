"""The governance ledger is intact: no entry edited, deleted or reordered."""

import dagster as dg

from resources.portfolios import Portfolios
from riskcore.datasets import CHAMPION_MODEL


@dg.asset_check(asset=CHAMPION_MODEL, description="The governance ledger's hash chain verifies from its first entry to its head.")
def check_ledger_intact(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    result = portfolios.of(context).governance.ledger().verify()
    return dg.AssetCheckResult(
        passed=result.ok,
        metadata={"entries": result.entries, "head": result.head, "problem": result.problem or "none", "authenticated": result.authenticated},
    )
