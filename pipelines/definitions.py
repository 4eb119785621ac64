"""The code location: one Definitions object for the UI, the daemon, `dg` and CI, built from the
portfolio files: every portfolio gets the same assets, checks, jobs, schedules and sensors
under its own name, over shared resources and one instance."""

import warnings

import dagster as dg

# Partitioned asset checks are a preview API in dagster 1.13; the stack is pinned, the
# snapshot test catches any change in how they resolve, so the warning adds nothing.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
# Same for the reports' single-run backfill policy (beta in 1.13).
warnings.filterwarnings("ignore", message=".*Parameter `backfill_policy`.*")
warnings.filterwarnings("ignore", message=".*Parameter `owners` of initializer `SensorDefinition.*")

from assets import features, ingestion, monitoring, registry, reporting, review, scoring, training  # noqa: E402
from checks import contract_checks, governance_checks, reconciliation, rollout_checks  # noqa: E402
from pipelines.environment import current_environment, resources_for  # noqa: E402
from pipelines.jobs import portfolio_jobs  # noqa: E402
from pipelines.schedules import daily_monitoring_schedule, daily_review_schedule, monthly_cycle_schedule  # noqa: E402
from pipelines.sensors import (  # noqa: E402
    drift_retraining_sensor,
    feature_automation_sensor,
    performance_rollback_sensor,
    rollout_rollback_sensor,
    run_failure_alert_sensor,
)
from resources.alerts import AlertWebhook  # noqa: E402
from resources.partitions import monthly_partitions  # noqa: E402
from riskcore.datasets import APPLICATIONS, FEATURES, OUTCOMES, QUARANTINED, RAW_APPLICATIONS, SCORES  # noqa: E402
from riskcore.portfolio import Portfolio  # noqa: E402

ASSET_MODULES = [ingestion, features, training, registry, scoring, review, monitoring, reporting]
CHECK_MODULES = [contract_checks, governance_checks, reconciliation, rollout_checks]


# Who answers for a dataset: the owner of the contract that governs it (the portfolio's owner for the rest).
GOVERNING_CONTRACT = {
    RAW_APPLICATIONS: "applications",
    APPLICATIONS: "applications",
    QUARANTINED: "applications",
    OUTCOMES: "outcomes",
    FEATURES: "features",
    SCORES: "scores",
}


def portfolio_definitions(portfolio: Portfolio) -> dg.Definitions:
    """One portfolio: its assets under its key prefix and its own groups, each owned by its contract's owner."""
    prefix = portfolio.name
    owners = {kind: portfolio.contract(kind).owner for kind in set(GOVERNING_CONTRACT.values())}

    def owned(spec: dg.AssetSpec) -> dg.AssetSpec:
        kind = GOVERNING_CONTRACT.get(spec.key.path[-1])
        return spec.replace_attributes(group_name=f"{prefix}_{spec.group_name}", owners=[owners[kind] if kind else portfolio.owner])

    assets = [a.map_asset_specs(owned) for a in dg.load_assets_from_modules(ASSET_MODULES, key_prefix=prefix)]
    jobs = portfolio_jobs(prefix, monthly_partitions)
    policy = portfolio.policies["monitoring"]
    return dg.Definitions(
        assets=assets,
        asset_checks=dg.load_asset_checks_from_modules(CHECK_MODULES, asset_key_prefix=prefix),
        jobs=list(jobs.values()),
        schedules=[
            monthly_cycle_schedule(prefix, jobs["monthly_cycle_job"]),
            daily_monitoring_schedule(prefix, jobs["performance_job"]),
            daily_review_schedule(prefix, jobs["review_job"]),
        ],
        sensors=[
            drift_retraining_sensor(prefix, policy, jobs["model_training_job"]),
            performance_rollback_sensor(prefix, policy, jobs["rollback_job"]),
            rollout_rollback_sensor(prefix, jobs["rollback_job"]),
        ],
    )


def build_definitions(resources: dict) -> dg.Definitions:
    """Every portfolio of `resources["portfolios"]` over the given resources; tests pass their own."""
    specs = resources["portfolios"].specs()
    shared = dg.Definitions(
        sensors=[feature_automation_sensor([p.name for p in specs]), run_failure_alert_sensor],
        resources={"alerts": AlertWebhook(), **resources},  # alerts are optional: without a webhook they are logged
        # ML steps are coarse; a process per step costs ~3.7 s here (see FIELD-NOTES).
        executor=dg.in_process_executor,
    )
    return dg.Definitions.merge(shared, *[portfolio_definitions(p) for p in specs])


defs = build_definitions(resources_for(current_environment()))
