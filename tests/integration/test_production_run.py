"""`make run` with the production resources (no server needed: SQLite registry and ledger on
local paths given as the production variables): nothing is promoted without an approver, the
run stops before scoring and says how to resume; after `make approve` it resumes. A file
registry's artifacts go under the datasets location, not ./mlruns of the working folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

from riskcore.signatures import NAMESPACE
from tests.signing import key_of, write_allowed_signers

ROOT = Path(__file__).resolve().parents[2]
MONTHS = ("--start", "2023-01", "--end", "2023-05")


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_"))}
    env.update(
        RISK_ENV="production",
        RISK_LANDING_URL=str(root / "landing"),
        RISK_DATASETS_URL=str(root / "datasets"),
        MLFLOW_TRACKING_URI=f"sqlite:///{root}/mlflow.db",
        RISK_LEDGER_URL=f"sqlite:///{root}/ledger.db",
        RISK_ALLOWED_SIGNERS=str(root / "allowed_signers"),
        RISK_PII_TOKEN_KEY="production-test-key-of-forty-characters!",
        RISK_AS_OF="2023-05",
        RISK_ROWS_PER_MONTH="3000",
        RISK_PERFORMANCE_WINDOW_MONTHS="1",
        RISK_OUT_OF_TIME_MONTHS="1",
        DAGSTER_HOME=str(root / "dagster_home"),
        PYTHONPATH=str(ROOT),
    )
    (root / "dagster_home").mkdir(exist_ok=True)
    # run from another folder: nothing may land in the working directory
    return subprocess.run([sys.executable, "-W", "ignore", "-m", *args], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def _key_file(folder: Path, identity: str) -> Path:
    path = folder / "keys" / identity
    path.parent.mkdir(exist_ok=True)
    path.write_text(key_of(identity)[0])
    path.chmod(0o600)
    return path


def test_production_stops_at_the_champion_until_approved_then_resumes(tmp_path):
    write_allowed_signers(tmp_path / "allowed_signers")
    first = _run(tmp_path, "pipelines.run", "--prepare", "synthetic", *MONTHS)
    assert first.returncode == 0, first.stderr[-3000:]
    resume = "python -m pipelines.run --portfolio retail_pd --only scoring,monitoring,performance,reporting"
    assert "retail_pd has no champion: stopping before scoring" in first.stdout and resume in first.stdout
    assert "make approve PORTFOLIO=retail_pd VERSION=1" in first.stdout and "scoring" not in first.stdout.split("time per stage:")[1]
    assert not (tmp_path / "datasets" / "retail_pd" / "risk_scores").exists()
    assert (tmp_path / "datasets" / "mlflow-artifacts").is_dir() and not (tmp_path / "mlruns").exists()

    someone = ("--version", "1", "--approver", "someone@example.com", "--reason", "x", "--key", str(_key_file(tmp_path, "someone@example.com")))
    refused = _run(tmp_path, "pipelines.governance", "approve", *someone)
    assert refused.returncode == 2 and "may not approve" in refused.stderr
    # The approver's key never reaches the pipeline: the request is printed, signed with ssh-keygen, handed in.
    approver = ("--version", "1", "--approver", "head.of.credit.risk@example.com", "--reason", "gates pass")
    request = _run(tmp_path, "pipelines.governance", "request", "approve", *approver)
    assert request.returncode == 0, request.stderr[-3000:]
    (tmp_path / "request.json").write_text(request.stdout)
    key = _key_file(tmp_path, "head.of.credit.risk@example.com")
    subprocess.run(["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(tmp_path / "request.json")], check=True, capture_output=True)
    signed_at = json.loads(request.stdout)["signed_at"]
    unsigned = _run(tmp_path, "pipelines.governance", "approve", *approver)  # no key, no signature
    assert unsigned.returncode == 2 and "no signing key" in unsigned.stderr
    approved = _run(tmp_path, "pipelines.governance", "approve", *approver, "--signature", str(tmp_path / "request.json.sig"), "--signed-at", signed_at)
    assert approved.returncode == 0, approved.stderr[-3000:]

    resumed = _run(tmp_path, "pipelines.run", *MONTHS, "--only", "scoring,monitoring,performance,reporting")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "champion model: retail_pd version 1" in resumed.stdout and "chain intact" in resumed.stdout
    assert len(list((tmp_path / "datasets" / "retail_pd" / "risk_scores").iterdir())) == 5
    assert not (tmp_path / "mlruns").exists()
