"""PII token keys (issue 13): production refuses the development key and keys under 32 bytes
before anything is written; tokens carry the id of their key; during a rotation, old and new
tokens of one value match through the previous keys; the rotation command reports key ids and
stored tokens by key id, and prints a new key once, on stdout only."""

import hashlib
import hmac
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from checks import contract_path
from resources.pii import DEVELOPMENT_TOKEN_KEY, PII_KEY_VAR, PII_PREVIOUS_KEYS_VAR, PiiKeyRefused, PiiTokeniser
from resources.pii import MIN_KEY_BYTES as PII_MIN_KEY_BYTES
from riskcore.contract import load_contract
from riskcore.ingestion import ingest
from riskcore.pii import LEGACY_KEY_ID, MIN_KEY_BYTES, NOT_A_TOKEN, PII_PATTERNS, count_key_ids, key_id, token, token_key_id, tokenise, tokenise_column
from riskcore.synthetic import applications_frame, generate_month

ROOT = Path(__file__).resolve().parents[2]
OLD_KEY = "old-production-key-of-at-least-32-bytes!"
NEW_KEY = "new-production-key-of-at-least-32-bytes!"
SSN = "900-12-3456"


def _kid(key: str) -> str:
    """The key id, computed here independently of the code under test."""
    return hmac.new(key.encode(), b"key-id", hashlib.sha256).hexdigest()[:8]


def _digest(value: str, key: str, column: str) -> str:
    return hmac.new(key.encode(), f"{column}\x1f{value}".encode(), hashlib.sha256).hexdigest()[:32]


def _production_tokeniser(monkeypatch, key: str, previous: str | None = None) -> PiiTokeniser:
    """The tokeniser exactly as production_resources() wires it, from the environment."""
    from pipelines.environment import production_resources

    monkeypatch.setenv(PII_KEY_VAR, key)
    if previous is None:
        monkeypatch.delenv(PII_PREVIOUS_KEYS_VAR, raising=False)
    else:
        monkeypatch.setenv(PII_PREVIOUS_KEYS_VAR, previous)
    return production_resources()["tokeniser"]


def _materialise_with(tokeniser: PiiTokeniser, target: Path) -> dg.ExecuteInProcessResult:
    """A run whose one asset writes a token to `target`, as ingestion writes its datasets."""

    @dg.asset
    def tokenised(tokeniser: PiiTokeniser) -> None:
        target.write_text(token(SSN, tokeniser.key, "ssn"))

    return dg.materialize([tokenised], resources={"tokeniser": tokeniser}, raise_on_error=False)


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    errors = [e.event_specific_data.error for e in result.all_events if e.is_failure or e.event_type_value == "RESOURCE_INIT_FAILURE"]
    return "\n".join(error.to_string() for error in errors if error is not None)


@pytest.mark.parametrize(
    "key",
    [DEVELOPMENT_TOKEN_KEY, "k" * 31, "é" * 15 + "k", "Ж"],
    ids=["development key", "31 bytes", "31 bytes in 16 characters", "one character"],
)
def test_production_refuses_the_development_key_and_short_keys_before_anything_is_written(monkeypatch, tmp_path, key):
    tokeniser = _production_tokeniser(monkeypatch, key)
    target = tmp_path / "written.txt"
    result = _materialise_with(tokeniser, target)
    assert not result.success and not target.exists()
    failure = _failure_text(result)
    assert "PiiKeyRefused" in failure and PII_KEY_VAR in failure and key not in failure
    with pytest.raises(dg.DagsterResourceFunctionError) as raised, dg.build_resources({"tokeniser": tokeniser}):
        pass
    refusal = raised.value.__cause__
    assert isinstance(refusal, PiiKeyRefused) and PII_KEY_VAR in str(refusal) and key not in str(refusal)
    assert ("development key" in str(refusal)) == (key == DEVELOPMENT_TOKEN_KEY)
    assert ("shorter than 32 bytes" in str(refusal)) == (key != DEVELOPMENT_TOKEN_KEY)


