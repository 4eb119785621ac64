"""Landing files -> conformed, PII-tokenised applications and matured outcomes."""

import hashlib

import dagster as dg

from checks.validation import ContractValidator
from resources.partitions import monthly_partitions
from resources.pii import PiiTokeniser
from resources.portfolios import Portfolios, portfolio_of_run_step
from riskcore.datasets import APPLICATIONS, OUTCOMES, QUARANTINED
from riskcore.months import month_label

INGESTION = "ingestion"


@dg.asset(partitions_def=monthly_partitions, group_name=INGESTION, kinds={"parquet"})
def raw_applications(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """The month's landing file as delivered: registered by digest, not copied (it holds clear PII).

    Registered even when unreadable: the contract check downstream says why it is blocked."""
    from riskcore.ingestion import ContractViolation, delivered_rows

    month = month_label(context.partition_key)
    landing = portfolios.of(context).landing
    target = landing.applications_file(month)
    data = target.read_bytes()
    try:
        # counted as conforming counts them (a file without its header row delivered its first line as
        # a row); a Parquet file's from its footer, its million rows not decoded to be counted
        rows: int | None = delivered_rows(target.name, data, landing.applications())
    except ContractViolation as violation:
        rows = None
        context.log.warning(str(violation))
    return dg.MaterializeResult(
        metadata={"file": dg.MetadataValue.path(str(target)), "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "rows_received": rows}
    )


@dg.multi_asset(
    name="conform_applications",
    specs=[
        dg.AssetSpec(
            APPLICATIONS,
            deps=[raw_applications],
            partitions_def=monthly_partitions,
            group_name=INGESTION,
            kinds={"parquet"},
            description="Applications that meet the contract; PII replaced by keyed-hash tokens.",
        ),
        dg.AssetSpec(
            QUARANTINED,
            deps=[raw_applications],
            partitions_def=monthly_partitions,
            group_name=INGESTION,
            kinds={"parquet"},
            description="Rows that broke a row rule, with every rule they broke; PII tokenised.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "check_applications_contract",
            asset=APPLICATIONS,
            blocking=True,
            description="The Great Expectations suite of the contract: schema, row count, unique ids, null shares, medians, row rules within tolerance.",
        ),
        dg.AssetCheckSpec(
            "check_quarantine_within_tolerance",
            asset=APPLICATIONS,
            blocking=True,
            description="No more of the month's rows quarantined than the contract tolerates.",
        ),
        dg.AssetCheckSpec(
            "check_received_equals_accepted_plus_quarantined",
            asset=APPLICATIONS,
            blocking=True,
            description="Every received row is accepted or quarantined: counts read back from the written files.",
        ),
    ],
)
def conform_applications(context: dg.AssetExecutionContext, portfolios: Portfolios, tokeniser: PiiTokeniser, validator: ContractValidator):
    from checks.suites import violation_report
    from riskcore.ingestion import ingest

    portfolio = portfolios.of(context)
    landing, store, governance = portfolio.landing, portfolio.store, portfolio.governance
    month = month_label(context.partition_key)
    contract = landing.applications()
    target = landing.applications_file(month)
    result = ingest(target.name, target.read_bytes(), contract, month, tokeniser.key)
    accepted = store.write(APPLICATIONS, result.accepted, month)
    quarantined = store.write(QUARANTINED, result.quarantined, month)
    if result.violation is not None:
        context.log.error(str(result.violation))
        report = violation_report(contract, result.violation)
    else:
        report = validator.validate(result.checked, contract, batch=f"{portfolio.name}-{contract.id}-{month}", row_rules=False)
        report.unexpected |= result.quarantine_reasons()
    lineage = {
        "source_file": result.file,
        "source_sha256": result.sha256,
        "contract_version": contract.label,
        "pii_key": "DEVELOPMENT DEFAULT (not secret)" if tokeniser.uses_development_key else "from RISK_PII_TOKEN_KEY",
    }
    yield dg.MaterializeResult(
        asset_key=_key(context, APPLICATIONS),
        metadata={
            **accepted.metadata(),
            "rows_received": result.received,
            "missing_markers": dg.MetadataValue.json(result.missing_markers),
            "header_changes": dg.MetadataValue.json(result.header_changes),
            **lineage,
        },
    )
    yield dg.MaterializeResult(asset_key=_key(context, QUARANTINED), metadata={**quarantined.metadata(), "reasons": result.quarantine_reasons(), **lineage})
    if not report.success:
        governance.ledger().append(
            "contract_violation",
            f"{portfolio.name}/{contract.id}/{month}",
            "pipeline",
            {
                "file": result.file,
                "sha256": result.sha256,
                "contract_version": contract.label,
                "failed_rules": report.failed,
                "dagster_run_id": context.run_id,
            },
        )
    yield dg.AssetCheckResult(
        check_name="check_applications_contract",
        asset_key=_key(context, APPLICATIONS),
        passed=report.success,
        metadata={**report.metadata(), "source_file": result.file},
    )
    share = quarantined.rows / result.received if result.received else 0.0
    yield dg.AssetCheckResult(
        check_name="check_quarantine_within_tolerance",
        asset_key=_key(context, APPLICATIONS),
        passed=result.violation is None and share <= contract.quality.quarantine_tolerance,
        metadata={
            "quarantined_share": share,
            "tolerance": contract.quality.quarantine_tolerance,
            "reasons": result.quarantine_reasons(),
            "source_file": result.file,
        },
    )
    written = store.rows(APPLICATIONS, month), store.rows(QUARANTINED, month)
    yield dg.AssetCheckResult(
        check_name="check_received_equals_accepted_plus_quarantined",
        asset_key=_key(context, APPLICATIONS),
        passed=result.received == sum(written),
        metadata={"received": result.received, "accepted": written[0], "quarantined": written[1], "unaccounted": result.received - sum(written)},
    )


@dg.asset(partitions_def=monthly_partitions, group_name=INGESTION, kinds={"parquet"})
def loan_outcomes(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """Default flags of the month's applications, known only once the performance window has elapsed."""
    import pandas as pd

    from riskcore.ingestion import LandedFile, conform, read_landing_bytes

    portfolio = portfolios.of(context)
    landing, calendar, store = portfolio.landing, portfolio.calendar, portfolio.store
    month = month_label(context.partition_key)
    contract = landing.outcomes()
    if not calendar.matured(month):
        nothing = LandedFile("(labels not matured)", "", 0, pd.DataFrame(columns=[f.name for f in contract.fields]))
        written = store.write(OUTCOMES, conform(nothing, contract)[0], month)
        return dg.MaterializeResult(metadata={**written.metadata(), "labels_matured": False, "as_of": calendar.as_of})
    target = landing.outcomes_file(month)
    if target is None:
        raise FileNotFoundError(f"labels of {month} matured as of {calendar.as_of} but no outcomes file was delivered for it")
    landed = read_landing_bytes(target.name, target.read_bytes())
    accepted, quarantined = conform(landed, contract)
    if len(quarantined):
        raise ValueError(f"{landed.name}: {len(quarantined)} outcome rows break the contract, e.g. {quarantined['quarantine_reasons'].iloc[0]}")
    written = store.write(OUTCOMES, accepted, month)
    target_column = contract.only("target")
    return dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "labels_matured": True,
            "as_of": calendar.as_of,
            "source_sha256": landed.sha256,
            "default_rate": float(accepted[target_column].mean()) if len(accepted) else 0.0,
        }
    )


def _key(context: dg.AssetExecutionContext, name: str) -> dg.AssetKey:
    """An output of this multi-asset under the portfolio's prefix."""
    return dg.AssetKey([portfolio_of_run_step(context), name])
