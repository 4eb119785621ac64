"""The offline feature store: model inputs per application month, under a feature-set version."""

import dagster as dg

from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import APPLICATIONS, FEATURES
from riskcore.months import month_label


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="features",
    kinds={"parquet"},
    deps=[APPLICATIONS],
    # Built as soon as the newest month's applications land, never from a month whose contract failed.
    automation_condition=dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed(),
)
def application_features(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """Keys and features only: no tokens, no sensitive attributes, no target."""
    from riskcore.features import build_features, clipped_by_caps, feature_inputs, feature_set_version

    portfolio = portfolios.of(context)
    landing, store = portfolio.landing, portfolio.store
    month = month_label(context.partition_key)
    contract = landing.applications()
    applications = store.read(APPLICATIONS, month, columns=feature_inputs(contract))
    features = build_features(applications, contract, month)
    written = store.write(FEATURES, features, month)
    return dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "feature_set_version": feature_set_version(contract),
            "features": len(features.columns) - 2,
            # a cap is a transformation of record: how many values it clipped, never silently
            "clipped_by_caps": dg.MetadataValue.json(clipped_by_caps(applications, contract)),
            "contract_version": landing.features().label,
            "source_contract_version": contract.label,
        }
    )
