"""The production topology, started by the test as `make up` starts it: a fresh PostgreSQL cluster,
the MLflow server on it, the gRPC code server, the daemon and the webserver, all on 127.0.0.1.
End to end, faults (daemon killed, PostgreSQL restarted), and a real browser on the UI."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest
import sqlalchemy as sa

from pipelines import topology as topo
from tests.browser import chromium
from tests.integration.topologies import finished, graphql, graphql_client, running_topology, up, wait

BIN = Path(sys.executable).parent
SCREENSHOTS = Path(__file__).resolve().parent.parent.parent / "data" / "screenshots"


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    with running_topology(
        tmp_path_factory.mktemp("topology"),
        RISK_ROWS_PER_MONTH="600",
        RISK_SCENARIO="economic_shock",
        RISK_SCENARIO_START="2023-04",
        RISK_AS_OF="2023-04",
        RISK_PERFORMANCE_WINDOW_MONTHS="1",
        RISK_OUT_OF_TIME_MONTHS="1",
        RISK_MONITORING_CRON="* * * * *",
    ) as started:  # the daily schedule ticks every minute here (off until the test starts it)
        yield started


def _listening_addresses() -> dict[int, set[str]]:
    """port -> addresses listened on, from /proc/net/tcp{,6} (state 0A = LISTEN)."""
    import ipaddress

    found: dict[int, set[str]] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            # the kernel prints each 32-bit word in host (little-endian) order
            raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(raw)
            found.setdefault(int(port, 16), set()).add(str(getattr(ip, "ipv4_mapped", None) or ip))  # ::ffff:127.0.0.1 is 127.0.0.1
    return found


def test_up_starts_everything_on_loopback_and_again_is_harmless(topology):
    layout, env, first, seconds = topology
    for service in ("postgres", "mlflow server", "code server", "daemon", "webserver", "review server"):
        assert f"  {service}" in first and "started in" in first.split(f"  {service}")[1].splitlines()[0], first
    print(f"\n`make up` from an empty state folder: {seconds:.1f} s\n{first}")
    assert "sensors start STOPPED with RISK_ENV=local" in first and f"{layout.ui_url}/automation" in first
    again = up(env)
    assert again.returncode == 0 and again.stdout.count("already running") == 6, again.stdout
    listening = _listening_addresses()
    for port in (layout.pg_port, layout.mlflow_port, layout.code_port, layout.ui_port, layout.review_port):
        assert listening.get(port) and listening[port] <= {"127.0.0.1"}, (port, listening.get(port))
    login = httpx.get(f"{layout.review_url}/login")  # the review page, behind its login, on its own database role
    assert login.status_code == 200 and 'name="csrf_token"' in login.text and httpx.get(f"{layout.review_url}/").status_code == 302
    pipeline = sa.create_engine(layout.database_url("governance"), poolclass=sa.pool.NullPool)  # reads decisions, never writes one
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), pipeline.begin() as connection:
        connection.exec_driver_sql("UPDATE review_decisions SET officer = officer")


def test_a_sensor_launched_run_completes_with_its_events_in_postgres_and_its_model_on_the_mlflow_server(topology):
    import psycopg2
    from mlflow import MlflowClient

    layout, env, _, _ = topology
    topo_env = {**env, **layout.environment()}
    # Upstream delivers eight months; five go through the pipeline on this instance (the shock from 2023-04 makes drift persist).
    landed = subprocess.run(
        [sys.executable, "-m", "pipelines.prepare", "synthetic", "--start", "2023-01", "--end", "2023-08"],
        env=topo_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert landed.returncode == 0, landed.stderr[-3000:]
    made = subprocess.run(
        [sys.executable, "-m", "pipelines.run", "--start", "2023-01", "--end", "2023-05", "--only", "ingestion,training,scoring,monitoring"],
        env=topo_env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    start = subprocess.run(
        [str(BIN / "dagster"), "sensor", "start", "retail_pd_drift_retraining_sensor", "-w", str(layout.state / "workspace.yaml")],
        env=topo_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert start.returncode == 0, start.stderr[-2000:]
    instance = dg.DagsterInstance.get()

    def launched():
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "retail_pd_drift_retraining_sensor"}))
        return runs[0] if runs and runs[0].status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE) else None

    run = wait(launched, 300, "the daemon to launch and finish the sensor's run")
    assert run.status == dg.DagsterRunStatus.SUCCESS and run.job_name == "retail_pd_model_training_job"
    # One launch; anything else is the daemon's retry of it (run_retries in deploy/dagster.yaml).
    sensor_runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": "retail_pd_drift_retraining_sensor"}))
    assert sum("dagster/retry_number" not in r.tags for r in sensor_runs) == 1, [(r.run_id, r.status, r.tags) for r in sensor_runs]
    assert run.tags["decision"] == "drift persisted 2 months (2023-04, 2023-05)"
    with psycopg2.connect(layout.database_url("dagster").replace("+psycopg2", "")) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run.run_id,))
        assert cursor.fetchone()[0] > 20
    # registry_uri too: MLflow keeps a process-wide registry URI that earlier tests in this process set
    versions = MlflowClient(tracking_uri=layout.mlflow_url, registry_uri=layout.mlflow_url).search_model_versions("name='retail_pd'")
    # The sensor's run trained on the same training set with the same code: registration is idempotent, so it
    # found make run's version on the MLflow server and registered no second one (and the run says which).
    assert len(versions) == 1
    materialised = [e.asset_materialization for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)]
    registered = [m for m in materialised if m.asset_key.path[-1] == "risk_model"]
    assert registered and str(registered[-1].metadata["model_version"].value) == versions[0].version
    from riskcore.ledger import Ledger

    # as the pipeline's role, keyed: the run workers appended with the key the code server holds; one candidate, recorded once
    ledger = Ledger.from_url(layout.database_url("governance"), key=os.environ["RISK_LEDGER_KEY"])
    verified = ledger.verify()
    assert [e.subject for e in ledger.entries(kind="candidate_registered")] == [f"retail_pd/{versions[0].version}"] and verified.ok and verified.authenticated


def test_a_run_queued_while_the_daemon_is_down_completes_once_it_is_back(topology):
    layout, env, _, _ = topology
    assert topo._stop(layout, "daemon")
    client = graphql_client(layout)
    run_id = client.submit_job_execution("retail_pd_monthly_ingestion_job", repository_location_name="risk_scoring", tags={"dagster/partition": "2023-06-01"})
    time.sleep(8)
    assert client.get_run_status(run_id).value == "QUEUED"  # nobody dequeues it
    again = up(env)
    assert again.returncode == 0 and "daemon         started" in again.stdout, again.stdout
    assert wait(lambda: finished(client, run_id), 240, "the queued run").value == "SUCCESS"
    store = Path(os.environ["RISK_DATA_DIR"]) / "datasets" / "retail_pd" / "applications" / "month=2023-06"
    assert [p.name for p in store.iterdir()] == ["part-0.parquet"]  # no temp file left behind


def test_postgres_restarted_between_two_runs_the_next_run_succeeds(topology):
    layout, _, _, _ = topology
    client = graphql_client(layout)
    first = client.submit_job_execution("retail_pd_monthly_ingestion_job", repository_location_name="risk_scoring", tags={"dagster/partition": "2023-07-01"})
    assert wait(lambda: finished(client, first), 240, "the first run").value == "SUCCESS"
    assert topo.stop_postgres(layout)
    topo.start_postgres(layout)
    # the first request after the restart: no retry (the webserver recycles its connections)
    second = client.submit_job_execution("retail_pd_monthly_ingestion_job", repository_location_name="risk_scoring", tags={"dagster/partition": "2023-08-01"})
    assert wait(lambda: finished(client, second), 240, "the second run").value == "SUCCESS"
    stuck = dg.DagsterInstance.get().get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.NOT_STARTED]))
    assert not stuck, [(r.run_id, r.tags) for r in stuck]  # no run half-created by a failed request


def test_the_daemon_ticks_the_monitoring_schedule_and_its_run_outlives_a_killed_daemon(topology):
    """A schedule tick, not a request from the test: the daemon launches the run, is killed
    (SIGKILL) while that run is under way, and once restarted finds it completed."""
    import signal

    layout, env, _, _ = topology
    topo_env = {**env, **layout.environment()}
    workspace = str(layout.state / "workspace.yaml")
    started = subprocess.run(
        [str(BIN / "dagster"), "schedule", "start", "retail_pd_daily_monitoring_schedule", "-w", workspace],
        env=topo_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    instance = dg.DagsterInstance.get()
    scheduled = dg.RunsFilter(tags={"dagster/schedule_name": "retail_pd_daily_monitoring_schedule"})

    def under_way():
        runs = instance.get_runs(filters=scheduled)
        return runs[0] if runs and runs[0].status == dg.DagsterRunStatus.STARTED else None

    # STARTED: its worker runs. (Killed while still launching, a run stays STARTING until run
    # monitoring fails it after start_timeout_seconds, and run retries launch it again.)
    run = wait(under_way, 150, "the schedule's first tick to launch a run", every=0.3)
    pid_file = layout.state / "pids" / "daemon.pid"
    os.killpg(int(pid_file.read_text()), signal.SIGKILL)
    wait(lambda: not topo._pid_alive(pid_file), 30, "the killed daemon to be gone", every=0.2)
    again = up(env)
    assert again.returncode == 0 and "daemon         started" in again.stdout, again.stdout
    outcome = wait(lambda: finished(graphql_client(layout), run.run_id), 240, "the scheduled run")
    stopped = subprocess.run(
        [str(BIN / "dagster"), "schedule", "stop", "retail_pd_daily_monitoring_schedule", "-w", workspace],
        env=topo_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome.value == "SUCCESS" and stopped.returncode == 0, (outcome, stopped.stderr[-2000:])
    # the pinned calendar (as of 2023-04, 1-month window): the cohort of 2023-03, once
    assert (
        run.job_name == "retail_pd_performance_job"
        and run.tags["dagster/partition"] == "2023-03-01"
        and run.tags["dagster/run_key"] == "retail_pd-performance-2023-03"
    )
    assert len(instance.get_runs(filters=scheduled)) == 1
    # The next tick, evaluated by the code server on this instance (the UI's "Test schedule"):
    # skipped, since a schedule's run key dedupes within one tick only.
    dry_run = graphql(
        layout,
        'mutation { scheduleDryRun(selectorData: {repositoryLocationName: "risk_scoring", repositoryName: "__repository__",'
        f' scheduleName: "retail_pd_daily_monitoring_schedule"}}, timestamp: {time.time() + 60}) {{ ... on DryRunInstigationTick'
        " { evaluationResult { skipReason runRequests { runKey } } } } }",
    )["scheduleDryRun"]["evaluationResult"]
    assert dry_run == {"skipReason": f"2023-03 was measured by run {run.run_id}", "runRequests": []}, dry_run
    measured = instance.fetch_materializations(dg.AssetKey(["retail_pd", "model_performance"]), limit=1).records[0]
    assert measured.run_id == run.run_id and measured.partition_key == "2023-03-01"
    assert measured.asset_materialization.metadata["rows"].value > 0


def test_a_browser_finds_the_risk_assets_and_a_check_result(topology):
    import re

    layout, _, _, _ = topology
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{layout.ui_url}/locations/risk_scoring/asset-groups/retail_pd_scoring")
        page.get_by_text("risk_scores", exact=True).first.wait_for(timeout=60_000)
        skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog
        if skip.count():
            skip.first.click()
        for asset in ("champion_model", "model_performance", "regulatory_report"):
            page.get_by_text(asset, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(SCREENSHOTS / "asset-graph-scoring.png"))
        page.goto(f"{layout.ui_url}/locations/risk_scoring/asset-groups/retail_pd_ingestion")
        page.get_by_text("applications", exact=True).first.wait_for(timeout=60_000)
        passed = page.get_by_text(re.compile(r"^[1-9]\d* / \d+ Passed$")).first
        passed.wait_for(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "asset-graph-ingestion-checks.png"))
        page.goto(f"{layout.ui_url}/runs")  # who launched what: the schedule's tick and the sensor's request
        for launcher in ("retail_pd_daily_monitoring_schedule", "retail_pd_drift_retraining_sensor"):
            page.get_by_text(launcher).first.wait_for(timeout=60_000)
        page.screenshot(path=str(SCREENSHOTS / "runs-launched-by-schedule-and-sensor.png"))
    assert (SCREENSHOTS / "asset-graph-ingestion-checks.png").stat().st_size > 10_000
