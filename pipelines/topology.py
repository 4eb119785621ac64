"""`make up` / `make down`: the production topology on one machine, bound to 127.0.0.1.

PostgreSQL (a cluster initialised in the state folder when RISK_DATABASE_URL is not given), the
MLflow server on PostgreSQL with a local artifact root, the code location as a gRPC server, the
Dagster daemon and the webserver, on the instance rendered from deploy/dagster.yaml. Running
`up` twice is harmless: a service that answers is left alone. State (cluster, logs, pids,
datasets, rendered config) lives in a git-ignored folder, `.run/` unless RISK_STATE_DIR says otherwise.
"""

from __future__ import annotations

import argparse
import glob
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DATABASES = ("dagster", "mlflow", "governance")


@dataclass(frozen=True)
class Topology:
    state: Path
    pg_port: int = 5433
    mlflow_port: int = 5000
    code_port: int = 4266
    ui_port: int = 3000
    max_scoring_runs: int = 2

    @classmethod
    def from_environment(cls) -> "Topology":
        environ = os.environ
        return cls(
            state=Path(environ.get("RISK_STATE_DIR", ROOT / ".run")).resolve(),
            pg_port=int(environ.get("RISK_PG_PORT", 5433)),
            mlflow_port=int(environ.get("RISK_MLFLOW_PORT", 5000)),
            code_port=int(environ.get("RISK_CODE_PORT", 4266)),
            ui_port=int(environ.get("RISK_UI_PORT", 3000)),
            max_scoring_runs=int(environ.get("RISK_MAX_SCORING_RUNS", 2)),
        )

    @property
    def dagster_home(self) -> Path:
        return self.state / "dagster_home"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    def database_url(self, database: str) -> str:
        """RISK_DATABASE_URL (any PostgreSQL server) or the local cluster; `database` replaces its path."""
        given = os.environ.get("RISK_DATABASE_URL")
        if given:  # SQLAlchemy 2.1 defaults to psycopg 3; the pinned driver is psycopg2
            return urllib.parse.urlparse(given)._replace(scheme="postgresql+psycopg2", path=f"/{database}").geturl()
        return f"postgresql+psycopg2://risk:{self._password()}@{HOST}:{self.pg_port}/{database}"

    def _secret(self, name: str) -> str:
        """Generated once into <state>/secrets (git-ignored, mode 600 from creation), never into the repo."""
        path = self.state / "secrets" / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
        return path.read_text().strip()

    def _password(self) -> str:
        return self._secret("postgres-password")

    def _pii_key(self) -> str:
        """RISK_PII_TOKEN_KEY if set, else one generated for this state folder."""
        return os.environ.get("RISK_PII_TOKEN_KEY") or self._secret("pii-token-key")

    def environment(self) -> dict[str, str]:
        """What every process of the topology runs with: secrets reach them as environment variables,
        never on a command line or in a config file."""
        url = urllib.parse.urlparse(self.database_url("dagster"))
        return {
            # RISK_ENV=production reads its files from here unless told otherwise
            "RISK_LANDING_URL": str(self.state / "landing"),
            "RISK_DATASETS_URL": str(self.state / "datasets"),
            **os.environ,
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_HOST": url.hostname,
            "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": urllib.parse.unquote(url.username or ""),
            "DAGSTER_PG_PASSWORD": urllib.parse.unquote(url.password or ""),
            "DAGSTER_PG_DB": url.path.lstrip("/"),
            "RISK_MLFLOW_URI": self.mlflow_url,
            "MLFLOW_TRACKING_URI": self.mlflow_url,  # for MLflow's own tools run in this environment
            "RISK_LEDGER_URL": self.database_url("governance"),
            "RISK_DATA_DIR": str(self.state / "data"),
            "MLFLOW_BACKEND_STORE_URI": self.database_url("mlflow"),  # read by `mlflow server`, kept off its command line
            "RISK_PII_TOKEN_KEY": self._pii_key(),
            "RISK_UI_URL": self.ui_url,
        }


