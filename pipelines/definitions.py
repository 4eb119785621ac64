"""The code location: one Definitions object for the UI, the daemon, `dg` and CI."""

import warnings

import dagster as dg

# Partitioned asset checks are a preview API in dagster 1.13; the stack is pinned, the
# snapshot test catches any change in how they resolve, so the warning adds nothing.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec.*")
# Same for the reports' single-run backfill policy (beta in 1.13).
warnings.filterwarnings("ignore", message=".*Parameter `backfill_policy`.*")
warnings.filterwarnings("ignore", message=".*Parameter `owners` of initializer `SensorDefinition.*")

from assets import features, ingestion, monitoring, registry, reporting, scoring, training
from checks import contract_checks, governance_checks, reconciliation
from pipelines.environment import current_environment, resources_for
from resources.alerts import AlertWebhook
from pipelines.jobs import (
    model_training_job, monitoring_job, monthly_cycle_job, monthly_ingestion_job, monthly_scoring_job, performance_job, promotion_job,
    regulatory_report_job, rollback_job,
)
from pipelines.schedules import daily_monitoring_schedule, monthly_cycle_schedule
from pipelines.sensors import drift_retraining_sensor, feature_automation_sensor, performance_rollback_sensor, run_failure_alert_sensor


def build_definitions(resources: dict) -> dg.Definitions:
    """The whole pipeline over the given resources; tests pass their own, nothing else differs."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, features, training, registry, scoring, monitoring, reporting]),
        asset_checks=dg.load_asset_checks_from_modules([contract_checks, governance_checks, reconciliation]),
        jobs=[monthly_ingestion_job, model_training_job, monthly_scoring_job, monthly_cycle_job, monitoring_job, performance_job, regulatory_report_job,
              promotion_job, rollback_job],
        schedules=[monthly_cycle_schedule, daily_monitoring_schedule],
        sensors=[feature_automation_sensor, drift_retraining_sensor, performance_rollback_sensor, run_failure_alert_sensor],
        resources={"alerts": AlertWebhook(), **resources},  # alerts are optional: without a webhook they are logged
        # ML steps are coarse; a process per step costs ~3.7 s here (see FIELD-NOTES).
        executor=dg.in_process_executor,
    )


defs = build_definitions(resources_for(current_environment()))