@pytest.mark.parametrize("key", ["k" * 32, "é" * 16, NEW_KEY], ids=["32 bytes", "32 bytes in 16 characters", "40 bytes"])
def test_production_accepts_a_key_of_32_bytes_or_more(monkeypatch, tmp_path, key):
    tokeniser = _production_tokeniser(monkeypatch, key)
    with dg.build_resources({"tokeniser": tokeniser}) as built:
        assert built.tokeniser.production and built.tokeniser.key == key and built.tokeniser.key_problem() is None
    assert PII_MIN_KEY_BYTES == MIN_KEY_BYTES == 32  # the resource's copy of the domain's floor
    target = tmp_path / "written.txt"
    assert _materialise_with(tokeniser, target).success
    assert target.read_text() == f"tok_{_kid(key)}_{_digest(SSN, key, 'ssn')}"


def test_locally_the_development_key_stays_the_default_and_short_keys_are_allowed(monkeypatch, tmp_path):
    from pipelines.environment import local_resources

    monkeypatch.setenv(PII_KEY_VAR, "placeholder")  # recorded, so the default local_resources() sets is removed afterwards
    monkeypatch.delenv(PII_KEY_VAR)
    tokeniser = local_resources()["tokeniser"]
    assert not tokeniser.production
    with dg.build_resources({"tokeniser": tokeniser}) as built:
        assert built.tokeniser.key == DEVELOPMENT_TOKEN_KEY and built.tokeniser.uses_development_key
    target = tmp_path / "written.txt"
    assert _materialise_with(tokeniser, target).success and target.read_text().startswith(f"tok_{_kid(DEVELOPMENT_TOKEN_KEY)}_")
    assert _materialise_with(PiiTokeniser(key="k1"), target).success and target.read_text().startswith(f"tok_{_kid('k1')}_")


def test_tokens_carry_the_id_of_their_key_and_stay_deterministic():
    made = token(SSN, NEW_KEY, "ssn")
    assert made == f"tok_{_kid(NEW_KEY)}_{_digest(SSN, NEW_KEY, 'ssn')}" and key_id(NEW_KEY) == _kid(NEW_KEY)
    assert made == token(SSN, NEW_KEY, "ssn") and re.fullmatch(r"tok_[0-9a-f]{8}_[0-9a-f]{32}", made)
    assert token_key_id(made) == _kid(NEW_KEY) != _kid(OLD_KEY) == token_key_id(token(SSN, OLD_KEY, "ssn"))
    assert token_key_id(f"tok_{_digest(SSN, NEW_KEY, 'ssn')}") == LEGACY_KEY_ID and token_key_id(SSN) is None
    assert NEW_KEY not in made and _kid(NEW_KEY) not in NEW_KEY
    values = pd.Series([SSN, None, SSN, "x" * 300])
    column = tokenise_column(values, NEW_KEY, "ssn")  # the fast path ingestion uses
    assert column[0] == column[2] == made and column[1] is pd.NA and column[3] == token("x" * 300, NEW_KEY, "ssn")
    assert tokenise(pd.DataFrame({"ssn": values}), ["ssn"], NEW_KEY)["ssn_token"].tolist() == column.tolist()
    # a token is one word: no PII pattern finds anything in it
    for text in (made, column[3], f"tok_{'1' * 8}_{'2' * 32}"):
        assert not any(re.search(pattern, text) for pattern in PII_PATTERNS.values()), text


