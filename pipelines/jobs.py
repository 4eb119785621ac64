import dagster as dg

from assets.registry import champion_metadata
from pipelines.partitions import monthly_partitions
from resources.governance import Governance
from resources.registry import ModelRegistry

ingestion_assets = dg.AssetSelection.assets(
    "raw_applications", "applications", "quarantined_applications", "application_features", "loan_outcomes"
)

monthly_ingestion_job = dg.define_asset_job(
    "monthly_ingestion_job", selection=ingestion_assets, partitions_def=monthly_partitions,
    description="Land, conform and tokenise one month of applications; build its features and outcomes.",
)

# Run queue limits in production key on this tag (deploy/dagster.yaml): one training at a time,
# a configurable cap on scoring.
RUN_KIND = "risk/run_kind"

model_training_job = dg.define_asset_job(
    "model_training_job", selection=dg.AssetSelection.assets("training_set", "risk_model", "model_evaluation", "champion_model"),
    tags={RUN_KIND: "training"},
    description="Assemble matured training data, train and register a candidate, judge it against the gates, settle the champion.",
)

monthly_scoring_job = dg.define_asset_job(
    "monthly_scoring_job", selection=ingestion_assets | dg.AssetSelection.assets("risk_scores"), partitions_def=monthly_partitions,
    description="Ingest one month and score it with the champion.", tags={RUN_KIND: "scoring"},
)

monthly_cycle_job = dg.define_asset_job(
    "monthly_cycle_job", selection=ingestion_assets | dg.AssetSelection.assets("risk_scores", "drift_report", "regulatory_report"),
    partitions_def=monthly_partitions, tags={RUN_KIND: "scoring"},
    description="The month's whole cycle: ingest, score with the champion, measure drift, build and publish the regulatory report.",
)


monitoring_job = dg.define_asset_job(
    "monitoring_job", selection=dg.AssetSelection.assets("drift_report"), partitions_def=monthly_partitions,
    description="Drift of one month against the champion's training reference.",
)

performance_job = dg.define_asset_job(
    "performance_job", selection=dg.AssetSelection.assets("loan_outcomes", "model_performance"), partitions_def=monthly_partitions,
    description="Load a month's matured default flags and measure the model that scored it (nothing before they mature).",
)

regulatory_report_job = dg.define_asset_job(
    "regulatory_report_job", selection=dg.AssetSelection.assets("regulatory_report"), partitions_def=monthly_partitions,
    description="Build (or rebuild and compare with the published) regulatory report of one month, or of a range in one run.",
)


class ApprovalConfig(dg.Config):
    version: str
    approver: str
    reason: str


class RollbackConfig(dg.Config):
    actor: str
    reason: str
    to_version: str | None = None  # default: previous_champion
    from_version: str | None = None  # only if this version is still champion (sensors set it)


@dg.op
def approve_and_promote(context: dg.OpExecutionContext, config: ApprovalConfig, registry: ModelRegistry, governance: Governance) -> None:
    champion = governance.promote(registry, config.version, config.approver, config.reason, run_id=context.run_id)
    context.log_event(dg.AssetMaterialization("champion_model", metadata=champion_metadata(champion, f"approved by {config.approver}: {config.reason}", governance.policy().label)))
    context.log.info(f"{champion.label} is champion, approved by {config.approver}")


@dg.op
def roll_back_champion(context: dg.OpExecutionContext, config: RollbackConfig, registry: ModelRegistry, governance: Governance) -> None:
    champion = governance.rollback(registry, config.actor, config.reason, config.to_version, run_id=context.run_id, from_version=config.from_version)
    context.log_event(dg.AssetMaterialization("champion_model", metadata=champion_metadata(champion, f"rolled back by {config.actor}: {config.reason}", governance.policy().label)))
    context.log.info(f"{champion.label} is champion again ({config.reason})")


@dg.job(description="Approve a challenger (the approver must be listed in the promotion policy) and promote it if its gates passed.")
def promotion_job():
    approve_and_promote()


@dg.job(description="Point champion back to previous_champion, or to a named version that passed its gates.")
def rollback_job():
    roll_back_champion()
