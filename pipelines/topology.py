"""`make up` / `make down`: the production topology on one machine, bound to 127.0.0.1.

PostgreSQL (a cluster initialised in the state folder when RISK_DATABASE_URL is not given), the
MLflow server on PostgreSQL with a local artifact root and its own authentication, the code
location as a gRPC server, the Dagster daemon and the webserver, on the instance rendered from
deploy/dagster.yaml, and the review page (gunicorn, pipelines/review_app.py). Running `up` twice is harmless: a service that answers is left alone. State
(cluster, logs, pids, secrets, datasets, rendered config) lives in a git-ignored folder, `.run/`
unless RISK_STATE_DIR says otherwise.

Each service has its own credentials and each process only the secrets it needs
(`Topology.environments`): PostgreSQL roles per service (`dagster`, `mlflow`, and `risk_pipeline`,
which may only read and append to the governance ledger, owned by `governance_owner`, and queue
referrals for review; `risk_review`, the review page's, the only writer of review decisions), MLflow
users (`admin` for the MLflow server's bootstrap only, `risk-pipeline` for the pipeline), anonymous
MLflow requests refused. `provision-databases` and `provision-mlflow-users` do the same set-up for
deploy/compose.yaml and a Kubernetes deployment, from passwords given in the environment.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

# PostgreSQL. The local cluster's superuser (`initdb -U risk`) is `make up`'s own: no service runs as it.
ADMIN_ROLE = "risk"
LEDGER_OWNER = "governance_owner"  # owns the ledger's table and triggers; nobody logs in as it
PIPELINE_ROLE = "risk_pipeline"  # the pipeline's: SELECT and INSERT on the ledger, see provision_databases
REVIEW_ROLE = "risk_review"  # the review page's: appends its decisions' ledger entries, the only writer of review decisions
LOGIN_ROLES = {"dagster": "pg-dagster-password", "mlflow": "pg-mlflow-password", PIPELINE_ROLE: "pg-pipeline-password", REVIEW_ROLE: "pg-review-password"}
DATABASES = {"dagster": "dagster", "mlflow": "mlflow", "mlflow_auth": "mlflow", "governance": LEDGER_OWNER}  # database: its owner
SERVICE_ROLES = {"dagster": "dagster", "mlflow": "mlflow", "mlflow_auth": "mlflow", "governance": PIPELINE_ROLE}  # database: who connects
OTHER_CONNECTS = {"governance": (REVIEW_ROLE,)}  # database: the further roles that connect to it

# MLflow's basic auth: `admin` exists for the server's bootstrap and for provisioning users; the pipeline is its own user.
MLFLOW_ADMIN = "admin"
MLFLOW_PIPELINE_USER = "risk-pipeline"
MLFLOW_AUTH_CONFIG = ROOT / "deploy" / "mlflow-basic-auth.ini"

# The sensors' service identity (riskcore/policies/promotion.yaml `services:`), its key's namespace (riskcore.signatures.NAMESPACE).
SERVICE_IDENTITY = "performance_rollback_sensor"
REVIEW_IDENTITY = "review_service"  # the review page's, signing each decision's ledger entry (pipelines/review.py)
REVIEW_PORTFOLIO = "retail_pd"
SIGNATURE_NAMESPACE = "risk-governance"

# Every secret: a file in <state>/secrets generated on first use, unless the variable gives it.
SECRETS = {
    "postgres-password": None,  # the local cluster's superuser (RISK_DATABASE_URL carries its own)
    "pg-dagster-password": "RISK_PG_DAGSTER_PASSWORD",
    "pg-mlflow-password": "RISK_PG_MLFLOW_PASSWORD",
    "pg-pipeline-password": "RISK_PG_PIPELINE_PASSWORD",
    "pg-review-password": "RISK_PG_REVIEW_PASSWORD",
    "mlflow-admin-password": "RISK_MLFLOW_ADMIN_PASSWORD",
    "mlflow-pipeline-password": "RISK_MLFLOW_PIPELINE_PASSWORD",
    "mlflow-secret-key": "RISK_MLFLOW_SECRET_KEY",  # Flask's CSRF key of MLflow's auth app
    "pii-token-key": "RISK_PII_TOKEN_KEY",
    "ledger-key": "RISK_LEDGER_KEY",
    "service-signing-key": "RISK_SERVICE_SIGNING_KEY",  # OpenSSH ed25519 private key text
    "review-signing-key": "RISK_REVIEW_SIGNING_KEY",  # the review service's, same format
    "review-session-key": "RISK_REVIEW_SESSION_KEY",  # signs the review page's session cookies
}
# Variables the topology sets per process (or that give its secrets): never inherited from the shell as they are.
_TOPOLOGY_VARIABLES = {v for v in SECRETS.values() if v} | {
    "RISK_DATABASE_URL",
    "RISK_LEDGER_URL",
    "RISK_ALERT_WEBHOOK_URL",
    "RISK_ALLOWED_SIGNERS",
    "RISK_REVIEWERS",
    "MLFLOW_BACKEND_STORE_URI",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_AUTH_CONFIG_PATH",
    "MLFLOW_AUTH_ADMIN_USERNAME",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
}
# Names that say a secret (or a way to one): kept from every process but the pipeline's, which may need the
# operator's cloud credentials or webhook for its own stores.
_LOOKS_SECRET = re.compile(r"KEY|PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|WEBHOOK|_URL$|_URI$|^AWS_|^AZURE_|^GOOGLE_|^SSH_AUTH_SOCK$", re.I)
_LIBPQ = re.compile(r"^PG[A-Z]+$")  # PGPASSWORD, PGUSER, ...: libpq would read them in any process


def _ambient(pipeline: bool) -> dict[str, str]:
    """The environment `make up` was started with, less the topology's own variables and, except for
    the pipeline (code server and its run workers), anything whose name says it is a secret."""
    return {
        name: value
        for name, value in os.environ.items()
        if name not in _TOPOLOGY_VARIABLES and not name.startswith("DAGSTER_PG_") and not _LIBPQ.match(name) and (pipeline or not _LOOKS_SECRET.search(name))
    }


def _new_signing_key() -> str:
    """An Ed25519 key in OpenSSH's private format, as `ssh-keygen -t ed25519 -N ''` writes it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode()


