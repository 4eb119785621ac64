"""Contracts and PII guards on the datasets that leave ingestion: features and scores."""

import dagster as dg

from checks.validation import ContractValidator
from resources.partitions import monthly_partitions
from resources.portfolios import Portfolios
from riskcore.datasets import FEATURES, SCORES
from riskcore.months import month_label


def _read_to_check(portfolio, asset: str, month: str):
    """The month of `asset` as the checks read it: its text as categories (Parquet's dictionaries,
    no Python string per row), but for the id, whose million distinct values would each become a
    category for nothing. Read once for the contract and the PII check of the same run (neither
    modifies it)."""
    id_column, store = portfolio.landing.applications().only("id"), portfolio.store

    def read():
        return store.read(asset, month, categories=[c for c in store.text_columns(asset, month) if c != id_column])

    return store.derived(asset, month, "rows as the checks read them", read)


def _contract_check(asset: str, contract_of, description: str):
    @dg.asset_check(asset=asset, name=f"check_{asset.split('_')[-1]}_contract", blocking=True, partitions_def=monthly_partitions, description=description)
    def check(context: dg.AssetCheckExecutionContext, portfolios: Portfolios, validator: ContractValidator) -> dg.AssetCheckResult:
        portfolio = portfolios.of(context)
        month = month_label(context.partition_key)
        contract = contract_of(portfolio.landing)
        report = validator.validate(_read_to_check(portfolio, asset, month), contract, batch=f"{portfolio.name}-{contract.id}-{month}")
        return dg.AssetCheckResult(passed=report.success, metadata=report.metadata())

    return check


def _no_pii_check(asset: str):
    @dg.asset_check(
        asset=asset,
        name=f"check_no_pii_in_{asset.split('_')[-1]}",
        blocking=True,
        partitions_def=monthly_partitions,
        description=f"No SSN, e-mail or phone pattern and no clear PII value of the month's landing file in {asset}.",
    )
    def check(context: dg.AssetCheckExecutionContext, portfolios: Portfolios) -> dg.AssetCheckResult:
        from riskcore.ingestion import ContractViolation, mark_missing, match_header, read_landing_bytes
        from riskcore.pii import clear_texts, find_pii

        portfolio = portfolios.of(context)
        landing = portfolio.landing
        month = month_label(context.partition_key)
        target = landing.applications_file(month)
        contract = landing.applications()
        try:  # the clear values as ingestion read them: header names matched the same way
            matched = match_header(read_landing_bytes(target.name, target.read_bytes()), contract).frame
        except ContractViolation:
            matched = None
        pii_columns = [c for c in contract.columns("pii") if matched is not None and c in matched.columns]
        raw = mark_missing(matched[pii_columns], contract)[0] if pii_columns else None
        clear = clear_texts(raw, pii_columns)
        findings = find_pii(_read_to_check(portfolio, asset, month), clear)
        return dg.AssetCheckResult(passed=not findings, metadata={"columns_scanned_against_clear_values": len(clear) > 0, "findings": findings})

    return check


check_features_contract = _contract_check(FEATURES, lambda landing: landing.features(), "The feature-store contract (columns follow the source contract).")
check_scores_contract = _contract_check(SCORES, lambda landing: landing.scores(), "The risk-scores contract: ranges, decisions, lineage present.")
check_no_pii_in_features = _no_pii_check(FEATURES)
check_no_pii_in_scores = _no_pii_check(SCORES)
