"""The swap set against the decisions: the canary cell holds the challenger's own decisions, its
share is the step's within binomial error, and it treats groups alike."""

import dagster as dg

from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import APPLICATIONS, CHALLENGER_SCORES, SCORES, SWAP_SET
from riskcore.months import month_label

# Compared, in the canary cell, with the challenger's shadow row: what it decided and why (Reg B).
DECIDED_BY = ["pd", "decision", "model_version", *(f"reason_code_{i}" for i in range(1, 5))]


@dg.asset_check(asset=SWAP_SET, blocking=True, partitions_def=monthly_partitions, additional_deps=[SCORES, CHALLENGER_SCORES])
def check_swap_set_reconciles(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    """Every decision is in the swap set once; canary decisions are the challenger's shadow scores, reasons included."""
    from riskcore.rollout import CANARY, read_scores, reconciliation_problems

    portfolio = portfolios.of(context)
    store, month = portfolio.store, month_label(context.partition_key)
    id_column = portfolio.landing.applications().only("id")
    texts = [c for c in DECIDED_BY if c != "pd"]  # as categories: a few distinct values each, not a million strings
    scores = read_scores(store, month, [id_column, *DECIDED_BY, "cell", "champion_decision"], categories=[*texts, "cell", "champion_decision"])
    shadow = store.read(CHALLENGER_SCORES, month, columns=[id_column, *DECIDED_BY], categories=texts)
    table = store.read(SWAP_SET, month)
    problems = reconciliation_problems(scores, shadow, id_column, DECIDED_BY)
    canary = int((scores["cell"] == CANARY).sum())
    if int(table["rows"].sum()) != len(scores) or int(table["canary_rows"].sum()) != canary:
        problems.append(f"swap set holds {int(table['rows'].sum())} rows ({int(table['canary_rows'].sum())} canary), the decisions {len(scores)} ({canary})")
    return dg.AssetCheckResult(passed=not problems, metadata={"decisions": len(scores), "canary_decisions": canary, "problems": "; ".join(problems) or "none"})


@dg.asset_check(asset=SWAP_SET, partitions_def=monthly_partitions, additional_deps=[SCORES])
def check_canary_share(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    """The canary cell's share of the month is the step's within the policy's binomial standard errors."""
    from riskcore.rollout import CANARY, read_scores, share_deviation

    portfolio = portfolios.of(context)
    scores = read_scores(portfolio.store, month_label(context.partition_key), ["cell", "canary_share"])
    rules = portfolio.governance.rollout_rules()
    share, canary = float(scores["canary_share"].iloc[0]), int((scores["cell"] == CANARY).sum())
    deviation = share_deviation(canary, len(scores), share)
    return dg.AssetCheckResult(
        passed=deviation <= rules.share_tolerance_sigmas,
        metadata={"step_share": share, "cell_share": canary / len(scores), "standard_errors": deviation, "tolerance": rules.share_tolerance_sigmas},
    )


@dg.asset_check(asset=SWAP_SET, partitions_def=monthly_partitions, additional_deps=[SCORES, APPLICATIONS])
def check_canary_cell_fairness(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    """Approval rates by group in the canary cell (adverse impact ratio, rollout policy): a warning
    each month; the step gates refuse to advance on it."""
    from riskcore.rollout import CANARY, cell_fairness, read_scores

    portfolio = portfolios.of(context)
    month = month_label(context.partition_key)
    id_column = portfolio.landing.applications().only("id")
    scores = read_scores(portfolio.store, month, ["decision", "cell"], ["decision", "cell"])  # the decisions as stored (as categories)
    canary = (scores["cell"] == CANARY).to_numpy()
    if not canary.any():
        return dg.AssetCheckResult(passed=True, metadata={"not_judged": "no canary cell this month"})
    sensitive = portfolio.sensitive_attributes(month, portfolio.store.read_arrow(SCORES, month, columns=[id_column]).column(id_column))
    gate = cell_fairness(
        portfolio.governance.rollout_rules(), (scores.loc[canary, "decision"] == "approve").to_numpy(), sensitive[canary].reset_index(drop=True)
    )
    return dg.AssetCheckResult(
        passed=gate.passed,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"adverse_impact_ratio": gate.value, "threshold": gate.threshold, "note": gate.note, "canary_decisions": int(canary.sum())},
    )
