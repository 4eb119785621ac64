"""The one place that chooses the environment: RISK_ENV=local (default) or production."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from checks.validation import ContractValidator
from resources.alerts import AlertWebhook
from resources.pii import DEVELOPMENT_TOKEN_KEY, PII_KEY_VAR, PII_PREVIOUS_KEYS_VAR, PiiTokeniser
from resources.portfolios import Portfolios

ENVIRONMENTS = ("local", "production")
WEBHOOK_VAR = "RISK_ALERT_WEBHOOK_URL"
LEDGER_KEY_VAR = "RISK_LEDGER_KEY"
SERVICE_KEY_VAR = "RISK_SERVICE_SIGNING_KEY"
ROLLOUT_KEY_VAR = "RISK_ROLLOUT_KEY"
# Locally only: the canary cell's keyed hash without a secret. Its id is recorded when a canary starts.
DEVELOPMENT_ROLLOUT_KEY = "development-only-rollout-assignment-key-not-a-secret"


def _alerts() -> AlertWebhook:
    """Optional everywhere: without a webhook, failures are still logged by the sensor."""
    return AlertWebhook(url=dg.EnvVar(WEBHOOK_VAR) if os.environ.get(WEBHOOK_VAR) else None, ui_url=os.environ.get("RISK_UI_URL"))


def _ledger_key() -> dict:
    """The ledger's HMAC key when the deployment gives one (RISK_LEDGER_KEY); without it entries are
    chained with plain SHA-256 and the ledger check says they are not authenticated."""
    return {"ledger_key": dg.EnvVar(LEDGER_KEY_VAR)} if os.environ.get(LEDGER_KEY_VAR) else {}


def _service_key() -> dict:
    """The private key the sensors' service identity signs with (RISK_SERVICE_SIGNING_KEY); without
    it, a rollback the sensor asks for is refused (and alerts) rather than made unsigned."""
    return {"service_signing_key": dg.EnvVar(SERVICE_KEY_VAR)} if os.environ.get(SERVICE_KEY_VAR) else {}


def _rollout_key(default: str | None) -> dict:
    """The secret of the canary cell's keyed hash (RISK_ROLLOUT_KEY); without it, `default`."""
    return {"rollout_key": dg.EnvVar(ROLLOUT_KEY_VAR) if os.environ.get(ROLLOUT_KEY_VAR) else default}


def development_keys(data: str) -> Path:
    """Locally, signers are development keys made by `make signing-key` under data/keys/."""
    return Path(data, "keys").resolve()


def _development_service_key(data: str) -> dict:
    """The sensor's development key (`make signing-key IDENTITY=performance_rollback_sensor`), when made."""
    key = development_keys(data) / "performance_rollback_sensor"
    return {"service_signing_key": key.read_text()} if key.is_file() else {}