def public_key_line(private_key: str, comment: str = SERVICE_IDENTITY) -> str:
    """`ssh-ed25519 AAAA... comment`: what an allowed-signers file lists for the key."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_ssh_private_key(private_key.encode(), password=None)
    return f"{key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()} {comment}"


@dataclass(frozen=True)
class Topology:
    state: Path
    pg_port: int = 5433
    mlflow_port: int = 5000
    code_port: int = 4266
    ui_port: int = 3000
    review_port: int = 8050
    max_scoring_runs: int = 2
    generate_secrets: bool = True  # False: every secret must come from its variable (the provisioning commands)

    @classmethod
    def from_environment(cls, generate_secrets: bool = True) -> "Topology":
        environ = os.environ
        return cls(
            state=Path(environ.get("RISK_STATE_DIR", ROOT / ".run")).resolve(),
            pg_port=int(environ.get("RISK_PG_PORT", 5433)),
            mlflow_port=int(environ.get("RISK_MLFLOW_PORT", 5000)),
            code_port=int(environ.get("RISK_CODE_PORT", 4266)),
            ui_port=int(environ.get("RISK_UI_PORT", 3000)),
            review_port=int(environ.get("RISK_REVIEW_PORT", 8050)),
            max_scoring_runs=int(environ.get("RISK_MAX_SCORING_RUNS", 2)),
            generate_secrets=generate_secrets,
        )

    @property
    def dagster_home(self) -> Path:
        return self.state / "dagster_home"

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    @property
    def review_url(self) -> str:
        return f"http://{HOST}:{self.review_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{HOST}:{self.mlflow_port}"

    @property
    def mlflow_auth_config(self) -> Path:
        return self.state / "mlflow" / "basic_auth.ini"

    def _server(self) -> urllib.parse.ParseResult:
        """RISK_DATABASE_URL (an administrator of any PostgreSQL server) or the local cluster's superuser."""
        given = os.environ.get("RISK_DATABASE_URL")
        if given:
            return urllib.parse.urlparse(given)
        return urllib.parse.urlparse(f"postgresql://{ADMIN_ROLE}:{urllib.parse.quote(self._password(), safe='')}@{HOST}:{self.pg_port}/postgres")

    def _url(self, database: str, user: str, password: str | None) -> str:
        server = self._server()
        credentials = urllib.parse.quote(user, safe="") + (f":{urllib.parse.quote(password, safe='')}" if password else "")
        # SQLAlchemy 2.1 defaults to psycopg 3; the pinned driver is psycopg2
        return server._replace(scheme="postgresql+psycopg2", netloc=f"{credentials}@{server.netloc.rpartition('@')[2]}", path=f"/{database}").geturl()

    def admin_url(self, database: str) -> str:
        """The server's administrator on `database`: `make up` and the provisioning commands, never a service."""
        server = self._server()
        return self._url(database, urllib.parse.unquote(server.username or ""), urllib.parse.unquote(server.password or "") or None)

    def database_url(self, database: str, role: str | None = None, with_password: bool = True) -> str:
        """`database` as the role its service connects with (SERVICE_ROLES), or as `role`."""
        role = role or SERVICE_ROLES[database]
        return self._url(database, role, self._secret(LOGIN_ROLES[role]) if with_password else None)

    def _secret(self, name: str, make: Callable[[], str] = lambda: secrets.token_hex(32)) -> str:
        """Its variable if set, else generated once into <state>/secrets (git-ignored, mode 600 from creation), never into the repo."""
        variable = SECRETS[name]
        if variable and os.environ.get(variable):
            return os.environ[variable]
        path = self.state / "secrets" / name
        if not self.generate_secrets and not path.exists():
            raise RuntimeError(f"{variable or name} is not set: this command generates no secret")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make())
        return path.read_text().strip()

    def _password(self) -> str:
        return self._secret("postgres-password")

    def _pii_key(self) -> str:
        """RISK_PII_TOKEN_KEY if set, else one generated for this state folder."""
        return self._secret("pii-token-key")

    def signing_key(self, secret: str = "service-signing-key") -> str:
        """A service identity's private key (the sensors': RISK_SERVICE_SIGNING_KEY; the review page's:
        RISK_REVIEW_SIGNING_KEY), or generated here."""
        return self._secret(secret, _new_signing_key).strip() + "\n"

    def allowed_signers(self) -> str:
        """RISK_ALLOWED_SIGNERS if set; else <state>/data/keys/allowed_signers (where `make signing-key`
        lists development approvers' keys for this state's RISK_DATA_DIR), which lists the service
        identities' keys (kept current) and whatever else an operator added to it (approvers' keys)."""
        given = os.environ.get("RISK_ALLOWED_SIGNERS")
        if given:
            return given
        path = self.state / "data" / "keys" / "allowed_signers"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        current = {
            identity: f'{identity} namespaces="{SIGNATURE_NAMESPACE}" {public_key_line(self.signing_key(secret), identity)}'
            for identity, secret in ((SERVICE_IDENTITY, "service-signing-key"), (REVIEW_IDENTITY, "review-signing-key"))
        }
        lines = path.read_text().splitlines() if path.exists() else ["# git's allowed-signers format; `make up` keeps the service identities' lines current"]
        kept = [existing for existing in lines if existing.split(" ", 1)[0] not in current]
        if not set(current.values()) <= set(lines):
            path.write_text("\n".join([*kept, *current.values()]) + "\n")
        return str(path)

    def environments(self) -> dict[str, dict[str, str]]:
        """What each process of the topology runs with, and nothing more: secrets reach them as
        environment variables, never on a command line or in a config file. The run workers are
        started by the code server (DefaultRunLauncher asks it over gRPC) and inherit its environment;
        the daemon and the webserver load no user code (the workspace is the gRPC server), so they
        need only the instance's storage."""
        url = urllib.parse.urlparse(self.database_url("dagster"))
        instance = {
            "DAGSTER_HOME": str(self.dagster_home),
            "DAGSTER_PG_HOST": url.hostname,
            "DAGSTER_PG_PORT": str(url.port or 5432),
            "DAGSTER_PG_USER": urllib.parse.unquote(url.username or ""),
            "DAGSTER_PG_PASSWORD": urllib.parse.unquote(url.password or ""),
            "DAGSTER_PG_DB": url.path.lstrip("/"),
        }
        pipeline = {
            # RISK_ENV=production reads its files from here unless told otherwise
            "RISK_LANDING_URL": str(self.state / "landing"),
            "RISK_DATASETS_URL": str(self.state / "datasets"),
            **_ambient(pipeline=True),
            **instance,
            "RISK_MLFLOW_URI": self.mlflow_url,
            "MLFLOW_TRACKING_URI": self.mlflow_url,  # for MLflow's own tools run in this environment
            "MLFLOW_TRACKING_USERNAME": MLFLOW_PIPELINE_USER,
            "MLFLOW_TRACKING_PASSWORD": self._secret("mlflow-pipeline-password"),
            "RISK_LEDGER_URL": self.database_url("governance"),
            "RISK_LEDGER_KEY": self._secret("ledger-key"),
            "RISK_DATA_DIR": str(self.state / "data"),
            "RISK_PII_TOKEN_KEY": self._pii_key(),
            "RISK_SERVICE_SIGNING_KEY": self.signing_key(),
            "RISK_ALLOWED_SIGNERS": self.allowed_signers(),
            "RISK_UI_URL": self.ui_url,
        }
        if os.environ.get("RISK_ALERT_WEBHOOK_URL"):
            pipeline["RISK_ALERT_WEBHOOK_URL"] = os.environ["RISK_ALERT_WEBHOOK_URL"]  # the alert sensor evaluates in the code server
        mlflow = {
            **_ambient(pipeline=False),
            "MLFLOW_BACKEND_STORE_URI": self.database_url("mlflow"),  # read by `mlflow server`, kept off its command line
            "MLFLOW_AUTH_CONFIG_PATH": str(self.mlflow_auth_config),
            # the auth database's URL in that file carries no password: libpq reads it from here
            "PGPASSWORD": self._secret("pg-mlflow-password"),
            "MLFLOW_AUTH_ADMIN_USERNAME": MLFLOW_ADMIN,
            "MLFLOW_AUTH_ADMIN_PASSWORD": self._secret("mlflow-admin-password"),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": self._secret("mlflow-secret-key"),
        }
        review = {
            **_ambient(pipeline=False),
            # its own database role and keys; the portfolio's files are read as the pipeline reads them
            "RISK_LANDING_URL": pipeline["RISK_LANDING_URL"],
            "RISK_DATASETS_URL": pipeline["RISK_DATASETS_URL"],
            "RISK_DATA_DIR": pipeline["RISK_DATA_DIR"],
            "MLFLOW_TRACKING_URI": self.mlflow_url,  # resolved by the portfolio's resources, never called: no MLflow credentials
            "RISK_LEDGER_URL": self.database_url("governance", REVIEW_ROLE),
            "RISK_LEDGER_KEY": self._secret("ledger-key"),
            "RISK_ALLOWED_SIGNERS": pipeline["RISK_ALLOWED_SIGNERS"],
            "RISK_REVIEWERS": str(self.state / "data" / "keys" / "reviewers"),
            "RISK_REVIEW_SIGNING_KEY": self.signing_key("review-signing-key"),
            "RISK_REVIEW_SESSION_KEY": self._secret("review-session-key"),
        }
        return {
            "postgres": _ambient(pipeline=False),
            "mlflow": mlflow,
            "code-server": pipeline,
            "daemon": {**_ambient(pipeline=False), **instance},
            "webserver": {**_ambient(pipeline=False), **instance},
            "review": review,
        }

    def environment(self) -> dict[str, str]:
        """The pipeline's environment (the code server's and its run workers'): what a command run
        against this topology as the pipeline needs (`make run`, `make approve`, the tests)."""
        return self.environments()["code-server"]


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


