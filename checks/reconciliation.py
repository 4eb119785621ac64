"""Nothing is lost: every accepted application is scored exactly once."""

import dagster as dg

from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import FEATURES, SCORES
from riskcore.months import month_label


@dg.asset_check(asset=SCORES, blocking=True, partitions_def=monthly_partitions, additional_deps=[FEATURES])
def check_every_application_scored(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    import pyarrow.compute as pc

    portfolio = portfolios.of(context)
    landing, store = portfolio.landing, portfolio.store
    month = month_label(context.partition_key)
    id_column = landing.applications().only("id")
    # Distinct ids compared in Arrow, not as Python sets of a million strings each.
    applications = pc.unique(store.read_arrow(FEATURES, month, columns=[id_column]).column(id_column))
    scored = store.read_arrow(SCORES, month, columns=[id_column]).column(id_column)
    distinct = pc.unique(scored)
    both = pc.sum(pc.is_in(distinct, value_set=applications)).as_py() or 0
    unscored, without_application = len(applications) - both, len(distinct) - both
    return dg.AssetCheckResult(
        passed=len(scored) == len(applications) and unscored == 0 and without_application == 0,
        metadata={
            "applications": len(applications),
            "scores": len(scored),
            "duplicate_scores": len(scored) - len(distinct),
            "unscored": unscored,
            "scores_without_application": without_application,
        },
    )
