"""Nothing is lost: every accepted application is scored exactly once."""

import dagster as dg

from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import FEATURES, SCORES
from riskcore.months import month_label


@dg.asset_check(asset=SCORES, blocking=True, partitions_def=monthly_partitions, additional_deps=[FEATURES])
def check_every_application_scored(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    from riskcore.joins import id_reconciliation

    portfolio = portfolios.of(context)
    landing, store = portfolio.landing, portfolio.store
    month = month_label(context.partition_key)
    id_column = landing.applications().only("id")
    counts = id_reconciliation(
        store.read_arrow(FEATURES, month, columns=[id_column]).column(id_column), store.read_arrow(SCORES, month, columns=[id_column]).column(id_column)
    )
    return dg.AssetCheckResult(
        passed=counts["scores"] == counts["applications"] and counts["unscored"] == 0 and counts["scores_without_application"] == 0, metadata=counts
    )
