"""The one place that chooses the environment: RISK_ENV=local (default) or production."""

from __future__ import annotations

import os

import dagster as dg

from resources.alerts import AlertWebhook
from resources.governance import Governance
from resources.pii import PiiTokeniser
from resources.registry import ModelRegistry
from resources.source import GermanCreditLandingFolder, LandingFolder, ScoringCalendar, SyntheticLandingFolder
from resources.storage import DatasetStore
from resources.validation import ContractValidator
from riskcore.pii import DEVELOPMENT_TOKEN_KEY

ENVIRONMENTS = ("local", "production")
PII_KEY_VAR = "RISK_PII_TOKEN_KEY"
WEBHOOK_VAR = "RISK_ALERT_WEBHOOK_URL"


def _alerts() -> AlertWebhook:
    """Optional everywhere: without a webhook, failures are still logged by the sensor."""
    return AlertWebhook(url=dg.EnvVar(WEBHOOK_VAR) if os.environ.get(WEBHOOK_VAR) else None, ui_url=os.environ.get("RISK_UI_URL"))


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


SOURCES = ("synthetic", "german_credit")


def local_resources() -> dict:
    """Embedded default: landing files, Parquet and a SQLite MLflow registry under data/.

    RISK_SOURCE picks the data: `synthetic` (default) or `german_credit` (real, public); the
    knobs are environment variables so `make run` and the UI use the same values.
    """
    # Development default key, labelled as such in every ingestion's metadata.
    os.environ.setdefault(PII_KEY_VAR, DEVELOPMENT_TOKEN_KEY)
    source = os.environ.get("RISK_SOURCE", "synthetic")
    if source not in SOURCES:
        raise ValueError(f"RISK_SOURCE={source!r}; expected one of {SOURCES}")
    if source == "german_credit":
        # 20 months of 50 applications (2023-01..2024-08), all matured by 2025-08; last 6 out of time.
        data = os.environ.get("RISK_DATA_DIR", "data/german_credit")
        calendar = ScoringCalendar(as_of_month=os.environ.get("RISK_AS_OF", "2025-08"), out_of_time_months=6)
        landing = GermanCreditLandingFolder(path=f"{data}/landing", archive_dir=f"{data}/archives")
        model_name = "german_credit_pd"
    else:
        data = os.environ.get("RISK_DATA_DIR", "data")
        calendar = ScoringCalendar(as_of_month=os.environ.get("RISK_AS_OF", "2024-12"),
                                   performance_window_months=int(os.environ.get("RISK_PERFORMANCE_WINDOW_MONTHS", "12")),
                                   out_of_time_months=int(os.environ.get("RISK_OUT_OF_TIME_MONTHS", "3")))
        landing = SyntheticLandingFolder(
            path=f"{data}/landing",
            calendar=calendar,
            seed=int(os.environ.get("RISK_SEED", "42")),
            rows_per_month=int(os.environ.get("RISK_ROWS_PER_MONTH", "20000")),
            scenario=os.environ.get("RISK_SCENARIO", "none"),
            scenario_start=os.environ.get("RISK_SCENARIO_START", "2024-06"),
        )
        model_name = "retail_pd"
    return {
        "calendar": calendar,
        "landing": landing,
        "store": DatasetStore(base_path=f"{data}/datasets"),
        "registry": _local_registry(data, model_name),
        "tokeniser": PiiTokeniser(key=dg.EnvVar(PII_KEY_VAR)),
        "validator": ContractValidator(data_docs_dir=f"{data}/gx_data_docs"),
        # Development: the first version becomes champion without approval (recorded as such).
        "governance": Governance(ledger_url=dg.EnvVar("RISK_LEDGER_URL") if os.environ.get("RISK_LEDGER_URL") else f"sqlite:///{data}/governance/ledger.db",
                                 auto_approve="bootstrap"),
        "alerts": _alerts(),
    }


def _local_registry(data: str, model_name: str) -> ModelRegistry:
    """A SQLite file by default; the MLflow server when RISK_MLFLOW_URI is set (`make up`). Not
    MLFLOW_TRACKING_URI: MLflow sets that one itself in any process that used a registry, and a
    child process would inherit it."""
    if os.environ.get("RISK_MLFLOW_URI"):
        return ModelRegistry(tracking_uri=dg.EnvVar("RISK_MLFLOW_URI"), model_name=model_name)
    return ModelRegistry(tracking_uri=f"sqlite:///{data}/mlflow/mlflow.db", artifact_location=f"{data}/mlflow/artifacts", model_name=model_name)


def production_resources() -> dict:
    """Real landing folder and datasets on any fsspec URL, an MLflow server; secrets from the environment."""
    calendar = ScoringCalendar()
    return {
        "calendar": calendar,
        "landing": LandingFolder(path=dg.EnvVar("RISK_LANDING_URL")),
        "store": DatasetStore(base_path=dg.EnvVar("RISK_DATASETS_URL")),
        "registry": ModelRegistry(tracking_uri=dg.EnvVar("MLFLOW_TRACKING_URI")),
        "tokeniser": PiiTokeniser(key=dg.EnvVar(PII_KEY_VAR)),
        "validator": ContractValidator(),
        "governance": Governance(ledger_url=dg.EnvVar("RISK_LEDGER_URL")),
        "alerts": _alerts(),
    }


def resources_for(env: str) -> dict:
    return local_resources() if env == "local" else production_resources()