def _run(command: list[str], what: str, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}")
    return done


def _cluster_running(data: Path) -> bool:
    """pg_ctl's own answer (a stale postmaster.pid after a crash is not a running cluster)."""
    return (data / "PG_VERSION").exists() and subprocess.run(_as_postgres([_bin("pg_ctl"), "-D", str(data), "status"]), capture_output=True).returncode == 0


def start_postgres(topology: Topology) -> float:
    """Initialise the cluster on first use (or use RISK_DATABASE_URL's server) and start it on
    loopback; provision_databases then creates what is missing."""
    started = time.monotonic()
    if os.environ.get("RISK_DATABASE_URL"):
        return 0.0
    env = _ambient(pipeline=False)  # the server holds no secret of the topology
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
                    [_bin("initdb"), "-D", str(data), "-U", ADMIN_ROLE, f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]
                ),
                "initdb",
                env,
            )
        finally:
            pwfile.unlink(missing_ok=True)
    if _cluster_running(data):
        return 0.0
    if _listening(topology.pg_port):
        raise RuntimeError(f"{HOST}:{topology.pg_port} is taken by another program; set RISK_PG_PORT")
    log = topology.state / "logs" / "postgres.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(log.parent, "postgres")
    _run(
        _as_postgres([_bin("pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "start", "-o", f"-h {HOST} -p {topology.pg_port} -k {data}"]),
        "starting PostgreSQL",
        env,
    )
    return time.monotonic() - started


def _connect(url: str):
    import psycopg2

    connection = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://", 1))
    connection.autocommit = True
    return connection


# Objects in `public` that the administrator owns: made by a `make up` from before the service roles
# (everything ran as the superuser then); handed to the database's owner. Owned sequences follow their table.
_ADMIN_OWNED = """
SELECT format('ALTER %%s %%s OWNER TO %%I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
              WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.oid::regclass, %(owner)s)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT format('ALTER TYPE %%s OWNER TO %%I', t.oid::regtype, %(owner)s)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' AND t.typowner = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND t.typtype IN ('e', 'd')
UNION ALL
SELECT format('ALTER ROUTINE %%s OWNER TO %%I', p.oid::regprocedure, %(owner)s)
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'public' AND p.proowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
"""


def provision_databases(topology: Topology) -> None:
    """As the server's administrator, idempotently: a login role per service with its password, the
    databases each owned by its service (`governance` by LEDGER_OWNER, which nobody logs in as), no
    database reachable by a role that has no business in it, and the governance ledger's table
    created by its owner, on which the pipeline's role gets SELECT and INSERT only (riskcore.ledger
    serialises appends with an advisory lock, which needs no table privilege)."""
    from psycopg2 import sql

    connection = _connect(topology.admin_url("postgres"))
    try:
        with connection.cursor() as cursor:
            for role, secret in LOGIN_ROLES.items():
                cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                cursor.execute(
                    sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %s").format(sql.Identifier(role)),
                    (topology._secret(secret),),
                )
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (LEDGER_OWNER,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(LEDGER_OWNER)))
            for database, owner in DATABASES.items():
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(owner)))
                cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), sql.Identifier(owner)))
                cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
                for role in (SERVICE_ROLES[database], *OTHER_CONNECTS.get(database, ())):
                    cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role)))
    finally:
        connection.close()
    for database, owner in DATABASES.items():
        connection = _connect(topology.admin_url(database))
        try:
            with connection.cursor() as cursor:
                cursor.execute(_ADMIN_OWNED, {"owner": owner})
                for (statement,) in cursor.fetchall():
                    cursor.execute(statement)
                # PostgreSQL before 15 lets every role create in `public`; only the owner may here
                cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner)))
        finally:
            connection.close()
    _install_ledger(topology)


