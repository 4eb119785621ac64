"""Scores for every accepted application of a month: by the champion, or in a rollout's canary cell
by the challenger; the challenger's shadow scores of every application; and the swap set between them."""

import dagster as dg

from resources.partitions import MONTHLY_BY_THE_3RD, monthly_partitions
from resources.portfolios import Portfolios
from resources.registry import CANARY, CHALLENGER
from riskcore.datasets import APPLICATIONS, CHALLENGER_SCORES, CHAMPION_MODEL, FEATURES, OUTCOMES, SCORES, SWAP_SET
from riskcore.lineage import code_version
from riskcore.months import month_label

ORIGIN = ["source_file_sha256", "contract_version"]  # each score's landing file and contract, from its application


def _scored_by(portfolio, context, version, features, month: str):
    """`version`'s scores of the month's features, each row with the lineage of the decision."""
    from riskcore.features import feature_set_version, feature_specs
    from riskcore.scoring import score

    contract, registry = portfolio.landing.applications(), portfolio.registry
    model = registry.load(version.version)
    lineage = {
        "model_name": version.name,
        "model_version": version.version,
        "model_run_id": version.run_id,
        "feature_set_version": feature_set_version(contract),
        "code_version": code_version(),
        "dagster_run_id": context.run_id,
    }
    return score(features, contract.only("id"), model, feature_specs(contract), portfolio.decision_policy(), lineage)


def _cells(portfolio, rollout, ids):
    """Each application's cell under the governed rollout (all champion when none runs)."""
    import numpy as np

    from riskcore.rollout import CHAMPION, assign_cells, assignment_units

    if not rollout.active:
        return np.full(len(ids), CHAMPION, dtype=object)
    return assign_cells(assignment_units(ids, portfolio.governance.assignment_key), rollout.share)


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="scoring",
    kinds={"parquet"},
    deps=[APPLICATIONS, FEATURES, CHAMPION_MODEL],
    freshness_policy=MONTHLY_BY_THE_3RD,
)
def risk_scores(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """PD, points, decision and up to four reason codes, each row carrying its full lineage, its cell
    and the rollout step: in a canary cell the challenger decides, with its own reasons (Reg B)."""
    from riskcore.joins import aligned
    from riskcore.rollout import CANARY, decide_by_cell

    portfolio = portfolios.of(context)
    landing, store, registry, governance = portfolio.landing, portfolio.store, portfolio.registry, portfolio.governance
    month = month_label(context.partition_key)
    id_column = landing.applications().only("id")
    champion = governance.governed_champion(registry)  # refuses an alias moved outside the ledger
    rollout = governance.governed_rollout(registry)  # likewise the canary's
    features = store.read(FEATURES, month)
    origin = store.read(APPLICATIONS, month, columns=[id_column, *ORIGIN], categories=ORIGIN)
    cells = _cells(portfolio, rollout, features[id_column])
    decided = _scored_by(portfolio, context, champion, features, month)
    canary = cells == CANARY
    shadow = _scored_by(portfolio, context, registry.by_alias(CANARY), features[canary], month) if canary.any() else None
    scores = decide_by_cell(decided, shadow, cells, rollout.step, rollout.share)
    scores = scores.assign(**{c: column.array for c, column in aligned(scores[id_column], origin, id_column)[ORIGIN].items()})
    written = store.write(SCORES, scores, month)
    rates = scores["decision"].value_counts(normalize=True)
    return dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "model": champion.label,
            "contract_version": landing.scores().label,
            "policy_version": scores["policy_version"].iloc[0] if len(scores) else "",
            "mean_pd": float(scores["pd"].mean()) if len(scores) else 0.0,
            **{f"{d}_rate": float(rates.get(d, 0.0)) for d in ("approve", "refer", "decline")},
            "rollout_step": rollout.step,
            "canary_version": rollout.version or "",
            "canary_share": rollout.share,
            "canary_rows": int((scores["cell"] == CANARY).sum()),
        }
    )


