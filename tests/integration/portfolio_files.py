"""Portfolio files for tests: the shipped ones, renamed and re-dated in a temp folder, and the
resources a test deployment runs them on (real MLflow, real ledger, real Parquet)."""

from pathlib import Path

import yaml

from checks.validation import ContractValidator
from pipelines.environment import PORTFOLIOS_DIR
from resources.pii import PiiTokeniser
from resources.portfolios import Portfolios
from tests.signing import SERVICE, key_of, write_allowed_signers


def write_portfolio(
    folder: Path, name: str, base: str | Path = "retail_pd.yaml", calendar: dict | None = None, policies: dict[str, str] | None = None, **changes
) -> str:
    """A shipped portfolio file (or a test's, `base` a path) under another name (its own model,
    ledger subjects, datasets); `policies`: some of its policy files replaced."""
    source = PORTFOLIOS_DIR / base
    doc = yaml.safe_load(source.read_text())
    for section in ("contracts", "policies"):
        doc[section] = {k: str((source.parent / v).resolve()) for k, v in doc[section].items()}
    doc["policies"].update(policies or {})
    doc.update(name=name, locations={"landing": name, "datasets": name}, allowed_signers=write_allowed_signers(folder / "allowed_signers"), **changes)
    if calendar is not None:
        doc["calendar"] = calendar
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def deployment(
    root: Path,
    files: list[str],
    mlflow_uri: tuple[str, str] | None = None,
    key: str = "integration-test-key",
    docs: bool = True,
    auto_approve: str | None = "bootstrap",
    ledger_key: str | None = "integration-test-ledger-hmac-key",
) -> dict:
    uri, artifacts = mlflow_uri or (f"sqlite:///{root}/mlflow.db", str(root / "mlflow-artifacts"))
    return {
        "portfolios": Portfolios(
            files=files,
            landing_root=str(root / "landing"),
            datasets_root=str(root / "datasets"),
            tracking_uri=uri,
            artifact_location=artifacts,
            ledger_url=f"sqlite:///{root}/ledger.db",
            ledger_key=ledger_key,  # entries authenticated, as a deployment with RISK_LEDGER_KEY has them
            auto_approve=auto_approve,
            service_signing_key=key_of(SERVICE)[0],  # the rollback sensor's own key (RISK_SERVICE_SIGNING_KEY)
            rollout_key="integration-test-rollout-assignment-key",  # RISK_ROLLOUT_KEY
        ),
        "tokeniser": PiiTokeniser(key=key),
        "validator": ContractValidator(data_docs_dir=str(root / "gx_data_docs") if docs else None),
    }
