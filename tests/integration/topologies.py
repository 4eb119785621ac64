"""Bring the `make up` topology up for a test module, and tear it down whatever happens."""

import contextlib
import json
import os
import socket
import subprocess
import sys
import time

from pipelines import topology as topo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(predicate, timeout: float, what: str, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def graphql_client(layout):
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=layout.ui_port)


def graphql(layout, query: str) -> dict:
    """The webserver's GraphQL API for what DagsterGraphQLClient does not ask (ticks, states)."""
    import urllib.request

    request = urllib.request.Request(f"{layout.ui_url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


def finished(client, run_id):
    status = client.get_run_status(run_id)
    return status if status.value in ("SUCCESS", "FAILURE", "CANCELED") else None


def up(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.topology", "up"], env=env, capture_output=True, text=True, timeout=600)


@contextlib.contextmanager
def running_topology(state, **settings):
    """`make up` on fresh ports and an empty state folder; this process then reads the same
    instance, registry and ledger. Yields (layout, env, up's output, seconds to come up)."""
    if os.geteuid() == 0:  # the cluster runs as `postgres`, which must reach its folder
        for parent in [state, *state.parents]:
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_"))}
    env.update(
        RISK_STATE_DIR=str(state),
        RISK_PG_PORT=str(free_port()),
        RISK_MLFLOW_PORT=str(free_port()),
        RISK_CODE_PORT=str(free_port()),
        RISK_UI_PORT=str(free_port()),
        RISK_REVIEW_PORT=str(free_port()),
        **settings,
    )
    old = dict(os.environ)
    try:  # whatever happens, `down` runs: nothing is left listening after the module
        started = time.monotonic()
        done = up(env)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        seconds = time.monotonic() - started
        os.environ.update(env)
        layout = topo.Topology.from_environment()
        os.environ.update(layout.environment())
        yield layout, env, done.stdout, seconds
    finally:
        subprocess.run([sys.executable, "-m", "pipelines.topology", "down"], env=env, capture_output=True, text=True, timeout=300)
        os.environ.clear()
        os.environ.update(old)
