"""The governance trail holds: the ledger intact up to the head anchored outside it, and scores
made only by the version the ledger says is champion."""

import dagster as dg

from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import CHAMPION_MODEL, SCORES
from riskcore.months import month_label


@dg.asset_check(
    asset=CHAMPION_MODEL,
    description="The governance ledger's chain verifies from its first entry to its head, and still holds the head anchored in the registry.",
)
def check_ledger_intact(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    portfolio = portfolios.of(context)
    result, anchored = portfolio.governance.verify(portfolio.registry)
    return dg.AssetCheckResult(
        passed=result.ok,
        metadata={
            "entries": result.entries,
            "head": result.head,
            "anchored_head": anchored or "none yet",
            "problem": result.problem or "none",
            "authenticated": result.authenticated,
        },
    )


@dg.asset_check(
    asset=SCORES,
    blocking=True,
    partitions_def=monthly_partitions,
    description="Every score was made by the version the ledger's last promotion or rollback made champion (and the registry agrees), "
    "or in a rollout's canary cell by the version the ledger's rollout put there, read from a ledger that still holds the head anchored in the registry.",
)
def check_scores_by_governed_champion(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    from resources.governance import ChampionNotGoverned
    from riskcore.rollout import read_scores

    portfolio = portfolios.of(context)
    scores = read_scores(portfolio.store, month_label(context.partition_key), ["model_version", "cell"])
    versions = sorted(set(scores["model_version"]))
    # Every scoring run compares the ledger with its anchor: a trail cut back or rewritten cannot vouch for a champion.
    trail, anchored = portfolio.governance.verify(portfolio.registry)
    if not trail.ok:
        return dg.AssetCheckResult(passed=False, metadata={"scored_by": versions, "problem": f"ledger: {trail.problem}", "anchored_head": anchored or "none"})
    try:
        champion = portfolio.governance.governed_champion(portfolio.registry).version
        rollout = portfolio.governance.governed_rollout(portfolio.registry)
    except ChampionNotGoverned as refused:
        return dg.AssetCheckResult(passed=False, metadata={"scored_by": versions, "problem": str(refused)})
    governed = {"champion": champion, **({"canary": rollout.version} if rollout.active else {})}
    by_cell = {cell: sorted(set(group)) for cell, group in scores.groupby("cell")["model_version"]}
    return dg.AssetCheckResult(
        passed=all(cell in governed and found == [governed[cell]] for cell, found in by_cell.items()),
        metadata={
            "scored_by": versions,
            "governed_champion": champion,
            "governed_canary": rollout.version or "none",
            "ledger_entries": trail.entries,
            "anchored_head": anchored or "none yet",
        },
    )