def _bin(name: str) -> str:
    """PostgreSQL's server programs live outside PATH on Debian."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise FileNotFoundError(f"{name} not found: install PostgreSQL (apt-get install postgresql) or give RISK_DATABASE_URL")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _wait_for(port: int, what: str, timeout: float, process: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not _listening(port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {HOST}:{port} within {timeout:.0f} s; see {log}")
        time.sleep(0.5)


def _pid_alive(path: Path) -> bool:
    """The process in the pid file runs, and is not a zombie (killed, waiting for a parent to reap it)."""
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    if not Path("/proc/self").exists():  # not Linux: the signal's answer is all there is
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:  # it ended just now
        return False


def _start(topology: Topology, name: str, command: list[str], port: int | None, timeout: float, env: dict) -> float:
    """Start a service unless it already runs; returns seconds until it answered (0: already up)."""
    pid_file, log = topology.state / "pids" / f"{name}.pid", topology.state / "logs" / f"{name}.log"
    if _pid_alive(pid_file) and (port is None or _listening(port)):
        return 0.0
    if port is not None and _listening(port):
        raise RuntimeError(f"{HOST}:{port} is taken by another program; set its port variable (see `make up` in the README)")
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("ab") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(str(process.pid))
    try:
        if port is not None:
            _wait_for(port, name, timeout, process, log)
        else:
            time.sleep(2)
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log}")
    except BaseException:
        _stop(topology, name, timeout=10)  # never leave a half-started service behind
        raise
    return time.monotonic() - started


def _stop(topology: Topology, name: str, timeout: float = 30) -> bool:
    pid_file = topology.state / "pids" / f"{name}.pid"
    if not _pid_alive(pid_file):
        pid_file.unlink(missing_ok=True)
        return False
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _pid_alive(pid_file) and time.monotonic() < deadline:
        time.sleep(0.3)
    if _pid_alive(pid_file):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)
    return True


def _run(command: list[str], what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}")
    return done


def _cluster_running(data: Path) -> bool:
    """pg_ctl's own answer (a stale postmaster.pid after a crash is not a running cluster)."""
    return (data / "PG_VERSION").exists() and subprocess.run(_as_postgres([_bin("pg_ctl"), "-D", str(data), "status"]), capture_output=True).returncode == 0


