"""The two shipped portfolios side by side in one deployment: the synthetic retail book and the
real German credit data, each through ingestion, training and scoring under its own prefix, with
its own registered model and ledger entries, on one instance, one registry and one ledger."""

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.environment import PORTFOLIOS_DIR
from pipelines.jobs import job_name
from pipelines.prepare import SyntheticSettings, deliver_german_credit, deliver_synthetic
from resources.registry import CHAMPION
from riskcore.months import months_between
from tests.dagster_instance import instance_for_test
from tests.integration.portfolio_files import deployment

RETAIL_MONTHS = months_between("2023-01", "2023-05")
GERMAN_MONTHS = months_between("2023-01", "2024-08")


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory, mlflow_uri):
    root = tmp_path_factory.mktemp("two_portfolios")
    with pytest.MonkeyPatch.context() as env, instance_for_test() as instance:
        # the retail file's calendar comes from the environment: a one-month window as of 2023-05
        env.setenv("RISK_AS_OF", "2023-05")
        env.setenv("RISK_PERFORMANCE_WINDOW_MONTHS", "1")
        env.setenv("RISK_OUT_OF_TIME_MONTHS", "1")
        resources = deployment(root, [str(PORTFOLIOS_DIR / "retail_pd.yaml"), str(PORTFOLIOS_DIR / "german_credit.yaml")], mlflow_uri)
        defs = build_definitions(resources)
        retail, german = (resources["portfolios"].named(n) for n in ("retail_pd", "german_credit"))
        deliver_synthetic(retail.landing.path, RETAIL_MONTHS, "2023-05", 1, SyntheticSettings(seed=8, rows_per_month=2500))
        deliver_german_credit(german.landing.path, str(root / "archives"))

        def run(portfolio, job, month=None, **kwargs):
            return defs.resolve_job_def(job_name(portfolio, job)).execute_in_process(
                instance=instance, partition_key=f"{month}-01" if month else None, **kwargs
            )

        results = [run("retail_pd", "monthly_ingestion_job", m) for m in RETAIL_MONTHS]
        results += [run("german_credit", "monthly_ingestion_job", m) for m in GERMAN_MONTHS]
        results += [run(p, "model_training_job") for p in ("retail_pd", "german_credit")]
        results += [run("retail_pd", "monthly_scoring_job", "2023-05", asset_selection=[dg.AssetKey(["retail_pd", "risk_scores"])])]
        results += [run("german_credit", "monthly_scoring_job", "2024-08", asset_selection=[dg.AssetKey(["german_credit", "risk_scores"])])]
        yield defs, instance, results, retail, german


def test_both_portfolios_run_end_to_end_in_one_deployment(side_by_side):
    defs, instance, results, retail, german = side_by_side
    assert all(r.success for r in results)
    assert all(e.passed for r in results for e in r.get_asset_check_evaluations() if e.check_name != "check_ledger_intact")
    for portfolio, month in ((retail, "2023-05"), (german, "2024-08")):
        key = dg.AssetKey([portfolio.name, "risk_scores"])
        assert instance.get_materialized_partitions(key) == {f"{month}-01"}
        scores = portfolio.store.read("risk_scores", month)
        champion = portfolio.registry.by_alias(CHAMPION)
        assert champion.name == portfolio.name and set(scores["model_name"]) == {portfolio.name} and set(scores["model_version"]) == {champion.version}
    # one ledger, each portfolio's events under its own model
    ledger = retail.governance.ledger()
    assert ledger.entries(subject="retail_pd/1") and ledger.entries(subject="german_credit/1") and ledger.verify().ok
    # German credit: its own contract and sensitive attributes, not the retail book's
    assert set(german.store.read("applications", "2024-08").columns) >= {"personal_status_and_sex", "foreign_worker"}
    assert "applicant_sex" not in german.store.read("applications", "2024-08").columns
