"""Downstream automation waits for blocking checks: features of the newest month are requested
only when its applications passed their contract."""

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from pipelines.prepare import SyntheticSettings, deliver_synthetic
from resources.partitions import monthly_partitions
from riskcore.months import month_label
from tests.dagster_instance import instance_for_test
from tests.integration.portfolio_files import deployment, write_portfolio

PORTFOLIO = "automation_pd"
INGEST_ONLY = [dg.AssetKey([PORTFOLIO, k]) for k in ("raw_applications", "applications", "quarantined_applications")]
FEATURES = dg.AssetKey([PORTFOLIO, "application_features"])


def _defs(root, scenario: str, latest: str):
    file = write_portfolio(root / "portfolios", PORTFOLIO, calendar={"evaluation_month": latest})
    resources = deployment(root, [file], key="automation-key", docs=False, auto_approve=None)
    # data_fault from the newest month: income reported per month, which the contract blocks.
    deliver_synthetic(
        resources["portfolios"].named(PORTFOLIO).landing.path,
        [latest],
        latest,
        12,
        SyntheticSettings(rows_per_month=400, scenario=scenario, scenario_start=latest),
    )
    return build_definitions(resources)


@pytest.mark.parametrize(("scenario", "requested"), [("none", True), ("data_fault", False)])
def test_features_are_requested_only_after_the_contract_passed(tmp_path, scenario, requested):
    latest = monthly_partitions.get_last_partition_key()
    defs = _defs(tmp_path, scenario, month_label(latest))
    selection = dg.AssetSelection.assets(FEATURES)
    with instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
        assert before.total_requested == 0  # nothing landed yet
        run = defs.resolve_job_def(job_name(PORTFOLIO, "monthly_ingestion_job")).execute_in_process(
            instance=instance, partition_key=latest, asset_selection=INGEST_ONLY, raise_on_error=False
        )
        (contract,) = [e for e in run.get_asset_check_evaluations() if e.check_name == "check_applications_contract"]
        assert contract.passed is requested
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=before.cursor)
        assert result.get_requested_partitions(FEATURES) == ({latest} if requested else set())
