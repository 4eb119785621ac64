"""`RISK_ENV=production make up`: the production resources on the topology (files dropped into
the landing folder, datasets beside it, the PII key from the environment) and a deployment that
runs its calendar without anyone turning it on."""

import dagster as dg
import pytest

from tests.integration.topologies import finished, graphql, graphql_client, running_topology, wait


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    with running_topology(tmp_path_factory.mktemp("production"), RISK_ENV="production") as started:
        yield started


def test_production_ingests_the_file_that_landed_and_its_schedules_and_sensors_run(production):
    from resources.source import ScoringCalendar
    from resources.storage import parquet_bytes
    from riskcore.synthetic import Scenario, applications_frame, generate_month

    layout, _, started, _ = production
    assert "sensors start RUNNING with RISK_ENV=production" in started
    month = ScoringCalendar().as_of  # production: the last complete month
    landed = layout.state / "landing" / "retail_pd" / "applications" / f"{month}.parquet"  # as an upstream system drops it
    landed.parent.mkdir(parents=True)
    landed.write_bytes(parquet_bytes(applications_frame(generate_month(7, month, 1500, Scenario("none", month)))))
    client = graphql_client(layout)
    run_id = client.submit_job_execution("retail_pd_monthly_ingestion_job", repository_location_name="risk_scoring", tags={"dagster/partition": f"{month}-01"})
    assert wait(lambda: finished(client, run_id), 240, "the production ingestion run").value == "SUCCESS"
    instance = dg.DagsterInstance.get()
    accepted = instance.fetch_materializations(dg.AssetKey(["retail_pd", "applications"]), limit=1).records[0].asset_materialization.metadata
    quarantined = instance.fetch_materializations(dg.AssetKey(["retail_pd", "quarantined_applications"]), limit=1).records[0].asset_materialization.metadata
    assert accepted["rows_received"].value == 1500 and accepted["rows"].value + quarantined["rows"].value == 1500
    assert accepted["path"].value.startswith(str(layout.state / "datasets" / "retail_pd" / "applications" / f"month={month}"))
    assert accepted["pii_key"].value == "from RISK_PII_TOKEN_KEY"  # generated into .run/secrets, never the development default
    data = graphql(
        layout,
        '{ repositoryOrError(repositorySelector: {repositoryLocationName: "risk_scoring", repositoryName: "__repository__"}) {'
        " ... on Repository { schedules { name scheduleState { status } } sensors { name sensorState { status } } } } }",
    )["repositoryOrError"]
    status = {s["name"]: s["scheduleState"]["status"] for s in data["schedules"]} | {s["name"]: s["sensorState"]["status"] for s in data["sensors"]}
    automation = [
        f"retail_pd_{name}" for name in ("monthly_cycle_schedule", "daily_monitoring_schedule", "drift_retraining_sensor", "performance_rollback_sensor")
    ]
    assert {name: status[name] for name in automation} == dict.fromkeys(automation, "RUNNING")
