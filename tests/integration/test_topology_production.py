"""`RISK_ENV=production make up`: the production resources on the topology (files dropped into
the landing folder, datasets beside it, the PII key from the environment) and a deployment that
runs its calendar without anyone turning it on. Each process holds only its own secrets, MLflow
refuses anonymous requests, and the pipeline's database role can only read and append to the ledger."""

import os
from pathlib import Path

import dagster as dg
import pytest

from pipelines import topology as topo
from tests.integration.topologies import finished, graphql, graphql_client, running_topology, wait

# Which of the topology's secrets (pipelines.topology.SECRETS) each process may hold, and so which it may not.
HOLDS = {
    "postgres": set(),
    "mlflow": {"pg-mlflow-password", "mlflow-admin-password", "mlflow-secret-key"},
    # the pipeline: its sensors evaluate here, and it starts the run workers, which inherit this environment
    "code-server": {"pg-dagster-password", "pg-pipeline-password", "mlflow-pipeline-password", "pii-token-key", "ledger-key", "service-signing-key"},
    "daemon": {"pg-dagster-password"},  # no user code: sensors and run launches go to the code server
    "webserver": {"pg-dagster-password"},  # no user code: the workspace is the gRPC server
}


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


def _process_tree(pid: int) -> list[int]:
    """pid and every process below it (uvicorn workers, PostgreSQL's backends, run workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def test_each_process_holds_only_the_secrets_it_needs(production):
    layout, _, _, _ = production
    values = {name: layout._secret(name) for name in topo.SECRETS}
    assert len(set(values.values())) == len(values)  # each secret its own, so a value names its secret
    pids = {"postgres": int((layout.state / "postgres" / "postmaster.pid").read_text().split()[0])}
    pids |= {name: int((layout.state / "pids" / f"{name}.pid").read_text()) for name in HOLDS if name != "postgres"}
    for service, pid in pids.items():
        tree = _process_tree(pid)
        assert service != "mlflow" or len(tree) > 1, tree  # the server's workers are checked too
        for process in tree:
            try:
                environ = Path(f"/proc/{process}/environ").read_bytes()
            except (FileNotFoundError, ProcessLookupError):
                continue  # ended meanwhile
            held = {name for name, value in values.items() if value.encode() in environ}
            assert held == HOLDS[service], (service, process, "holds", held - HOLDS[service], "lacks", HOLDS[service] - held)
    code_server = dict(line.split("=", 1) for line in Path(f"/proc/{pids['code-server']}/environ").read_text().split("\0") if "=" in line)
    assert code_server["RISK_ALLOWED_SIGNERS"] == str(layout.state / "data" / "keys" / "allowed_signers")
    signers = Path(code_server["RISK_ALLOWED_SIGNERS"]).read_text()
    assert f'{topo.SERVICE_IDENTITY} namespaces="{topo.SIGNATURE_NAMESPACE}" {topo.public_key_line(code_server["RISK_SERVICE_SIGNING_KEY"])}' in signers
    assert code_server["RISK_SERVICE_SIGNING_KEY"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    for name in topo.SECRETS:  # generated into the state folder, readable by its owner only
        assert (layout.state / "secrets" / name).stat().st_mode & 0o777 == 0o600, name
    assert (layout.state / "secrets").stat().st_mode & 0o777 == 0o700


def test_mlflow_refuses_anonymous_requests_and_knows_each_user_by_its_own_password(production):
    layout, _, _, _ = production
    url, search = layout.mlflow_url, "/api/2.0/mlflow/registered-models/search"
    pipeline = (topo.MLFLOW_PIPELINE_USER, layout._secret("mlflow-pipeline-password"))
    admin = (topo.MLFLOW_ADMIN, layout._secret("mlflow-admin-password"))
    assert topo._mlflow(url, "GET", search, None)[0] == 401
    assert topo._mlflow(url, "GET", "/api/2.0/mlflow/experiments/search?max_results=1", None)[0] == 401
    assert topo._mlflow(url, "GET", search, (topo.MLFLOW_PIPELINE_USER, layout._secret("mlflow-admin-password")))[0] == 401  # another's password
    assert topo._mlflow(url, "GET", search, (topo.MLFLOW_ADMIN, pipeline[1]))[0] == 401
    assert topo._mlflow(url, "GET", search, pipeline)[0] == 200
    assert topo._mlflow(url, "GET", search, admin)[0] == 200
    # the pipeline's user is no admin: it cannot make users or itself an admin
    assert topo._mlflow(url, "POST", "/api/2.0/mlflow/users/create", pipeline, {"username": "intruder", "password": "x" * 40})[0] == 403
    assert topo._mlflow(url, "PATCH", "/api/2.0/mlflow/users/update-admin", pipeline, {"username": pipeline[0], "is_admin": True})[0] == 403
    # and MLflow's client in the pipeline's environment authenticates as it
    from mlflow import MlflowClient

    assert os.environ["MLFLOW_TRACKING_USERNAME"] == topo.MLFLOW_PIPELINE_USER
    MlflowClient(tracking_uri=url, registry_uri=url).search_registered_models()


def test_the_pipeline_role_may_only_read_and_append_to_the_ledger(production):
    import psycopg2
    from psycopg2 import errors

    from riskcore.ledger import Ledger

    layout, _, _, _ = production
    url = layout.database_url("governance")
    assert url.startswith(f"postgresql+psycopg2://{topo.PIPELINE_ROLE}:")
    ledger = Ledger.from_url(url, key=layout._secret("ledger-key"))
    entry = ledger.append("override", "retail_pd", "test", {"why": "the pipeline's role appends"})
    assert ledger.verify().ok and ledger.verify().authenticated and ledger.head() == (entry.seq, entry.entry_hash)
    connection = psycopg2.connect(url.replace("+psycopg2", ""))
    connection.autocommit = True
    refused = {
        "UPDATE governance_ledger SET actor = 'someone else'": errors.InsufficientPrivilege,  # and the owner's trigger would refuse it too
        "DELETE FROM governance_ledger": errors.InsufficientPrivilege,
        "TRUNCATE governance_ledger": errors.InsufficientPrivilege,
        "ALTER TABLE governance_ledger DISABLE TRIGGER ALL": errors.InsufficientPrivilege,
        "DROP TRIGGER governance_ledger_no_update_delete ON governance_ledger": errors.InsufficientPrivilege,
        "DROP TABLE governance_ledger": errors.InsufficientPrivilege,
        "CREATE TABLE governance_ledger_copy (seq integer)": errors.InsufficientPrivilege,
        "SET session_replication_role = replica": errors.InsufficientPrivilege,  # would skip the triggers
    }
    with connection.cursor() as cursor:
        for statement, error in refused.items():
            with pytest.raises(error):
                cursor.execute(statement)
        cursor.execute(
            "SELECT tableowner, array(SELECT privilege_type::text FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND table_name = 'governance_ledger' ORDER BY 1) FROM pg_tables WHERE tablename = 'governance_ledger'",
            (topo.PIPELINE_ROLE,),
        )
        owner, privileges = cursor.fetchone()
    connection.close()
    assert owner == topo.LEDGER_OWNER and set(privileges) == {"INSERT", "SELECT"}, (owner, privileges)
    assert [e.seq for e in ledger.entries()] == list(range(1, entry.seq + 1)) and ledger.verify().ok
    for database in ("dagster", "mlflow", "mlflow_auth"):  # the other services' databases are closed to it
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            psycopg2.connect(layout.database_url(database, role=topo.PIPELINE_ROLE).replace("+psycopg2", ""))
