"""Great Expectations 1.x as the contract engine: an ephemeral context, no dagster-ge (it needs GX < 1.0)."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

import dagster as dg

from checks.suites import ContractReport, build_suite, dataset_rule_columns, summarise
from riskcore.contract import Contract

if TYPE_CHECKING:
    import pandas as pd

DOCS_SITE = "contracts"


def _context(docs_dir: str | None):
    """A fresh ephemeral context per validation (about 5 ms): no state shared between runs."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    # No default docs site: GX would otherwise create a temp directory per context, and leave it.
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    if docs_dir:
        site = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        context.add_data_docs_site(DOCS_SITE, site)
    return context


class ContractValidator(dg.ConfigurableResource):
    """Runs a contract's suite on a DataFrame; Data Docs go to `data_docs_dir` when set."""

    data_docs_dir: str | None = None

    def validate(self, frame: pd.DataFrame, contract: Contract, batch: str, columns: list[str] | None = None, row_rules: bool = True) -> ContractReport:
        import great_expectations as gx
        import numpy as np
        import pandas as pd
        from great_expectations.checkpoint import UpdateDataDocsAction
        from great_expectations.core.run_identifier import RunIdentifier

        if not row_rules:
            # GX hashes and copies the whole frame on every run: pass the values the dataset rules
            # read, null masks where they read only null-ness, and one-byte placeholders for the
            # rest (the schema rule reads names only). On a 1M-row month this cuts the validation
            # time by more than half (bench/contract_validation.py).
            by_value, null_only = dataset_rule_columns(contract)

            def stand_in(column: str):
                if column in by_value:
                    return frame[column]
                if column in null_only:
                    return np.where(frame[column].isna().to_numpy(), np.nan, 0.0)
                return np.zeros(len(frame), dtype=bool)

            frame = pd.DataFrame({c: stand_in(c) for c in frame.columns}, index=frame.index)
        # One site per contract and batch: GX rebuilds a site from its context's results, so a
        # shared site would keep only the latest validation's pages.
        docs_dir = os.path.join(os.path.abspath(self.data_docs_dir), contract.id, batch) if self.data_docs_dir else None
        context = _context(docs_dir)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", contract.id)
        batch_definition = context.data_sources.add_pandas("pipeline").add_dataframe_asset(name).add_batch_definition_whole_dataframe(batch)
        suite = context.suites.add(build_suite(contract, columns, row_rules))
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_definition, suite=suite))
        actions = [UpdateDataDocsAction(name="docs", site_names=[DOCS_SITE])] if docs_dir else []
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=name, validation_definitions=[definition], actions=actions, result_format={"result_format": "BASIC", "partial_unexpected_count": 20}
            )
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=batch))
        ((identifier, validation),) = result.run_results.items()
        docs = None
        if docs_dir:
            urls = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[DOCS_SITE])
            docs = unquote(urls[0]["site_url"].removeprefix("file://")) if urls else None
        return summarise(validation, contract, docs)