def test_ingestion_writes_tokens_under_the_current_key_only():
    contract = load_contract(contract_path("loan_applications.yaml"))
    frame = applications_frame(generate_month(5, "2023-03", 40))
    data = frame.to_csv(index=False, date_format="%Y-%m-%d").encode()
    tokeniser = PiiTokeniser(key=NEW_KEY, previous_keys=OLD_KEY)
    result = ingest("2023-03.csv", data, contract, "2023-03", tokeniser.key)
    columns = [c for c in result.accepted.columns if c.endswith("_token")]
    assert len(columns) == len(contract.columns("pii")) and len(result.accepted) > 0
    for column in columns:
        assert count_key_ids(result.accepted[column]) == {_kid(NEW_KEY): int(result.accepted[column].notna().sum())}, column
    name = frame.loc[frame["application_id"] == result.accepted["application_id"].iloc[0], "full_name"].iloc[0]
    assert result.accepted["full_name_token"].iloc[0] == token(name, NEW_KEY, "full_name")


def test_old_and_new_tokens_of_one_value_match_through_the_previous_keys(monkeypatch):
    before = PiiTokeniser(key=OLD_KEY)
    stored_old = tokenise_column(pd.Series([SSN, "111-22-3333"]), before.key, "ssn")  # written before the rotation
    legacy = f"tok_{_digest(SSN, OLD_KEY, 'ssn')}"  # written before tokens had key ids

    after = _production_tokeniser(monkeypatch, NEW_KEY, previous=f" {OLD_KEY} ,,{NEW_KEY}")
    with dg.build_resources({"tokeniser": after}) as built:
        rotated = built.tokeniser
    assert rotated.previous() == [OLD_KEY] and rotated.key_ids() == [_kid(NEW_KEY), _kid(OLD_KEY)]
    assert rotated.key_id == _kid(NEW_KEY)  # new tokens: the current key only
    stored_new = token(SSN, rotated.key, "ssn")
    assert stored_new != stored_old[0]
    assert rotated.tokens_of(SSN, "ssn") == {_kid(NEW_KEY): stored_new, _kid(OLD_KEY): stored_old[0]}
    for stored in (stored_old[0], stored_new, legacy):
        assert rotated.matches(stored, SSN, "ssn"), stored
    assert not rotated.matches(stored_old[1], SSN, "ssn") and not rotated.matches(stored_old[0], SSN, "phone")
    assert not rotated.matches(f"tok_{_kid(NEW_KEY)}_{_digest(SSN, OLD_KEY, 'ssn')}", SSN, "ssn")  # the old digest under the new id
    # without the previous key, the old token of the same value no longer matches
    alone = PiiTokeniser(key=NEW_KEY)
    assert not alone.matches(stored_old[0], SSN, "ssn") and not alone.matches(legacy, SSN, "ssn") and alone.matches(stored_new, SSN, "ssn")
    # a join across the change: new clear values against tokens written under the old key
    by_key = rotated.tokens_of_column(pd.Series(["111-22-3333", "999-88-7777"]), "ssn")
    assert by_key[_kid(OLD_KEY)].isin(stored_old).tolist() == [True, False]
    assert not by_key[_kid(NEW_KEY)].isin(stored_old).any()


def test_stored_tokens_are_counted_by_key_id():
    values = pd.Series([token("a", NEW_KEY, "x"), token("b", NEW_KEY, "x"), token("a", OLD_KEY, "x"), f"tok_{'0' * 32}", "clear", None])
    counts = {_kid(NEW_KEY): 2, _kid(OLD_KEY): 1, LEGACY_KEY_ID: 1, NOT_A_TOKEN: 1}
    assert count_key_ids(values) == counts and count_key_ids(pa.array(values, from_pandas=True)) == counts
    assert count_key_ids(pd.Series([None], dtype=object)) == {}