# The review tables (riskcore.review_store): the pipeline queues referrals and reads decisions; the
# review page reads the queue, moves an item's status and is the only writer of decisions.
REVIEW_GRANTS = (
    f'GRANT SELECT, INSERT ON review_queue TO "{PIPELINE_ROLE}"',
    f'GRANT USAGE ON SEQUENCE review_queue_id_seq TO "{PIPELINE_ROLE}"',
    f'GRANT SELECT ON review_decisions TO "{PIPELINE_ROLE}"',
    f'GRANT SELECT, UPDATE (status) ON review_queue TO "{REVIEW_ROLE}"',
    f'GRANT SELECT, INSERT, UPDATE (confirmed_by, confirmed_at, confirm_auth_method, ledger_seq) ON review_decisions TO "{REVIEW_ROLE}"',
    f'GRANT USAGE ON SEQUENCE review_decisions_id_seq TO "{REVIEW_ROLE}"',
    f'GRANT SELECT, INSERT ON governance_ledger TO "{REVIEW_ROLE}"',
)


def _install_ledger(topology: Topology) -> None:
    """riskcore.ledger creates its table and append-only triggers, and riskcore.review_store the review
    tables, as LEDGER_OWNER; then the grants."""
    import sqlalchemy as sa

    from riskcore.ledger import Ledger
    from riskcore.review_store import metadata as review_tables

    engine = sa.create_engine(topology.admin_url("governance"), poolclass=sa.pool.NullPool)

    @sa.event.listens_for(engine, "connect")
    def _as_owner(dbapi_connection, _record):
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{LEDGER_OWNER}"')

    try:
        Ledger(engine)
        with engine.begin() as connection:
            review_tables.create_all(connection)
            for table in ("governance_ledger", "review_queue", "review_decisions", "review_queue_id_seq", "review_decisions_id_seq"):
                connection.exec_driver_sql(f'REVOKE ALL ON {table} FROM PUBLIC, "{PIPELINE_ROLE}", "{REVIEW_ROLE}"')
            connection.exec_driver_sql(f'GRANT SELECT, INSERT ON governance_ledger TO "{PIPELINE_ROLE}"')
            for grant in REVIEW_GRANTS:
                connection.exec_driver_sql(grant)
    finally:
        engine.dispose()


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


