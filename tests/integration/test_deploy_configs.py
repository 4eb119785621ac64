"""Every deployment file loads, and the Dagster ones pass Dagster's own instance config schema."""

import re
import string
import tomllib
from pathlib import Path

import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config_schema

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def _valid_instance(config: dict) -> None:
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]


def test_the_production_instance_config_is_valid_and_reads_credentials_from_the_environment():
    text = string.Template((DEPLOY / "dagster.yaml").read_text()).substitute(RISK_MAX_SCORING_RUNS=3)
    config = yaml.safe_load(text)
    _valid_instance(config)
    database = config["storage"]["postgres"]["postgres_db"]
    assert all(isinstance(database[k], dict) and "env" in database[k] for k in ("hostname", "port", "username", "password", "db_name"))
    limits = {(rule["key"], rule["value"]): rule["limit"] for rule in config["run_queue"]["tag_concurrency_limits"]}
    assert limits == {("risk/run_kind", "training"): 1, ("risk/run_kind", "scoring"): 3}
    assert config["run_retries"] == {"enabled": True, "max_retries": 2}
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] and 0 < monitoring["start_timeout_seconds"] < monitoring["max_runtime_seconds"] <= 24 * 3600


def test_the_helm_values_translate_to_a_valid_dagster_instance():
    values = yaml.safe_load((DEPLOY / "helm" / "dagster-values.yaml").read_text())
    daemon = values["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    # The chart renders these blocks into the instance's dagster.yaml: validate what it would render.
    _valid_instance(
        {
            "storage": {
                "postgres": {
                    "postgres_db": {
                        "hostname": values["postgresql"]["postgresqlHost"],
                        "username": values["postgresql"]["postgresqlUsername"],
                        "password": {"env": "DAGSTER_PG_PASSWORD"},
                        "db_name": values["postgresql"]["postgresqlDatabase"],
                        "port": values["postgresql"]["service"]["port"],
                        "params": values["postgresql"]["postgresqlParams"],
                        "scheme": values["postgresql"]["postgresqlScheme"],
                    }
                }
            },
            "run_queue": {"max_concurrent_runs": queue["maxConcurrentRuns"], "tag_concurrency_limits": queue["tagConcurrencyLimits"]},
            "run_retries": {"enabled": daemon["runRetries"]["enabled"], "max_retries": daemon["runRetries"]["maxRetries"]},
            "run_monitoring": {"enabled": daemon["runMonitoring"]["enabled"], "start_timeout_seconds": daemon["runMonitoring"]["startTimeoutSeconds"]},
        }
    )
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
    # ...and the run launcher block, as the chart renders it, against dagster-k8s's own schema
    from dagster_k8s import K8sRunLauncher

    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    rendered = {
        "instance_config_map": "dagster-instance",
        "dagster_home": "/opt/dagster/dagster_home",
        "load_incluster_config": True,
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "service_account_name": "dagster",
        "job_namespace": "risk-platform",
        "env_secrets": [secret["name"] for secret in launcher["envSecrets"]],
        "run_k8s_config": {"container_config": launcher["runK8sConfig"]["containerConfig"]},
    }
    checked = validate_config(K8sRunLauncher.config_type(), rendered)
    assert checked.success, [e.message for e in checked.errors]
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2" and values["generatePostgresqlPasswordSecret"] is False
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "pipelines.definitions"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["RISK_ENV"] == "production" and env["RISK_DATASETS_URL"].startswith("s3://")  # object storage
    assert {"name": "risk-scoring-secrets"} in deployment["envSecrets"]  # secrets never inline


def test_compose_and_mlflow_values_load_publish_on_loopback_and_name_no_registry_host():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    yaml.safe_load((DEPLOY / "helm" / "mlflow-values.yaml").read_text())
    published = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert published and all(p.startswith("127.0.0.1:") for p in published)
    for path in DEPLOY.rglob("*.yaml"):
        for image in re.findall(r"(?:image:|repository:)\s*([^\s#]+)", path.read_text()):
            assert "/" not in image.split(":")[0] or "." not in image.split("/")[0], f"{path.name}: {image} names a registry host"
    assert "POSTGRES_PASSWORD:" in (DEPLOY / "compose.yaml").read_text() and "${POSTGRES_PASSWORD" in (DEPLOY / "compose.yaml").read_text()


def test_the_image_the_deployments_run_is_built_from_this_repository_with_the_pinned_stack():
    """No Docker engine runs here, so the image is not built in CI: this holds the Dockerfile to
    what compose and the chart expect of it (name and version, packages, pins, a non-root user)."""
    root = DEPLOY.parent
    dockerfile = (root / "Dockerfile").read_text()
    project = tomllib.loads((root / "pyproject.toml").read_text())
    base = re.search(r"^FROM python:(\d+\.\d+)\.\d+-slim", dockerfile, re.M)
    assert base and project["project"]["requires-python"] == f">={base.group(1)},<3.{int(base.group(1).split('.')[1]) + 1}"
    assert "pip install --no-cache-dir --no-deps -r requirements.lock" in dockerfile  # the lock, unresolved
    copied = {source for line in re.findall(r"^COPY (.+)$", dockerfile, re.M) for source in line.split()[:-1]}
    assert set(project["tool"]["setuptools"]["packages"]) <= copied and all((root / source).exists() for source in copied)
    ignored = (root / ".dockerignore").read_text()
    assert "*" in ignored.splitlines() and all(f"!{package}/" in ignored for package in project["tool"]["setuptools"]["packages"])
    assert "RISK_CODE_VERSION=$RISK_CODE_VERSION" in dockerfile and re.search(r"^USER 10001$", dockerfile, re.M)
    image = f"risk-scoring:{project['project']['version']}"
    assert f'org.opencontainers.image.version="{project["project"]["version"]}"' in dockerfile
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert {s["image"] for name, s in compose["services"].items() if name != "postgres"} == {image}
    for values in ("dagster-values.yaml", "mlflow-values.yaml"):
        text = (DEPLOY / "helm" / values).read_text()
        assert re.search(r"repository: risk-scoring\b", text) and f'tag: "{image.split(":")[1]}"' in text, values


def test_compose_and_the_chart_give_the_production_environment_every_variable_it_reads():
    import dagster as dg

    from pipelines.environment import production_resources

    needed = {
        value.env_var_name
        for resource in production_resources().values()
        for value in (getattr(resource, field) for field in type(resource).model_fields)
        if isinstance(value, dg.EnvVar)
    }
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name in ("code-server", "daemon", "webserver"):
        environment = compose["services"][name]["environment"]
        assert environment["RISK_ENV"] == "production" and needed <= set(environment), (name, needed - set(environment))
    assert {"RISK_LANDING_URL", "RISK_DATASETS_URL", "RISK_PII_TOKEN_KEY", "MLFLOW_TRACKING_URI"} <= needed
    # the chart: inline values, and secrets only from the Kubernetes Secret (its keys listed in the file's header)
    text = (DEPLOY / "helm" / "dagster-values.yaml").read_text()
    (deployment,) = yaml.safe_load(text)["dagster-user-deployments"]["deployments"]
    inline = {e["name"] for e in deployment["env"]}
    secret_keys = set(re.findall(r"RISK_[A-Z_]+", text.split("risk-scoring-secrets (", 1)[1].split(")", 1)[0]))
    assert needed <= inline | secret_keys and {"RISK_PII_TOKEN_KEY", "RISK_LEDGER_URL"} <= secret_keys - inline, needed - inline - secret_keys
