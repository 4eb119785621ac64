"""Nothing is lost: every accepted application is scored exactly once."""

import dagster as dg

from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import FEATURES, SCORES
from riskcore.months import month_label


@dg.asset_check(asset=SCORES, blocking=True, partitions_def=monthly_partitions, additional_deps=[FEATURES])
def check_every_application_scored(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
    portfolio = portfolios.of(context)
    landing, store = portfolio.landing, portfolio.store
    month = month_label(context.partition_key)
    id_column = landing.applications().only("id")
    features = set(store.read(FEATURES, month, columns=[id_column])[id_column])
    scores = store.read(SCORES, month, columns=[id_column])[id_column]
    return dg.AssetCheckResult(
        passed=len(scores) == len(features) and set(scores) == features,
        metadata={
            "applications": len(features),
            "scores": len(scores),
            "duplicate_scores": int(scores.duplicated().sum()),
            "unscored": len(features - set(scores)),
            "scores_without_application": len(set(scores) - features),
        },
    )