def current_environment() -> str:
    env = os.environ.get("RISK_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ValueError(f"RISK_ENV={env!r}; expected one of {ENVIRONMENTS}")
    return env


def automation_status() -> str:
    """Schedules and the retraining/rollback sensors: running where the environment is production
    (a deployment runs its calendar), stopped on a laptop until someone turns them on."""
    return "RUNNING" if current_environment() == "production" else "STOPPED"


def monitoring_cron() -> str:
    """When the daily monitoring runs: RISK_MONITORING_CRON, 07:00 UTC unless an operator moves it."""
    cron = os.environ.get("RISK_MONITORING_CRON", "0 7 * * *")
    if len(cron.split()) != 5:
        raise ValueError(f"RISK_MONITORING_CRON={cron!r}: expected a 5-field cron expression, such as '0 7 * * *'")
    return cron


PORTFOLIOS_DIR = Path(__file__).parent / "portfolios"
LOCAL_AS_OF = "2024-12"
SHIPPED_PORTFOLIOS = {"local": ("retail_pd.yaml", "german_credit.yaml"), "production": ("retail_pd.yaml",)}


def portfolio_files(env: str) -> list[str]:
    """RISK_PORTFOLIOS (portfolio files, separated by commas), or the shipped ones: the synthetic
    retail book and German credit locally, the retail book's shape in production."""
    chosen = os.environ.get("RISK_PORTFOLIOS")
    if chosen:
        return [str(Path(f.strip()).resolve()) for f in chosen.split(",") if f.strip()]
    return [str(PORTFOLIOS_DIR / name) for name in SHIPPED_PORTFOLIOS[env]]


def data_dir() -> str:
    return os.environ.get("RISK_DATA_DIR", "data")


def local_resources() -> dict:
    """Embedded default: landing files, Parquet and a SQLite MLflow registry under data/."""
    data = data_dir()
    mlflow = (
        {"tracking_uri": dg.EnvVar("RISK_MLFLOW_URI")}
        if os.environ.get("RISK_MLFLOW_URI")
        else {
            # Not MLFLOW_TRACKING_URI: MLflow sets that one itself in any process that used a registry, and a child would inherit it.
            "tracking_uri": f"sqlite:///{data}/mlflow/mlflow.db",
            "artifact_location": f"{data}/mlflow/artifacts",
        }
    )
    return {
        "portfolios": Portfolios(
            files=portfolio_files("local"),
            landing_root=f"{data}/landing",
            datasets_root=f"{data}/datasets",
            **mlflow,
            ledger_url=dg.EnvVar("RISK_LEDGER_URL") if os.environ.get("RISK_LEDGER_URL") else f"sqlite:///{data}/governance/ledger.db",
            **_ledger_key(),
            **(_service_key() or _development_service_key(data)),
            **_rollout_key(DEVELOPMENT_ROLLOUT_KEY),
            # Development: the first version becomes champion without approval (recorded as such).
            auto_approve="bootstrap",
            # The embedded default is a simulated world whose "now" is the end of its 24 synthetic months.
            variables={
                "RISK_AS_OF": LOCAL_AS_OF,
                "RISK_ALLOWED_SIGNERS": str(development_keys(data) / "allowed_signers"),
                "RISK_REVIEWERS": str(development_keys(data) / "reviewers"),
            },
        ),
        # Without RISK_PII_TOKEN_KEY, the development key (no secret), labelled as such in every ingestion's metadata;
        # given as a value, not put into os.environ, where every later resource of the process would take it for a real key.
        "tokeniser": PiiTokeniser(
            key=dg.EnvVar(PII_KEY_VAR) if os.environ.get(PII_KEY_VAR) else DEVELOPMENT_TOKEN_KEY,
            previous_keys=dg.EnvVar(PII_PREVIOUS_KEYS_VAR) if os.environ.get(PII_PREVIOUS_KEYS_VAR) else None,
        ),
        "validator": ContractValidator(data_docs_dir=f"{data}/gx_data_docs"),
        "alerts": _alerts(),
    }


def production_resources() -> dict:
    """Real landing folders and datasets on any fsspec URL, an MLflow server; secrets from the environment."""
    return {
        "portfolios": Portfolios(
            files=portfolio_files("production"),
            landing_root=dg.EnvVar("RISK_LANDING_URL"),
            datasets_root=dg.EnvVar("RISK_DATASETS_URL"),
            tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI"),
            ledger_url=dg.EnvVar("RISK_LEDGER_URL"),
            **_ledger_key(),
            **_service_key(),
            **_rollout_key(None),  # no canary starts without a real key
        ),
        # Refuses, when a run sets it up (before anything is written), the development key and keys under 32 bytes.
        "tokeniser": PiiTokeniser(
            key=dg.EnvVar(PII_KEY_VAR),
            previous_keys=dg.EnvVar(PII_PREVIOUS_KEYS_VAR) if os.environ.get(PII_PREVIOUS_KEYS_VAR) else None,
            production=True,
        ),
        "validator": ContractValidator(),
        "alerts": _alerts(),
    }


def resources_for(env: str) -> dict:
    return local_resources() if env == "local" else production_resources()


def configured_portfolio(name: str):
    """One portfolio as this environment configures it (environment variables resolved): what the
    command-line tools (run, prepare, backfill, governance) act on."""
    with dg.build_resources({"portfolios": resources_for(current_environment())["portfolios"]}) as resources:
        return resources.portfolios.named(name)
