"""`make run` end to end on a small world; then reports rebuilt the ways a user or CI does it:
`dagster asset materialize` on an ephemeral instance, and `make backfill REMOTE=...` launched
into a running deployment (webserver + daemon) through GraphQL. Each rebuild must give the bytes
that were published."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import dagster as dg
import pytest

from riskcore.months import months_between

MONTHS = months_between("2023-01", "2023-05")
BIN = os.path.dirname(sys.executable)


def _env(root, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_HOME", "MLFLOW_"))}
    return {
        **env,
        "RISK_DATA_DIR": str(root / "data"),
        "RISK_ROWS_PER_MONTH": "800",
        "RISK_AS_OF": "2023-05",
        "RISK_PERFORMANCE_WINDOW_MONTHS": "1",
        "RISK_OUT_OF_TIME_MONTHS": "1",
        **extra,
    }


def _report_bytes(root, month):
    folder = root / "data" / "datasets" / "retail_pd" / "regulatory_report" / f"month={month}"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("make_run")
    (root / "dagster_home").mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "pipelines.run", "--prepare", "synthetic", "--start", MONTHS[0], "--end", MONTHS[-1]],
        env=_env(root, DAGSTER_HOME=str(root / "dagster_home")),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return root, run.stdout


def test_make_run_materialises_everything_and_summarises(made):
    root, stdout = made
    assert "champion model: retail_pd version 1" in stdout and "chain intact" in stdout
    assert "regulatory reports (1 run)" in stdout and "differs from the published" not in stdout and "not built" not in stdout
    assert "Downloading artifacts" not in stdout
    assert set(_report_bytes(root, "2023-05")) == {"report.json", "report.html", "ledger_head.txt"}  # the head anchored at publication


def test_a_report_rebuilt_from_ci_on_an_ephemeral_instance_is_byte_identical(made):
    root, _ = made
    published = _report_bytes(root, "2023-05")
    # DAGSTER_HOME unset: the CLI uses an ephemeral instance; the blocking check fails the command on any difference
    cli = subprocess.run(
        [
            os.path.join(BIN, "dagster"),
            "asset",
            "materialize",
            "-m",
            "pipelines.definitions",
            "--select",
            "retail_pd/regulatory_report",
            "--partition",
            "2023-05-01",
        ],
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "RUN_SUCCESS" in cli.stderr + cli.stdout
    assert _report_bytes(root, "2023-05") == published  # no rebuild-* file either


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_backfill_launched_into_a_running_deployment_through_graphql(made):
    root, _ = made
    home = root / "dagster_home"
    port = _free_port()
    env = _env(root, DAGSTER_HOME=str(home))
    server = subprocess.Popen(
        [os.path.join(BIN, "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the webserver did not come up"
                time.sleep(1)
        published = {m: _report_bytes(root, m) for m in MONTHS}
        backfill = subprocess.run(
            [sys.executable, "-m", "pipelines.backfill", "--from", MONTHS[0], "--to", MONTHS[-1], "--remote", f"http://127.0.0.1:{port}", "--wait", "300"],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert backfill.returncode == 0, backfill.stdout + backfill.stderr[-3000:]
        assert "COMPLETED" in backfill.stdout and "1 run(s)" in backfill.stdout
        assert {m: _report_bytes(root, m) for m in MONTHS} == published
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # seen once under CI load; the backfill was checked above
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = [r for r in instance.get_runs() if r.tags.get("dagster/backfill")]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/asset_partition_range_start"] == f"{MONTHS[0]}-01" and run.tags["dagster/asset_partition_range_end"] == f"{MONTHS[-1]}-01"
