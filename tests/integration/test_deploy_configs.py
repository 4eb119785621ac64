"""Every deployment file loads, and the Dagster ones pass Dagster's own instance config schema."""

import re
import string
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
    limits = {(l["key"], l["value"]): l["limit"] for l in config["run_queue"]["tag_concurrency_limits"]}
    assert limits == {("risk/run_kind", "training"): 1, ("risk/run_kind", "scoring"): 3}
    assert config["run_retries"] == {"enabled": True, "max_retries": 2}


def test_the_helm_values_translate_to_a_valid_dagster_instance():
    values = yaml.safe_load((DEPLOY / "helm" / "dagster-values.yaml").read_text())
    daemon = values["dagsterDaemon"]
    queue = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    # The chart renders these blocks into the instance's dagster.yaml: validate what it would render.
    _valid_instance({
        "storage": {"postgres": {"postgres_db": {"hostname": values["postgresql"]["postgresqlHost"], "username": values["postgresql"]["postgresqlUsername"],
                                                 "password": {"env": "DAGSTER_PG_PASSWORD"}, "db_name": values["postgresql"]["postgresqlDatabase"],
                                                 "port": values["postgresql"]["service"]["port"], "params": values["postgresql"]["postgresqlParams"],
                                                 "scheme": values["postgresql"]["postgresqlScheme"]}}},
        "run_queue": {"max_concurrent_runs": queue["maxConcurrentRuns"], "tag_concurrency_limits": queue["tagConcurrencyLimits"]},
        "run_retries": {"enabled": daemon["runRetries"]["enabled"], "max_retries": daemon["runRetries"]["maxRetries"]},
        "run_monitoring": {"enabled": daemon["runMonitoring"]["enabled"], "start_timeout_seconds": daemon["runMonitoring"]["startTimeoutSeconds"]},
    })
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
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
