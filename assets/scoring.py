"""Scores for every accepted application of a month, by the champion, under the decision policy."""

import dagster as dg

from resources.partitions import MONTHLY_BY_THE_3RD, monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import APPLICATIONS, CHAMPION_MODEL, FEATURES, SCORES
from riskcore.lineage import code_version
from riskcore.months import month_label


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="scoring",
    kinds={"parquet"},
    deps=[APPLICATIONS, FEATURES, CHAMPION_MODEL],
    freshness_policy=MONTHLY_BY_THE_3RD,
)
def risk_scores(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """PD, points, decision and up to four reason codes, each row carrying its full lineage."""
    from riskcore.features import feature_set_version, feature_specs
    from riskcore.scoring import score

    portfolio = portfolios.of(context)
    landing, store, registry = portfolio.landing, portfolio.store, portfolio.registry
    month = month_label(context.partition_key)
    contract = landing.applications()
    id_column = contract.only("id")
    champion = portfolio.governance.governed_champion(registry)  # refuses an alias moved outside the ledger
    model = registry.load(champion.version)
    features = store.read(FEATURES, month)
    origin = store.read(APPLICATIONS, month, columns=[id_column, "source_file_sha256", "contract_version"])
    lineage = {
        "model_name": champion.name,
        "model_version": champion.version,
        "model_run_id": champion.run_id,
        "feature_set_version": feature_set_version(contract),
        "code_version": code_version(),
        "dagster_run_id": context.run_id,
    }
    scores = score(features, id_column, model, feature_specs(contract), portfolio.decision_policy(), lineage)
    scores = scores.merge(origin, on=id_column, how="left", validate="one_to_one")
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
        }
    )
