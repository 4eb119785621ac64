"""Great Expectations 1.x as the contract engine: an ephemeral context, no dagster-ge (it needs GX < 1.0)."""

from __future__ import annotations

import copy
import os
import re
from typing import TYPE_CHECKING

import dagster as dg

from checks.suites import ContractReport, build_suite, rule_view, summarise
from riskcore.contract import Contract
from riskcore.escaping import html_text

if TYPE_CHECKING:
    import pandas as pd

# Where a validation result holds values of the data (GX 1.x, result formats up to COMPLETE).
UNEXPECTED_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "unexpected_list", "partial_unexpected_index_list", "unexpected_index_list")
WITHHELD = "[withheld: {role} column]"
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 20}


def _context():
    """A fresh ephemeral context per validation (about 5 ms): no state shared between runs."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    # No default docs site: GX would otherwise create a temp directory per context, and leave it.
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    context = gx.get_context(mode="ephemeral", project_config=config)
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    return context


class ContractValidator(dg.ConfigurableResource):
    """Runs a contract's suite on a DataFrame; with `data_docs_dir`, each validation adds its page to the Data Docs site there."""

    data_docs_dir: str | None = None

    def validate(self, frame: pd.DataFrame, contract: Contract, batch: str, columns: list[str] | None = None, row_rules: bool = True) -> ContractReport:
        import pandas as pd
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier, ValidationResultIdentifier

        context = _context()
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", contract.id)
        batch_definition = context.data_sources.add_pandas("pipeline").add_dataframe_asset(name).add_batch_definition_whole_dataframe(batch)
        suite = build_suite(contract, columns, row_rules)
        frame = rule_view(frame, suite)  # every row, only what the rules read (bench/contract_validation.py, bench/monthly_scale.py)
        run_id = RunIdentifier(run_name=batch)
        # pandas 3's string default: GX's pattern rule casts a column with astype(str), which then stays
        # in Arrow (a categorical: its categories) and runs RE2 as ingestion's pattern rule does, not
        # Python's re once per row (seconds a million rows; the same verdicts and counts).
        with pd.option_context("future.infer_string", True):
            validation = _run_suite(batch_definition, suite, frame, run_id)
        identifier = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite.name), run_id, validation.batch_id)
        docs = None
        if self.data_docs_dir:
            from checks.data_docs import publish

            # Every validation gets its own page in one shared site (checks/data_docs.py).
            docs = publish(os.path.abspath(self.data_docs_dir), identifier, docs_result(validation, contract), suite)
        return summarise(validation, contract, docs)


def _run_suite(batch_definition, suite, frame: pd.DataFrame, run_id):
    """Every expectation of `suite` on `frame`: what a GX checkpoint run does, without its
    bookkeeping (the suite, validation definition and checkpoint added to the context's stores,
    checked for freshness and the result serialised into them), which took about 40% of a small
    month's validation and returns nothing the pipeline reads. The result's meta is the one a
    validation definition's run gives (its run, time and batch parameters) but the ids of
    those ephemeral store entries."""
    from great_expectations.constants import DATAFRAME_REPLACEMENT_STR
    from great_expectations.validator.v1_validator import Validator

    validator = Validator(batch_definition, result_format=RESULT_FORMAT, batch_parameters={"dataframe": frame})
    validation = validator.validate_expectation_suite(suite)
    validation.meta.update(run_id=run_id, validation_time=run_id.run_time, batch_parameters={"dataframe": DATAFRAME_REPLACEMENT_STR})
    return validation


def docs_result(validation, contract: Contract):
    """The copy of a validation result that Data Docs are built from: no raw value of the data.

    GX 1.x escapes the parameters of its sentence templates (column names, value sets, regexes of
    the contract), but writes the values of a result (unexpected values and their counts, the
    observed columns of the schema rule, exception messages) into table cells and lists as raw
    HTML: an id `<script>alert(1)</script>` or a column named `<img src=x onerror=...>` became
    live markup in the page a failed check links to. Escaping those values here (`html_text`) is
    the one place that covers every renderer of the page without patching GX's templates; the page
    shows each value as it was. So is the run name (the batch's, from configuration or a landing
    file), which GX writes raw into the page's breadcrumb and info table. Values of PII and
    free-text columns are not shown at all (their counts are): the same rule as the check's
    metadata (`summarise`). The result the pipeline reads (`summarise`) keeps the values as they were."""
    from great_expectations.core.run_identifier import RunIdentifier

    withheld = {c: "pii" for c in contract.columns("pii")} | {f.name: "free text" for f in contract.fields if f.free_text}
    shown = copy.deepcopy(validation)
    run_id = shown.meta["run_id"]
    shown.meta["run_id"] = RunIdentifier(run_name=html_text(run_id.run_name), run_time=run_id.run_time)
    for outcome in shown.results:
        column = (outcome.expectation_config.kwargs or {}).get("column")
        values = dict(outcome.result or {})
        if column in withheld:
            placeholder = WITHHELD.format(role=withheld[column])
            for key in UNEXPECTED_VALUE_KEYS:
                if not values.get(key):
                    continue
                if key.endswith("_counts"):  # GX renders these as a value/count table
                    values[key] = [{"value": placeholder, "count": sum(int(c.get("count", 0)) for c in values[key])}]
                elif "index" in key:  # row positions, or (COMPLETE) rows with their values
                    del values[key]
                else:
                    values[key] = [placeholder]
        outcome.result = _escaped(values)
        if outcome.exception_info:
            outcome.exception_info = _escaped(outcome.exception_info)
    return shown


def _escaped(value):
    """Every string inside `value` escaped for HTML; dict keys (GX's own names) and numbers kept."""
    if isinstance(value, str):
        return html_text(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_escaped(v) for v in value]
    return value