def render_mlflow_auth(topology: Topology) -> Path:
    """deploy/mlflow-basic-auth.ini with this topology's auth database (its URL without a password:
    the MLflow server's PGPASSWORD gives it), as <state>/mlflow/basic_auth.ini."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(MLFLOW_AUTH_CONFIG)
    config["mlflow"]["database_uri"] = topology.database_url("mlflow_auth", with_password=False)
    target = topology.mlflow_auth_config
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w") as handle:
        config.write(handle)
    return target


def _mlflow(url: str, method: str, path: str, auth: tuple[str, str] | None, body: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}{path}", method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def provision_mlflow_users(topology: Topology, url: str | None = None) -> None:
    """As MLflow's admin, idempotently: the pipeline's user, with its current password. Its default
    permission is NO_PERMISSIONS, so it reaches what it creates (MANAGE on its experiments and
    registered models) and nothing else; anonymous requests get 401."""
    url = url or topology.mlflow_url
    admin = (MLFLOW_ADMIN, topology._secret("mlflow-admin-password"))
    status, _ = _mlflow(url, "GET", "/api/2.0/mlflow/users/current", admin)
    if status == 401:
        raise RuntimeError(f"MLflow at {url} refuses its admin's password: its auth database was created with another one (RISK_MLFLOW_ADMIN_PASSWORD)")
    if status != 200:
        raise RuntimeError(f"MLflow at {url} does not run its authentication (HTTP {status}): one started by an earlier `make up`? `make down`, then `make up`")
    for user, secret in {MLFLOW_PIPELINE_USER: "mlflow-pipeline-password"}.items():
        password = topology._secret(secret)
        if _mlflow(url, "GET", "/api/2.0/mlflow/users/current", (user, password))[0] == 200:
            continue
        exists = _mlflow(url, "GET", f"/api/2.0/mlflow/users/get?username={urllib.parse.quote(user)}", admin)[0] == 200
        method, path = ("PATCH", "/api/2.0/mlflow/users/update-password") if exists else ("POST", "/api/2.0/mlflow/users/create")
        status, answer = _mlflow(url, method, path, admin, {"username": user, "password": password})
        if status != 200:
            raise RuntimeError(f"MLflow at {url} did not {'update' if exists else 'create'} user {user} (HTTP {status}): {answer[:300]}")


def up(topology: Topology) -> dict[str, float]:
    os.umask(0o077)  # logs, datasets and config of the topology are its own
    bin_dir = Path(sys.executable).parent
    topology.state.mkdir(parents=True, exist_ok=True)
    (topology.state / ".gitignore").write_text("*\n")
    timings = {"postgres": start_postgres(topology)}
    provision_databases(topology)
    render_instance(topology)
    render_mlflow_auth(topology)
    env = topology.environments()
    artifacts = topology.state / "mlflow-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    timings["mlflow server"] = _start(
        topology,
        "mlflow",
        [
            *(str(bin_dir / "mlflow"), "server", "--app-name", "basic-auth", "--host", HOST, "--port", str(topology.mlflow_port)),
            *("--artifacts-destination", str(artifacts), "--workers", "1"),
        ],
        topology.mlflow_port,
        180,
        env["mlflow"],
    )
    provision_mlflow_users(topology)
    timings["code server"] = _start(
        topology,
        "code-server",
        [str(bin_dir / "dagster"), "api", "grpc", "-m", "pipelines.definitions", "-h", HOST, "-p", str(topology.code_port)],
        topology.code_port,
        120,
        env["code-server"],
    )
    workspace = str(topology.state / "workspace.yaml")
    timings["daemon"] = _start(topology, "daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace], None, 60, env["daemon"])
    # The webserver keeps one pooled connection per storage and never pings it (dagster#3812,
    # #33879): after a PostgreSQL restart its first write fails half-way and leaves a run that
    # never starts. Recycling at every checkout (age > 0 s) costs a loopback connect instead.
    timings["webserver"] = _start(
        topology,
        "webserver",
        [str(bin_dir / "dagster-webserver"), "-h", HOST, "-p", str(topology.ui_port), "-w", workspace, "--db-pool-recycle", "0"],
        topology.ui_port,
        120,
        env["webserver"],
    )
    timings["review server"] = _start(
        topology,
        "review",
        [sys.executable, "-m", "pipelines.review", "--portfolio", REVIEW_PORTFOLIO, "serve", "--port", str(topology.review_port)],
        topology.review_port,
        60,
        env["review"],
    )
    return timings


def down(topology: Topology) -> list[str]:
    stopped = [name for name in ("review", "webserver", "daemon", "code-server", "mlflow") if _stop(topology, name)]
    if stop_postgres(topology):
        stopped.append("postgres")
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "command",
        choices=["up", "down", "provision-databases", "provision-mlflow-users"],
        help="provision-databases: roles, databases and the ledger's table on RISK_DATABASE_URL's server (an administrator's URL), "
        "passwords from RISK_PG_DAGSTER_PASSWORD, RISK_PG_MLFLOW_PASSWORD, RISK_PG_PIPELINE_PASSWORD, RISK_PG_REVIEW_PASSWORD; "
        "provision-mlflow-users: the pipeline's MLflow user (RISK_MLFLOW_PIPELINE_PASSWORD) as MLflow's admin (RISK_MLFLOW_ADMIN_PASSWORD) at --mlflow-url",
    )
    parser.add_argument("--mlflow-url", help="provision-mlflow-users: the MLflow server (default: this topology's)")
    args = parser.parse_args(argv)
    if args.command.startswith("provision-"):  # a deployment's set-up (deploy/compose.yaml): nothing generated, nothing started
        topology = Topology.from_environment(generate_secrets=False)
        if args.command == "provision-databases":
            if not os.environ.get("RISK_DATABASE_URL"):
                raise SystemExit("provision-databases: set RISK_DATABASE_URL to the server's administrator")
            provision_databases(topology)
        else:
            provision_mlflow_users(topology, args.mlflow_url)
        print(f"{args.command}: done")
        return 0
    topology = Topology.from_environment()
    if args.command == "down":
        stopped = down(topology)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'} (state kept in {topology.state})")
        return 0
    timings = up(topology)
    for service, seconds in timings.items():
        print(f"  {service:14} {'already running' if seconds == 0 else f'started in {seconds:5.1f} s'}")
    print(
        f"Dagster UI      {topology.ui_url}\nReview page     {topology.review_url}  (officers: RISK_REVIEWERS={topology.state / 'data' / 'keys' / 'reviewers'} make officer IDENTITY=...)\nMLflow          {topology.mlflow_url}  (users {MLFLOW_ADMIN} and {MLFLOW_PIPELINE_USER},"
        f" passwords in {topology.state / 'secrets'})\n"
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