def _write(path: Path, columns: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


def _rotate(tmp_path: Path, *args: str, key: str = NEW_KEY, previous: str = OLD_KEY) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_"))}
    env.update(
        RISK_ENV="production",
        RISK_LANDING_URL=str(tmp_path / "landing"),
        RISK_DATASETS_URL=str(tmp_path / "datasets"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",
        RISK_LEDGER_URL=f"sqlite:///{tmp_path}/ledger.db",
        RISK_PII_TOKEN_KEY=key,
        RISK_PII_TOKEN_KEY_PREVIOUS=previous,
        PYTHONPATH=str(ROOT),
    )
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    command = [sys.executable, "-W", "ignore", "-m", "pipelines.rotate_pii_key", *args]
    return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)


def _report_rows(stderr: str) -> dict[tuple[str, str, str], int]:
    rows = {}
    for line in stderr.splitlines():
        found = re.match(r"^  (retail_pd)\s+(\S+)\s+(\S+)\s+(\d+)\s+\S", line)
        if found:
            rows[found.group(1, 2, 3)] = int(found.group(4))
    return rows


def test_the_rotation_command_prints_a_new_key_once_and_counts_stored_tokens_by_key_id(tmp_path):
    datasets = tmp_path / "datasets" / "retail_pd"
    ssns = [f"900-12-{n:04d}" for n in range(5)]
    old, new = (tokenise_column(pd.Series(ssns), key, "ssn").tolist() for key in (OLD_KEY, NEW_KEY))
    _write(
        datasets / "applications" / "month=2024-01" / "part-0.parquet",
        {"application_id": [f"A{n}" for n in range(5)], "ssn_token": old[:3] + [f"tok_{'a' * 32}", None], "amount": [1.0] * 5},
    )
    _write(datasets / "applications" / "month=2024-02" / "part-0.parquet", {"ssn_token": new[3:], "email_token": new[3:]})
    unknown = token("x", "a-key-that-is-no-longer-known-to-anyone", "column_3")
    _write(datasets / "quarantined_applications" / "month=2024-02" / "part-0.parquet", {"column_3_token": [unknown]})
    _write(datasets / "application_features" / "month=2024-01" / "part-0.parquet", {"application_id": ["A0"], "income": [1.0]})

    first = _rotate(tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    (new_key,) = first.stdout.splitlines()  # the key, alone on stdout
    assert re.fullmatch(r"[0-9a-f]{64}", new_key)
    report = first.stderr
    assert f"new key id        {_kid(new_key)}" in report and new_key not in report
    assert f"current key id    {_kid(NEW_KEY)}" in report and f"previous key ids  {_kid(OLD_KEY)}" in report
    assert NEW_KEY not in first.stdout + report and OLD_KEY not in first.stdout + report
    assert _report_rows(report) == {
        ("retail_pd", "applications", _kid(OLD_KEY)): 3,
        ("retail_pd", "applications", _kid(NEW_KEY)): 4,
        ("retail_pd", "applications", LEGACY_KEY_ID): 1,
        ("retail_pd", "quarantined_applications", _kid("a-key-that-is-no-longer-known-to-anyone")): 1,
    }
    roles = {line.split()[2]: line for line in report.splitlines() if line.startswith("  retail_pd ")}
    assert roles[_kid(OLD_KEY)].endswith("previous") and roles[_kid(NEW_KEY)].endswith("current")
    assert "UNKNOWN KEY" in roles[token_key_id(unknown)]
    # written nowhere: not in the folder it ran from, nor beside the datasets
    assert not any(new_key.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())

    second = _rotate(tmp_path)
    assert second.returncode == 0 and second.stdout.strip() != new_key  # a fresh key every time

    report_only = _rotate(tmp_path, "--report")
    assert report_only.returncode == 0 and report_only.stdout == "" and "new key id" not in report_only.stderr
    assert _report_rows(report_only.stderr) == _report_rows(report)


def test_the_rotation_command_says_when_production_refuses_the_current_key(tmp_path):
    done = _rotate(tmp_path, "--report", key=DEVELOPMENT_TOKEN_KEY, previous="")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"current key id    {_kid(DEVELOPMENT_TOKEN_KEY)}" in done.stderr and "DEVELOPMENT DEFAULT" in done.stderr
    assert "REFUSED" in done.stderr and PII_KEY_VAR in done.stderr and DEVELOPMENT_TOKEN_KEY not in done.stderr
    assert "previous key ids  none" in done.stderr and "(no tokens stored)" in done.stderr
