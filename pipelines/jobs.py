import dagster as dg

from pipelines.partitions import monthly_partitions

ingestion_assets = dg.AssetSelection.assets(
    "raw_applications", "applications", "quarantined_applications", "application_features", "loan_outcomes"
)

monthly_ingestion_job = dg.define_asset_job(
    "monthly_ingestion_job", selection=ingestion_assets, partitions_def=monthly_partitions,
    description="Land, conform and tokenise one month of applications; build its features and outcomes.",
)

model_training_job = dg.define_asset_job(
    "model_training_job", selection=dg.AssetSelection.assets("training_set", "risk_model", "model_evaluation", "champion_model"),
    description="Assemble matured training data, train and register a candidate, judge it against the gates, settle the champion.",
)

monthly_scoring_job = dg.define_asset_job(
    "monthly_scoring_job", selection=ingestion_assets | dg.AssetSelection.assets("risk_scores"), partitions_def=monthly_partitions,
    description="Ingest one month and score it with the champion.",
)
