import io

import pytest

from checks import contract_path
from resources.storage import parquet_bytes
from riskcore.contract import load_contract
from riskcore.features import build_features, feature_set_version, feature_specs
from riskcore.ingestion import ContractViolation, conform, ingest, read_landing_bytes
from riskcore.synthetic import applications_frame, generate_month

CONTRACT = load_contract(contract_path("loan_applications.yaml"))


@pytest.fixture(scope="module")
def month_frame():
    return applications_frame(generate_month(42, "2023-01", 500))


def _csv(frame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def test_roles_come_from_the_contract():
    assert CONTRACT.only("id") == "application_id"
    assert set(CONTRACT.columns("pii")) == {"full_name", "ssn", "email", "phone", "address", "date_of_birth"}
    assert CONTRACT.columns("sensitive") == ["applicant_sex"]
    names = [s.name for s in feature_specs(CONTRACT)]
    assert "applicant_sex" not in names and "ssn" not in names and "applicant_age_years" in names
    assert feature_set_version(CONTRACT).startswith("fs-")


def test_csv_and_parquet_conform_to_the_same_rows(month_frame):
    from_csv, _ = conform(read_landing_bytes("2023-01.csv", _csv(month_frame)), CONTRACT, "2023-01")
    from_parquet, _ = conform(read_landing_bytes("2023-01.parquet", parquet_bytes(month_frame)), CONTRACT, "2023-01")
    assert len(from_csv) == len(from_parquet) == 500
    assert from_csv["application_id"].tolist() == from_parquet["application_id"].tolist()
    assert (from_csv["applicant_age_years"] == from_parquet["applicant_age_years"]).all()


def test_row_rules_quarantine_with_every_reason_and_counts_reconcile(month_frame):
    bad = month_frame.copy()
    bad.loc[0, "annual_income"] = -5
    bad.loc[1, "employment_type"] = "astronaut"
    bad.loc[2, "loan_amount"] = None
    bad.loc[3, "application_id"] = bad.loc[4, "application_id"]
    bad.loc[5, "annual_income"] = -1
    bad.loc[5, "channel"] = "fax"
    accepted, quarantined = conform(read_landing_bytes("2023-01.parquet", parquet_bytes(bad)), CONTRACT, "2023-01")
    assert len(accepted) + len(quarantined) == len(bad)
    reasons = dict(zip(quarantined["source_row"], quarantined["quarantine_reasons"]))
    assert reasons[1] == "annual_income:minimum 0"
    assert reasons[2] == "employment_type:allowed values"
    assert reasons[3] == "loan_amount:required"
    assert reasons[4] == reasons[5] == "application_id:unique"
    assert reasons[6] == "annual_income:minimum 0;channel:allowed values"


def test_file_level_errors_name_file_column_and_rule(month_frame):
    with pytest.raises(ContractViolation, match=r"2023-01.csv: column 'ssn' breaks rule 'required column present'"):
        conform(read_landing_bytes("2023-01.csv", _csv(month_frame.drop(columns=["ssn"]))), CONTRACT)
    with pytest.raises(ContractViolation, match=r"column 'favourite_colour' breaks rule 'no undeclared columns'"):
        conform(read_landing_bytes("2023-01.csv", _csv(month_frame.assign(favourite_colour="red"))), CONTRACT)
    with pytest.raises(ContractViolation, match=r"empty.csv: file breaks rule 'non-empty file'"):
        read_landing_bytes("empty.csv", b"")
    with pytest.raises(ContractViolation, match=r"latin.csv: file breaks rule 'encoding utf-8'"):
        read_landing_bytes("latin.csv", "application_id\nJos\xe9\n".encode("latin-1"))


def test_ingest_tokenises_pii_and_features_carry_none(month_frame):
    result = ingest("2023-01.parquet", parquet_bytes(month_frame), CONTRACT, "2023-01", "test-key")
    assert result.received == len(result.accepted) + len(result.quarantined)
    text = result.accepted.astype(str)
    for column in CONTRACT.columns("pii"):
        assert column not in result.accepted.columns
        clear = set(month_frame[column].astype(str))
        assert not text.isin(clear).any().any(), f"clear {column} leaked"
    features = build_features(result.accepted, CONTRACT, "2023-01")
    assert not any(c.endswith("_token") for c in features.columns)
    assert "applicant_sex" not in features.columns
