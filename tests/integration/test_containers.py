"""The image built and deploy/compose.yaml run for real, on a Docker engine this module starts:
`make base-image pg-image image` (no registry: Debian packages from the host's mirror), compose up
with secrets made here, a run launched through the webserver's GraphQL that executes in its own
container (DockerRunLauncher) and leaves its events in PostgreSQL. Slow (minutes: the image's
pip install dominates); it fails, never skips, when the engine cannot start."""

import hashlib
import json
import os
import shutil
import signal
import string
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from pipelines import topology as topo
from tests.integration.topologies import finished, free_port, wait

pytestmark = [pytest.mark.integration, pytest.mark.containers]

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = "/usr/bin/docker"  # Debian's docker.io client: BuildKit built in, the engine's own API version
IMAGE, BASE, POSTGRES = "risk-scoring:0.1.0", "risk-base:bookworm", "risk-postgres:15"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")  # the TLS-inspecting proxy's CA is in it: a build secret
PROJECT = "risk-containers"
PORTFOLIO, ROWS = "retail_pd", 1200


def _run(command: list[str], env: dict, timeout: float = 1800, what: str = "") -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{what or ' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout, time.monotonic() - started


def _system_deps() -> None:
    """docker.io, docker-compose and debootstrap, as `make system-deps` installs them (CI starts clean)."""
    if not all(shutil.which(tool) for tool in ("dockerd", "docker-compose", "debootstrap")) or not Path(DOCKER).exists():
        _run(["make", "system-deps"], dict(os.environ), what="make system-deps (apt-get install docker.io docker-compose debootstrap)")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A dockerd of this module's own: its data, exec root, socket and pid file in a temp folder, so nothing
    of a previous run (or another engine) is reused. This sandbox's kernel allows no iptables and no
    default bridge: user-defined bridge networks (compose's) still work, and builds use the host's network."""
    _system_deps()
    root = tmp_path_factory.mktemp("engine")
    socket, log = root / "docker.sock", root / "dockerd.log"
    command = ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "-H", f"unix://{socket}"]
    command += ["--pidfile", str(root / "dockerd.pid"), "--iptables=false", "--bridge=none"]
    with open(log, "wb") as output:
        daemon = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_", "DOCKER_"))}
    env |= {"DOCKER_HOST": f"unix://{socket}", "DOCKER": DOCKER, "DOCKER_SOCKET": str(socket)}
    try:
        deadline = time.monotonic() + 90
        while subprocess.run([DOCKER, "info"], env=env, capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"dockerd did not start (exit {daemon.poll()}):\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield env | {"DOCKER_GID": str(socket.stat().st_gid)}
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)  # dockerd and the containerd it started
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait(10)
        shutil.rmtree(root / "data", ignore_errors=True)  # the images' layers: gigabytes


@pytest.fixture(scope="module")
def images(engine):
    """The make targets, timed: the base from debootstrap, then PostgreSQL and the application on it
    side by side (two builds on one engine, as `make -j2 pg-image image` runs them)."""
    timings = {}
    _, timings["base-image"] = _run(["make", "base-image"], engine)
    build = [f"BASE_IMAGE={BASE}", f"CA_BUNDLE={HOST_CA}"]
    _, timings["pg-image + image"] = _run(["make", "-j2", "--output-sync=target", "pg-image", "image", *build], engine)
    size = json.loads(_run([DOCKER, "image", "inspect", IMAGE], engine)[0])[0]["Size"]
    print(f"\nimages: {' '.join(f'{k} {v:.0f} s' for k, v in timings.items())}; {IMAGE} {size / 1e6:.0f} MB")
    return timings


def _compose(env: dict, folder: Path, *args: str, timeout: float = 900) -> str:
    return _run(["docker-compose", "-p", PROJECT, "-f", str(folder / "compose.yaml"), *args], env, timeout=timeout)[0]


@pytest.fixture(scope="module")
def deployment(engine, images, tmp_path_factory):
    """deploy/ rendered as its header says into a folder of its own, every secret generated here (as
    `make up` generates them) and handed to compose through the environment; torn down at the end."""
    folder = tmp_path_factory.mktemp("deploy")
    layout = topo.Topology(state=folder / "state")
    for name in ("compose.yaml", "compose-workspace.yaml", "mlflow-basic-auth.ini"):
        shutil.copy(DEPLOY / name, folder / name)
    text = (DEPLOY / "dagster.yaml").read_text() + (DEPLOY / "dagster.docker.yaml").read_text()
    (folder / "dagster.rendered.yaml").write_text(string.Template(text).substitute(RISK_MAX_SCORING_RUNS=2, RISK_DEPLOY_DIR=folder))
    secrets = {variable: layout.signing_key(name) if "signing" in name else layout._secret(name) for name, variable in topo.SECRETS.items() if variable}
    signers = [
        f'{identity} namespaces="{topo.SIGNATURE_NAMESPACE}" {topo.public_key_line(secrets[variable], identity)}'
        for identity, variable in ((topo.SERVICE_IDENTITY, "RISK_SERVICE_SIGNING_KEY"), (topo.REVIEW_IDENTITY, "RISK_REVIEW_SIGNING_KEY"))
    ]
    (folder / "allowed_signers").write_text("\n".join(signers) + "\n")
    (folder / "reviewers").write_text("")
    ports = {name: free_port() for name in ("RISK_PG_PORT", "RISK_MLFLOW_PORT", "RISK_UI_PORT", "RISK_REVIEW_PORT")}
    env = engine | secrets | {k: str(v) for k, v in ports.items()} | {"POSTGRES_PASSWORD": layout._secret("postgres-password"), "RISK_POSTGRES_IMAGE": POSTGRES}
    started = time.monotonic()
    try:
        _compose(env, folder, "up", "-d")
        client = _graphql_client(ports["RISK_UI_PORT"])
        wait(lambda: _location_loaded(ports["RISK_UI_PORT"]), 300, "the webserver to load the code location", every=3)
        up = time.monotonic() - started
        print(f"\ncompose up (images built): {up:.0f} s")
        yield env, folder, client, ports, secrets
    finally:
        runs = subprocess.run([DOCKER, "ps", "-aq", "--filter", "label=dagster/run_id"], env=engine, capture_output=True, text=True).stdout.split()
        if runs:
            subprocess.run([DOCKER, "rm", "-f", *runs], env=engine, capture_output=True)
        subprocess.run(
            ["docker-compose", "-p", PROJECT, "-f", str(folder / "compose.yaml"), "down", "-v", "--timeout", "3"], env=env, capture_output=True, timeout=300
        )


def _graphql_client(port: int):
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=port)


LOCATION_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } ... on RepositoryLocation { repositories { jobs { name } } } } } } } }"""


def _location_loaded(port: int) -> bool:
    """True once the webserver serves the location's jobs. A location that failed to load is LOADED too,
    with an error in place of its repositories: that fails here with the error, not later as a missing job."""
    import urllib.error

    from pipelines.backfill import graphql

    try:
        data = graphql(f"http://127.0.0.1:{port}", LOCATION_QUERY, {})
    except (urllib.error.URLError, ConnectionError, RuntimeError):
        return False
    entries = [e for e in data["workspaceOrError"].get("locationEntries", []) if e["name"] == "risk_scoring" and e["loadStatus"] == "LOADED"]
    if not entries:
        return False
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", f"the webserver could not load the code location: {location.get('message')}"
    return any(job["name"] == f"{PORTFOLIO}_monthly_ingestion_job" for repository in location["repositories"] for job in repository["jobs"])


def _finished(client, run_id):
    """The run's end, or None while it runs or while a poll fails (on a loaded machine the webserver's
    storage query can hit its statement timeout): the wait's own deadline is what fails the test."""
    from dagster_graphql import DagsterGraphQLClientError

    try:
        return finished(client, run_id)
    except DagsterGraphQLClientError:
        return None


def test_a_run_launched_through_the_webserver_runs_in_its_own_container_and_logs_to_postgres(engine, deployment):
    import psycopg2

    env, folder, client, ports, secrets = deployment
    # upstream drops a month's applications into the data volume (as the pipeline's user, in the code server's container)
    land = (
        "from resources.source import ScoringCalendar; from resources.storage import parquet_bytes; from pathlib import Path;"
        "from riskcore.synthetic import Scenario, applications_frame, generate_month;"
        "m = ScoringCalendar().as_of; p = Path(f'/data/landing/retail_pd/applications/{m}.parquet'); p.parent.mkdir(parents=True);"
        f"p.write_bytes(parquet_bytes(applications_frame(generate_month(7, m, {ROWS}, Scenario('none', m))))); print(m)"
    )
    month = _compose(env, folder, "exec", "-T", "code-server", "python", "-c", land).strip().splitlines()[-1]
    started = time.monotonic()
    run_id = client.submit_job_execution(
        f"{PORTFOLIO}_monthly_ingestion_job", repository_location_name="risk_scoring", tags={"dagster/partition": f"{month}-01"}
    )
    status = wait(lambda: _finished(client, run_id), 600, "the ingestion run", every=3)
    print(f"\ningestion run of {ROWS} rows, launched to finished: {time.monotonic() - started:.0f} s")
    if status.value != "SUCCESS":
        logs = subprocess.run([DOCKER, "ps", "-aq", "--filter", f"label=dagster/run_id={run_id}"], env=engine, capture_output=True, text=True).stdout.split()
        tail = subprocess.run([DOCKER, "logs", "--tail", "60", *logs[:1]], env=engine, capture_output=True, text=True) if logs else None
        pytest.fail(
            f"run {run_id} ended {status.value}: {tail.stdout + tail.stderr if tail else 'no container'}\n{_compose(env, folder, 'logs', '--tail', '40', 'daemon')}"
        )
    # in a container of its own: the launcher's, labelled with the run, of the image, not one of compose's services
    (container,) = subprocess.run(
        [DOCKER, "ps", "-aq", "--no-trunc", "--filter", f"label=dagster/run_id={run_id}"], env=engine, capture_output=True, text=True
    ).stdout.split()
    assert _run([DOCKER, "wait", container], engine, timeout=120)[0].strip() == "0"  # the worker exits once it has reported success
    (details,) = json.loads(_run([DOCKER, "inspect", container], engine)[0])
    assert details["Config"]["Image"] == IMAGE and details["State"]["Status"] == "exited"
    assert "com.docker.compose.service" not in details["Config"]["Labels"] and "execute_run" in details["Config"]["Cmd"]
    assert list(details["NetworkSettings"]["Networks"]) == ["risk-scoring"]
    assert {m["Destination"] for m in details["Mounts"]} == {"/data", "/etc/risk/allowed_signers"}
    run_env = dict(line.split("=", 1) for line in details["Config"]["Env"])
    assert run_env["RISK_PII_TOKEN_KEY"] == secrets["RISK_PII_TOKEN_KEY"] and "RISK_MLFLOW_ADMIN_PASSWORD" not in run_env
    assert not {"POSTGRES_PASSWORD", "RISK_PG_REVIEW_PASSWORD", "RISK_REVIEW_SESSION_KEY"} & set(run_env)
    service_ids = set(_compose(env, folder, "ps", "-q").split())
    assert container not in service_ids
    # its events are in the dagster database, read from the published port as the instance's role
    connection = psycopg2.connect(host="127.0.0.1", port=ports["RISK_PG_PORT"], user="dagster", password=secrets["RISK_PG_DAGSTER_PASSWORD"], dbname="dagster")
    with connection, connection.cursor() as cursor:
        cursor.execute("SELECT dagster_event_type, count(*) FROM event_logs WHERE run_id = %s GROUP BY 1", (run_id,))
        events = dict(cursor.fetchall())
        cursor.execute("SELECT value FROM run_tags WHERE run_id = %s AND key = 'docker/container_id'", (run_id,))
        (tagged,) = cursor.fetchone()
    connection.close()
    from dagster import DagsterEventType

    assert events.get(DagsterEventType.RUN_SUCCESS.value) == 1 and events.get(DagsterEventType.ASSET_MATERIALIZATION.value, 0) >= 4, events
    assert tagged == container


def test_only_loopback_ports_are_published(engine, deployment):
    published = _run([DOCKER, "ps", "--format", "{{.Names}} {{.Ports}}"], engine)[0].splitlines()
    bindings = [b.strip() for line in published for b in line.split(" ", 1)[1].split(",") if "->" in b]
    assert len(bindings) == 4 and all(b.startswith("127.0.0.1:") for b in bindings), published


def test_the_ca_bundle_given_to_the_build_is_in_no_layer_of_the_image(engine, images, tmp_path):
    """BuildKit mounts the secret for the RUNs that download; it is in no layer and in no history entry,
    and the image's environment names none of it (the image's own CA file is Debian's, not the host's)."""
    host_digest = hashlib.sha256(HOST_CA.read_bytes()).hexdigest()
    history = _run([DOCKER, "history", "--no-trunc", "--format", "{{.CreatedBy}}", IMAGE], engine)[0]
    assert "secret" in history and HOST_CA.read_text()[-200:] not in history  # the mount is named, its content nowhere
    saved = tmp_path / "image.tar"
    _run([DOCKER, "save", "-o", str(saved), IMAGE], engine, timeout=600)
    found = []
    with tarfile.open(saved) as image:
        layers = [m for m in image.getmembers() if m.name.endswith("layer.tar")]
        for member in layers:
            with tarfile.open(fileobj=image.extractfile(member)) as layer:
                for entry in layer:
                    if entry.name.startswith("run/secrets") and entry.name != "run/secrets":
                        found.append(entry.name)
                    if entry.isfile() and entry.size == HOST_CA.stat().st_size and hashlib.sha256(layer.extractfile(entry).read()).hexdigest() == host_digest:
                        found.append(entry.name)
    assert layers and not found, found
    config = json.loads(_run([DOCKER, "image", "inspect", IMAGE], engine)[0])[0]["Config"]
    assert not [v for v in config["Env"] if v.startswith(("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"))]
