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
    """What compose and the chart expect of the Dockerfile (name and version, packages, pins, a non-root
    user); tests/integration/test_containers.py builds it and runs it."""
    root = DEPLOY.parent
    dockerfile = (root / "Dockerfile").read_text()
    project = tomllib.loads((root / "pyproject.toml").read_text())
    base = re.search(r"^ARG BASE_IMAGE=python:(\d+\.\d+)\.\d+-slim", dockerfile, re.M)
    assert base and re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    assert base and project["project"]["requires-python"] == f">={base.group(1)},<3.{int(base.group(1).split('.')[1]) + 1}"
    assert "uv pip install --no-cache --no-deps --compile-bytecode -r requirements.lock" in dockerfile  # the lock, unresolved
    assert re.search(r"^ARG UV_VERSION=\d+\.\d+\.\d+$", dockerfile, re.M) and '"uv==$UV_VERSION"' in dockerfile  # the installer pinned too
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
    (container,) = _review_chart()["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image


def _production_variables() -> set[str]:
    import dagster as dg

    from pipelines.environment import production_resources

    return {
        value.env_var_name
        for resource in production_resources().values()
        for value in (getattr(resource, field) for field in type(resource).model_fields)
        if isinstance(value, dg.EnvVar)
    }


# What only the pipeline (the code server and its run workers) holds, beside what the production resources read.
PIPELINE_SECRETS = {"RISK_PII_TOKEN_KEY", "RISK_LEDGER_URL", "RISK_LEDGER_KEY", "RISK_SERVICE_SIGNING_KEY", "MLFLOW_TRACKING_PASSWORD"}
INSTANCE_VARIABLES = {"DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}


def test_compose_and_the_chart_give_the_production_environment_every_variable_it_reads():
    needed = _production_variables()
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    pipeline = compose["services"]["code-server"]["environment"]
    assert pipeline["RISK_ENV"] == "production" and needed <= set(pipeline), needed - set(pipeline)
    assert PIPELINE_SECRETS | {"RISK_ALLOWED_SIGNERS", "MLFLOW_TRACKING_USERNAME"} | INSTANCE_VARIABLES <= set(pipeline)
    assert {"RISK_LANDING_URL", "RISK_DATASETS_URL", "RISK_PII_TOKEN_KEY", "MLFLOW_TRACKING_URI"} <= needed
    # the chart: inline values, and secrets only from the Kubernetes Secret (its keys listed in the file's header)
    text = (DEPLOY / "helm" / "dagster-values.yaml").read_text()
    (deployment,) = yaml.safe_load(text)["dagster-user-deployments"]["deployments"]
    inline = {e["name"] for e in deployment["env"]}
    secret_keys = set(re.findall(r"[A-Z][A-Z_]+[A-Z]", text.split("risk-scoring-secrets (", 1)[1].split(")", 1)[0]))
    assert needed <= inline | secret_keys and PIPELINE_SECRETS <= secret_keys - inline, (needed - inline - secret_keys, PIPELINE_SECRETS - secret_keys)
    assert {"RISK_ALLOWED_SIGNERS", "MLFLOW_TRACKING_USERNAME"} <= inline


def test_each_container_gets_only_the_secrets_it_needs():
    """The same table as `make up` (tests/integration/test_topology_production.py reads it from the
    running processes): the daemon and the webserver load no user code and hold only the instance's
    storage; MLflow holds its own database and admin; PostgreSQL only its superuser's."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]

    def secrets_of(name: str) -> set[str]:
        values = " ".join(str(v) for v in services[name].get("environment", {}).values())
        return set(re.findall(r"\$\{([A-Z_]+)", values))

    assert secrets_of("postgres") == {"POSTGRES_PASSWORD"}
    assert secrets_of("mlflow") == {"RISK_PG_MLFLOW_PASSWORD", "RISK_MLFLOW_ADMIN_PASSWORD", "RISK_MLFLOW_SECRET_KEY"}
    assert secrets_of("code-server") == {
        *("RISK_PG_DAGSTER_PASSWORD", "RISK_PG_PIPELINE_PASSWORD", "RISK_MLFLOW_PIPELINE_PASSWORD"),
        *("RISK_PII_TOKEN_KEY", "RISK_LEDGER_KEY", "RISK_SERVICE_SIGNING_KEY"),
    }
    webserver = services["webserver"]
    assert set(webserver["environment"]) == INSTANCE_VARIABLES | {"RISK_ENV"} and secrets_of("webserver") == {"RISK_PG_DAGSTER_PASSWORD"}
    # the daemon launches the runs, each with the pipeline's environment, read from its own
    assert services["daemon"]["environment"] == services["code-server"]["environment"]
    assert secrets_of("db-setup") == {
        "POSTGRES_PASSWORD",
        "RISK_PG_DAGSTER_PASSWORD",
        "RISK_PG_MLFLOW_PASSWORD",
        "RISK_PG_PIPELINE_PASSWORD",
        "RISK_PG_REVIEW_PASSWORD",
    }
    assert secrets_of("review") == {"RISK_PG_REVIEW_PASSWORD", "RISK_LEDGER_KEY", "RISK_REVIEW_SIGNING_KEY", "RISK_REVIEW_SESSION_KEY"}
    assert secrets_of("mlflow-users") == {"RISK_MLFLOW_ADMIN_PASSWORD", "RISK_MLFLOW_PIPELINE_PASSWORD"}
    # the set-up runs before what needs it, with the topology's own provisioning
    assert services["db-setup"]["command"] == ["python", "-m", "pipelines.topology", "provision-databases"]
    assert services["mlflow-users"]["command"][:4] == ["python", "-m", "pipelines.topology", "provision-mlflow-users"]
    for name in ("mlflow", "code-server", "daemon", "webserver"):
        assert services[name]["depends_on"]["db-setup"] == {"condition": "service_completed_successfully"}, name
    # the daemon and the webserver load the code location once its server answers (a failed first load stays failed)
    assert services["code-server"]["healthcheck"]["test"][1:4] == ["dagster", "api", "grpc-health-check"]
    for name in ("daemon", "webserver"):
        assert services[name]["depends_on"]["code-server"] == {"condition": "service_healthy"}, name
    assert services["code-server"]["depends_on"]["mlflow-users"] == {"condition": "service_completed_successfully"}
    # the chart: the webserver and the daemon get no Secret of the pipeline's
    values = yaml.safe_load((DEPLOY / "helm" / "dagster-values.yaml").read_text())
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert not values[component].get("envSecrets") and not values[component].get("env"), component


def test_compose_runs_each_run_in_its_own_container_with_only_the_pipelines_environment():
    """deploy/dagster.docker.yaml, appended to the instance as compose's header says, passes Dagster's and
    dagster-docker's schemas; the runs get exactly the code server's variables (but DAGSTER_HOME, the image's),
    its data volume and public keys, on the compose network."""
    from dagster_docker import DockerRunLauncher

    text = (DEPLOY / "dagster.yaml").read_text() + (DEPLOY / "dagster.docker.yaml").read_text()
    config = yaml.safe_load(string.Template(text).substitute(RISK_MAX_SCORING_RUNS=2, RISK_DEPLOY_DIR="/srv/risk"))
    _valid_instance(config)
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    checked = validate_config(DockerRunLauncher.config_type(), launcher["config"])
    assert checked.success, [e.message for e in checked.errors]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services, settings = compose["services"], launcher["config"]
    assert all("=" not in name for name in settings["env_vars"])  # values from the launcher's environment, none in this file
    assert set(settings["env_vars"]) == set(services["code-server"]["environment"]) - {"DAGSTER_HOME"}
    assert settings["image"] == services["code-server"]["image"] and settings["network"] == compose["networks"]["default"]["name"]
    code_server_mounts = {v.split(":")[1]: v.split(":")[0] for v in services["code-server"]["volumes"]}
    run_mounts = {v.split(":")[1]: v.split(":")[0] for v in settings["container_kwargs"]["volumes"]}
    assert run_mounts == {"/data": compose["volumes"][code_server_mounts["/data"]]["name"], "/etc/risk/allowed_signers": "/srv/risk/allowed_signers"}
    assert any(v.endswith(":/var/run/docker.sock") for v in services["daemon"]["volumes"])
    assert not any("docker.sock" in v for name, s in services.items() if name != "daemon" for v in s.get("volumes", []))


def test_mlflow_runs_its_own_authentication_everywhere():
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config.read(DEPLOY / "mlflow-basic-auth.ini")
    auth = config["mlflow"]
    assert auth["default_permission"] == "NO_PERMISSIONS" and auth["authorization_function"] == "mlflow.server.auth:authenticate_request_basic_auth"
    assert "admin_password" not in auth and "@" in auth["database_uri"] and ":" not in auth["database_uri"].split("://", 1)[1].split("@")[0]
    assert auth["database_uri"].endswith("/mlflow_auth")  # its own database
    mlflow = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["mlflow"]
    assert mlflow["command"][:4] == ["mlflow", "server", "--app-name", "basic-auth"]
    assert f"./mlflow-basic-auth.ini:{mlflow['environment']['MLFLOW_AUTH_CONFIG_PATH']}:ro" in mlflow["volumes"]
    values = yaml.safe_load((DEPLOY / "helm" / "mlflow-values.yaml").read_text())["auth"]
    assert values["enabled"] and values["appName"] == "basic-auth" and values["defaultPermission"] == "NO_PERMISSIONS"
    assert values["existingAdminSecret"]["name"] and not values.get("adminPassword")  # the admin's password never inline
    assert values["postgres"]["database"] == "mlflow_auth" and values["postgres"]["existingSecret"]["name"] and not values["postgres"].get("password")


# The review page's own secrets (compose's `review` service, the chart's risk-review-secrets): its database role's URL, the
# ledger's key, its signing key and its session key.
REVIEW_SECRETS = {"RISK_LEDGER_URL", "RISK_LEDGER_KEY", "RISK_REVIEW_SIGNING_KEY", "RISK_REVIEW_SESSION_KEY"}


def _review_chart() -> dict:
    """The review chart's manifests by kind (its templates are plain YAML: nothing for Helm to fill in)."""
    docs = [d for path in sorted((DEPLOY / "helm" / "risk-review" / "templates").glob("*.yaml")) for d in yaml.safe_load_all(path.read_text())]
    return {d["kind"]: d for d in docs}


def test_the_review_chart_runs_the_compose_review_service_inside_the_cluster_with_its_own_secrets():
    review = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["review"]
    chart = _review_chart()
    assert set(chart) == {"Deployment", "Service"} and yaml.safe_load((DEPLOY / "helm" / "risk-review" / "Chart.yaml").read_text())["apiVersion"] == "v2"
    pod = chart["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == review["command"]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == set(review["environment"])  # the same variables as compose
    from_secret = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items() if "valueFrom" in e}
    assert from_secret == {name: {"name": "risk-review-secrets", "key": name} for name in REVIEW_SECRETS}  # secrets never inline
    assert {name for name, value in review["environment"].items() if "${" in str(value)} == REVIEW_SECRETS
    inline = {name: e["value"] for name, e in env.items() if "value" in e}
    assert inline["RISK_ENV"] == "production" and all(
        inline[k] == review["environment"][k] for k in ("RISK_REVIEW_PORTFOLIO", "RISK_ALLOWED_SIGNERS", "RISK_REVIEWERS")
    )
    assert not (PIPELINE_SECRETS - REVIEW_SECRETS) & set(env)  # nothing of the pipeline's: no token key, no service key, no MLflow password
    # the files compose mounts (allowed signers, officers' hashes) at the same paths, the officers' from their own Secret
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert {v.split(":")[1] for v in review["volumes"] if v.startswith("./")} <= set(mounts)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/risk/reviewers"]]["secret"]["secretName"] == "risk-review-officers"
    assert volumes[mounts["/etc/risk/allowed_signers"]]["configMap"]["name"] == "risk-allowed-signers"
    # inside the cluster only (compose: loopback), on the port gunicorn binds
    port = int(review["ports"][0].rsplit(":", 1)[1])
    assert f"0.0.0.0:{port}" in container["command"] and container["ports"] == [{"name": "http", "containerPort": port}]
    service = chart["Service"]["spec"]
    assert service["type"] == "ClusterIP" and service["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]
    labels = chart["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"] == chart["Deployment"]["spec"]["selector"]["matchLabels"] and service["selector"].items() <= labels.items()
    assert pod["securityContext"]["runAsNonRoot"] and pod["automountServiceAccountToken"] is False and container["securityContext"]["readOnlyRootFilesystem"]