@dg.asset(
    partitions_def=monthly_partitions, group_name="scoring", kinds={"parquet"}, deps=[APPLICATIONS, FEATURES, CHAMPION_MODEL, SCORES], output_required=False
)
def challenger_scores(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """The challenger's shadow scores of every application (never a decision): the rollout's canary,
    else the registry's `challenger` when it is not the champion. Nothing when there is none. Each
    row carries the cell and rollout step its application was decided in, as the month's scores
    hold them (not assigned again: a keyed hash of a million ids)."""
    from riskcore.joins import aligned
    from riskcore.rollout import read_scores

    portfolio = portfolios.of(context)
    store, registry, governance = portfolio.store, portfolio.registry, portfolio.governance
    month = month_label(context.partition_key)
    champion, rollout = governance.governed_champion(registry), governance.governed_rollout(registry)
    challenger = registry.by_alias(CANARY) if rollout.active else registry.by_alias(CHALLENGER)
    if challenger is None or challenger.version == champion.version:
        context.log.info(f"{registry.model_name} has no challenger beside its champion {champion.label}: no shadow scores")
        return
    id_column = portfolio.landing.applications().only("id")
    features = store.read(FEATURES, month)
    decided = aligned(features[id_column], read_scores(store, month, [id_column, "cell", "rollout_step"]), id_column, complete=True)
    shadow = _scored_by(portfolio, context, challenger, features, month)
    shadow = shadow.assign(cell=decided["cell"].array, rollout_step=decided["rollout_step"].array)
    written = store.write(CHALLENGER_SCORES, shadow, month)
    rates = shadow["decision"].value_counts(normalize=True)
    yield dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "model": challenger.label,
            "champion": champion.label,
            "rollout_step": rollout.step,
            "mean_pd": float(shadow["pd"].mean()),
            **{f"{d}_rate": float(rates.get(d, 0.0)) for d in ("approve", "refer", "decline")},
        }
    )


@dg.asset(
    partitions_def=monthly_partitions, group_name="scoring", kinds={"parquet"}, deps=[SCORES, CHALLENGER_SCORES, APPLICATIONS, OUTCOMES], output_required=False
)
def swap_set(context: dg.AssetExecutionContext, portfolios: Portfolios):
    """Champion decision x challenger decision on every application of the month (volumes, expected
    bad rates, fairness per cell), and the canary cell's figures the step gates and the rollout's
    rollback sensor read: estimated AUC, realised AUC once labels mature (performance_job refreshes
    it then), the cell's adverse impact ratio."""
    import json

    from riskcore.rollout import CANARY, cell_performance, swap_table

    portfolio = portfolios.of(context)
    month = month_label(context.partition_key)
    if month not in portfolio.store.partitions(CHALLENGER_SCORES):
        context.log.info(f"no shadow scores of {month} (no challenger when it was scored): no swap set")
        return
    frame, sensitive, target = portfolio.rollout_rows(month)
    rules = portfolio.governance.rollout_rules()
    table = swap_table(frame, sensitive, rules.min_group_size)
    written = portfolio.store.write(SWAP_SET, table, month)
    canary = frame["cell"] == CANARY
    counts = table.groupby("swap")["rows"].sum()
    yield dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "challenger_version": frame["challenger_version"].iloc[0],
            "canary_version": frame.loc[canary, "model_version"].iloc[0] if canary.any() else "",
            "rollout_step": int(frame["rollout_step"].iloc[0]),
            "canary_share": float(frame["canary_share"].iloc[0]),
            "applications": len(frame),
            "canary_rows": int(canary.sum()),
            **{f"{k}_rows": int(counts.get(k, 0)) for k in ("swap_in", "swap_out", "same")},
            **cell_performance(frame[canary], target),
            "swap_set": dg.MetadataValue.json(json.loads(table.round(4).to_json(orient="records"))),
        }
    )
