"""Nothing is lost: every row received is accepted or quarantined, every accepted row is scored."""


import dagster as dg

from pipelines.partitions import monthly_partitions
from resources.source import LandingFolder
from resources.storage import DatasetStore
from riskcore.ingestion import read_landing_bytes
from riskcore.months import month_label


@dg.asset_check(asset="applications", blocking=True, partitions_def=monthly_partitions, additional_deps=["quarantined_applications"])
def check_received_equals_accepted_plus_quarantined(context: dg.AssetCheckExecutionContext, landing: LandingFolder, store: DatasetStore) -> dg.AssetCheckResult:
    month = month_label(context.partition_key)
    target = landing.applications_file(month)
    received = len(read_landing_bytes(target.name, target.read_bytes()).frame)
    accepted, quarantined = store.rows("applications", month), store.rows("quarantined_applications", month)
    return dg.AssetCheckResult(
        passed=received == accepted + quarantined,
        metadata={"received": received, "accepted": accepted, "quarantined": quarantined, "unaccounted": received - accepted - quarantined},
    )


@dg.asset_check(asset="risk_scores", blocking=True, partitions_def=monthly_partitions, additional_deps=["application_features"])
def check_every_application_scored(context: dg.AssetCheckExecutionContext, landing: LandingFolder, store: DatasetStore) -> dg.AssetCheckResult:
    month = month_label(context.partition_key)
    id_column = landing.applications().only("id")
    features = set(store.read("application_features", month, columns=[id_column])[id_column])
    scores = store.read("risk_scores", month, columns=[id_column])[id_column]
    return dg.AssetCheckResult(
        passed=len(scores) == len(features) and set(scores) == features,
        metadata={"applications": len(features), "scores": len(scores), "duplicate_scores": int(scores.duplicated().sum()),
                  "unscored": len(features - set(scores)), "scores_without_application": len(set(scores) - features)},
    )
