"""Downstream automation waits for blocking checks: features of the newest month are requested
only when its applications passed their contract."""

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.partitions import monthly_partitions
from resources.governance import Governance
from resources.pii import PiiTokeniser
from resources.registry import ModelRegistry
from resources.source import ScoringCalendar, SyntheticLandingFolder
from resources.storage import DatasetStore
from resources.validation import ContractValidator
from riskcore.months import month_label

INGEST_ONLY = [dg.AssetKey(k) for k in ("raw_applications", "applications", "quarantined_applications")]
FEATURES = dg.AssetKey("application_features")


def _defs(root, scenario: str, latest: str):
    calendar = ScoringCalendar(as_of_month=latest)
    return build_definitions({
        "calendar": calendar,
        # data_fault from the newest month: income reported per month, which the contract blocks.
        "landing": SyntheticLandingFolder(path=str(root / "landing"), calendar=calendar, rows_per_month=400, scenario=scenario, scenario_start=latest),
        "store": DatasetStore(base_path=str(root / "datasets")),
        "registry": ModelRegistry(tracking_uri=f"sqlite:///{root}/unused.db"),
        "tokeniser": PiiTokeniser(key="automation-key"),
        "validator": ContractValidator(),
        "governance": Governance(ledger_url=f"sqlite:///{root}/ledger.db"),
    })


@pytest.mark.parametrize(("scenario", "requested"), [("none", True), ("data_fault", False)])
def test_features_are_requested_only_after_the_contract_passed(tmp_path, scenario, requested):
    latest = monthly_partitions.get_last_partition_key()
    defs = _defs(tmp_path, scenario, month_label(latest))
    selection = dg.AssetSelection.assets(FEATURES)
    with dg.instance_for_test() as instance:
        before = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection)
        assert before.total_requested == 0  # nothing landed yet
        run = defs.resolve_job_def("monthly_ingestion_job").execute_in_process(
            instance=instance, partition_key=latest, asset_selection=INGEST_ONLY, raise_on_error=False
        )
        (contract,) = [e for e in run.get_asset_check_evaluations() if e.check_name == "check_applications_contract"]
        assert contract.passed is requested
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=selection, cursor=before.cursor)
        assert result.get_requested_partitions(FEATURES) == ({latest} if requested else set())
