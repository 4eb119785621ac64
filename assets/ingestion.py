"""Landing files -> conformed, PII-tokenised applications and matured outcomes."""


import dagster as dg

from pipelines.partitions import monthly_partitions
from resources.pii import PiiTokeniser
from resources.source import LandingFolder, ScoringCalendar
from resources.storage import DatasetStore
from riskcore.ingestion import LandedFile, ingest, read_landing_bytes
from riskcore.months import month_label

INGESTION = "ingestion"


def _land(target) -> LandedFile:
    return read_landing_bytes(target.name, target.read_bytes())


@dg.asset(partitions_def=monthly_partitions, group_name=INGESTION, kinds={"parquet"})
def raw_applications(context: dg.AssetExecutionContext, landing: LandingFolder) -> dg.MaterializeResult:
    """The month's landing file as delivered: registered by digest, not copied (it holds clear PII)."""
    month = month_label(context.partition_key)
    target = landing.applications_file(month)
    landed = _land(target)
    return dg.MaterializeResult(
        metadata={"file": dg.MetadataValue.path(str(target)), "sha256": landed.sha256, "size_bytes": landed.size_bytes, "rows_received": len(landed.frame)}
    )


@dg.multi_asset(
    name="conform_applications",
    specs=[
        dg.AssetSpec("applications", deps=[raw_applications], partitions_def=monthly_partitions, group_name=INGESTION, kinds={"parquet"},
                     description="Applications that meet the contract; PII replaced by keyed-hash tokens."),
        dg.AssetSpec("quarantined_applications", deps=[raw_applications], partitions_def=monthly_partitions, group_name=INGESTION, kinds={"parquet"},
                     description="Rows that broke a row-level rule, with every rule they broke; PII tokenised."),
    ],
)
def conform_applications(context: dg.AssetExecutionContext, landing: LandingFolder, store: DatasetStore, tokeniser: PiiTokeniser):
    month = month_label(context.partition_key)
    contract = landing.applications()
    landed = _land(landing.applications_file(month))
    result = ingest(landed, contract, month, tokeniser.key)
    accepted = store.write("applications", result.accepted, month)
    quarantined = store.write("quarantined_applications", result.quarantined, month)
    lineage = {"source_file": landed.name, "source_sha256": landed.sha256, "contract_version": contract.label,
               "pii_key": "DEVELOPMENT DEFAULT (not secret)" if tokeniser.uses_development_key else "from RISK_PII_TOKEN_KEY"}
    yield dg.MaterializeResult(asset_key="applications", metadata={**accepted.metadata(), "rows_received": result.received, **lineage})
    yield dg.MaterializeResult(asset_key="quarantined_applications", metadata={**quarantined.metadata(), **lineage})


@dg.asset(partitions_def=monthly_partitions, group_name=INGESTION, kinds={"parquet"})
def loan_outcomes(context: dg.AssetExecutionContext, landing: LandingFolder, calendar: ScoringCalendar, store: DatasetStore) -> dg.MaterializeResult:
    """Default flags of the month's applications, known only once the performance window has elapsed."""
    import pandas as pd

    from riskcore.ingestion import conform

    month = month_label(context.partition_key)
    contract = landing.outcomes()
    if not calendar.matured(month):
        nothing = LandedFile("(labels not matured)", "", 0, pd.DataFrame(columns=[f.name for f in contract.fields]))
        written = store.write("loan_outcomes", conform(nothing, contract)[0], month)
        return dg.MaterializeResult(metadata={**written.metadata(), "labels_matured": False, "as_of": calendar.as_of})
    target = landing.outcomes_file(month)
    if target is None:
        raise FileNotFoundError(f"labels of {month} matured as of {calendar.as_of} but no outcomes file was delivered for it")
    landed = _land(target)
    accepted, quarantined = conform(landed, contract)
    if len(quarantined):
        raise ValueError(f"{landed.name}: {len(quarantined)} outcome rows break the contract, e.g. {quarantined['quarantine_reasons'].iloc[0]}")
    written = store.write("loan_outcomes", accepted, month)
    target_column = contract.only("target")
    return dg.MaterializeResult(
        metadata={**written.metadata(), "labels_matured": True, "as_of": calendar.as_of, "source_sha256": landed.sha256,
                  "default_rate": float(accepted[target_column].mean()) if len(accepted) else 0.0}
    )