def start_postgres(topology: Topology) -> float:
    """Initialise the cluster on first use (or use RISK_DATABASE_URL's server), start it on
    loopback, and create the databases that are missing."""
    import psycopg2

    started = time.monotonic()
    already_running = True
    if not os.environ.get("RISK_DATABASE_URL"):
        data = topology.state / "postgres"
        if os.geteuid() == 0:  # the cluster runs as `postgres`: it must be able to reach its folder
            topology.state.chmod(0o711)
            if subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(topology.state)]).returncode != 0:
                raise RuntimeError(f"the `postgres` user cannot reach {topology.state}: set RISK_STATE_DIR to a folder it can traverse")
        if not (data / "PG_VERSION").exists():
            data.mkdir(parents=True, exist_ok=True)
            pwfile = topology.state / f"initdb-pw-{os.getpid()}"  # initdb's own copy, gone right after
            pwfile.write_text(topology._password())
            try:
                if os.geteuid() == 0:
                    shutil.chown(data, "postgres")
                    shutil.chown(pwfile, "postgres")
                pwfile.chmod(0o600)
                _run(
                    _as_postgres(
                        [_bin("initdb"), "-D", str(data), "-U", "risk", f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]
                    ),
                    "initdb",
                )
            finally:
                pwfile.unlink(missing_ok=True)
        already_running = _cluster_running(data)
        if not already_running:
            if _listening(topology.pg_port):
                raise RuntimeError(f"{HOST}:{topology.pg_port} is taken by another program; set RISK_PG_PORT")
            log = topology.state / "logs" / "postgres.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            if os.geteuid() == 0:
                shutil.chown(log.parent, "postgres")
            _run(
                _as_postgres([_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o", f"-h {HOST} -p {topology.pg_port} -k {data}"]),
                "starting PostgreSQL",
            )
    url = urllib.parse.urlparse(topology.database_url("postgres"))
    connection = psycopg2.connect(
        host=url.hostname,
        port=url.port or 5432,
        user=urllib.parse.unquote(url.username or ""),
        password=urllib.parse.unquote(url.password or ""),
        dbname="postgres",
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        for database in DATABASES:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{database}"')
    connection.close()
    return 0.0 if already_running else time.monotonic() - started


def stop_postgres(topology: Topology) -> bool:
    data = topology.state / "postgres"
    if os.environ.get("RISK_DATABASE_URL") or not _cluster_running(data):
        return False
    _run(_as_postgres([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), "stopping PostgreSQL")
    return True


def render_instance(topology: Topology) -> Path:
    """deploy/dagster.yaml with the scoring cap filled in, as <state>/dagster_home/dagster.yaml."""
    text = string.Template((ROOT / "deploy" / "dagster.yaml").read_text()).substitute(RISK_MAX_SCORING_RUNS=topology.max_scoring_runs)
    target = topology.dagster_home / "dagster.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    (topology.state / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server:\n      host: {HOST}\n      port: {topology.code_port}\n      location_name: risk_scoring\n"
    )
    return target


def up(topology: Topology) -> dict[str, float]:
    os.umask(0o077)  # logs, datasets and config of the topology are its own
    bin_dir = Path(sys.executable).parent
    topology.state.mkdir(parents=True, exist_ok=True)
    (topology.state / ".gitignore").write_text("*\n")
    timings = {"postgres": start_postgres(topology)}
    render_instance(topology)
    env = topology.environment()
    artifacts = topology.state / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    timings["mlflow server"] = _start(
        topology,
        "mlflow",
        [str(bin_dir / "mlflow"), "server", "--host", HOST, "--port", str(topology.mlflow_port), "--artifacts-destination", str(artifacts), "--workers", "1"],
        topology.mlflow_port,
        180,
        env,
    )
    timings["code server"] = _start(
        topology,
        "code-server",
        [str(bin_dir / "dagster"), "api", "grpc", "-m", "pipelines.definitions", "-h", HOST, "-p", str(topology.code_port)],
        topology.code_port,
        120,
        env,
    )
    workspace = str(topology.state / "workspace.yaml")
    timings["daemon"] = _start(topology, "daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace], None, 60, env)
    # The webserver keeps one pooled connection per storage and never pings it (dagster#3812,
    # #33879): after a PostgreSQL restart its first write fails half-way and leaves a run that
    # never starts. Recycling at every checkout (age > 0 s) costs a loopback connect instead.
    timings["webserver"] = _start(
        topology,
        "webserver",
        [str(bin_dir / "dagster-webserver"), "-h", HOST, "-p", str(topology.ui_port), "-w", workspace, "--db-pool-recycle", "0"],
        topology.ui_port,
        120,
        env,
    )
    return timings


def down(topology: Topology) -> list[str]:
    stopped = [name for name in ("webserver", "daemon", "code-server", "mlflow") if _stop(topology, name)]
    if stop_postgres(topology):
        stopped.append("postgres")
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["up", "down"])
    args = parser.parse_args(argv)
    topology = Topology.from_environment()
    if args.command == "down":
        stopped = down(topology)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'} (state kept in {topology.state})")
        return 0
    timings = up(topology)
    for service, seconds in timings.items():
        print(f"  {service:14} {'already running' if seconds == 0 else f'started in {seconds:5.1f} s'}")
    print(
        f"Dagster UI      {topology.ui_url}\nMLflow          {topology.mlflow_url}\n"
        f"PostgreSQL      {HOST}:{topology.pg_port} (databases {', '.join(DATABASES)})\nstate           {topology.state}  (`make down` stops it all)"
    )
    from pipelines.environment import automation_status, current_environment

    print(
        f"automation      schedules, retraining and rollback sensors start {automation_status()} with RISK_ENV={current_environment()}"
        f"; the UI's Automation page switches them ({topology.ui_url}/automation)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
