import io

import numpy as np
import pandas as pd
import pytest
import yaml

from checks import contract_path
from resources.storage import parquet_bytes
from riskcore.contract import load_contract
from riskcore.features import build_features, feature_set_version, feature_specs
from riskcore.ingestion import ContractViolation, conform, delivered_rows, ingest, mark_missing, read_landing_bytes, received_rows
from riskcore.pii import token
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


def test_a_parquet_footer_counts_the_rows_a_parse_counts(month_frame):
    """The report counts a landing file's rows from its Parquet footer: as many as parsing it gives,
    an unnamed pandas index dropped (not a column), a file naming no contract column one row more."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def stored(frame, index):
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=index), buffer)
        return buffer.getvalue()

    files = {
        "plain": parquet_bytes(month_frame),
        "unnamed index": stored(month_frame.set_axis(np.arange(len(month_frame)) * 2), True),
        "named index": stored(month_frame.set_index("application_id"), True),
        "no contract column": stored(pd.DataFrame({"x": [1, 2], "y": [3, 4]}), False),
    }
    counts = {what: delivered_rows("2023-01.parquet", data, CONTRACT) for what, data in files.items()}
    assert counts == {what: received_rows(read_landing_bytes("2023-01.parquet", data), CONTRACT) for what, data in files.items()}
    assert counts == {"plain": 500, "unnamed index": 500, "named index": 500, "no contract column": 3}
    assert delivered_rows("2023-01.csv", _csv(month_frame), CONTRACT) == 500
    for broken in (b"", parquet_bytes(month_frame)[:-200]):
        with pytest.raises(ContractViolation):
            delivered_rows("2023-01.parquet", broken, CONTRACT)


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


# --- missing-value markers -----------------------------------------------------------------------


def _contract_with(tmp_path, mutate, name="loan_applications.yaml"):
    """A copy of a shipped contract, changed by `mutate(doc, column_entry_by_name)`."""
    doc = yaml.safe_load(contract_path(name).read_text())
    mutate(doc, {entry["name"]: entry for entry in doc["schema"]})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_contract(path)


def _sentinels(doc, columns):
    columns["employment_years"]["missingValues"] = [96, 98]  # number: 96.0 in Parquet and CSV
    columns["delinquencies_2y"]["missingValues"] = [96, 98]  # integer: 96 in Parquet and CSV
    columns["delinquencies_2y"]["required"] = False


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_numeric_sentinels_become_null_and_are_counted(tmp_path, month_frame, suffix):
    contract = _contract_with(tmp_path, _sentinels)
    frame = month_frame.copy()
    frame.loc[[0, 1, 2], "employment_years"] = [96.0, 98.0, 97.0]  # 97 is no marker: out of range
    frame.loc[[3, 4], "delinquencies_2y"] = [96, 98]
    data = _csv(frame) if suffix == "csv" else parquet_bytes(frame)
    result = ingest(f"2023-01.{suffix}", data, contract, "2023-01", "test-key")

    assert result.received == len(result.accepted) + len(result.quarantined) == len(frame)
    assert result.quarantined["quarantine_reasons"].tolist() == ["employment_years:maximum 60"]
    assert result.checked.loc[[0, 1], "employment_years"].isna().all()
    assert result.checked.loc[[3, 4], "delinquencies_2y"].isna().all()
    empty_cells = {"": int(month_frame["employment_years"].isna().sum())} if suffix == "csv" else {}  # a CSV's empty cell is the "" token
    assert result.missing_markers["employment_years"] == {**empty_cells, "96": 1, "98": 1}
    assert result.missing_markers["delinquencies_2y"] == {"96": 1, "98": 1}


def test_sentinels_match_however_the_value_is_spelled(tmp_path):
    contract = _contract_with(tmp_path, lambda doc, columns: columns["delinquencies_2y"].update(missingValues=[96, 98.0]))
    spellings = {
        "csv text": pd.Series(["96", "96.0", "98", " 98", "5", "N/A"], dtype="string[pyarrow]"),
        "object": pd.Series(["96", 96, 98.0, "98.00", "5", None], dtype="object"),
        "int64": pd.Series([96, 96, 98, 98, 5, 7], dtype="int64"),
        "float64": pd.Series([96.0, 96.0, 98.0, 98.0, 5.0, np.nan], dtype="float64"),
        "Int64": pd.Series([96, 96, 98, 98, 5, None], dtype="Int64"),
    }
    for spelling, values in spellings.items():
        marked, counts = mark_missing(pd.DataFrame({"delinquencies_2y": values}), contract)
        assert marked["delinquencies_2y"].isna().tolist()[:5] == [True, True, True, True, False], spelling
        assert counts["delinquencies_2y"]["96"] == 2 and counts["delinquencies_2y"]["98.0"] == 2, spelling


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_text_tokens_become_null_before_types_and_rules(month_frame, suffix):
    frame = month_frame.copy()
    frame.loc[1, "applicant_sex"] = "N/A"  # allowed values: missing, not an unknown category
    frame.loc[2, "employer_name"] = ""
    frame.loc[4, "employment_type"] = "null"  # required: quarantined as missing
    expected = {5: "employment_type:required"}
    if suffix == "csv":  # only text can carry a token in a numeric column
        frame = frame.astype({"employment_years": "object", "annual_income": "object"})
        frame.loc[0, "employment_years"] = "-"  # missing, not a type error
        frame.loc[3, "annual_income"] = "-"  # required: quarantined as missing, not as a wrong type
        expected[4] = "annual_income:required"
    data = _csv(frame) if suffix == "csv" else parquet_bytes(frame)
    result = ingest(f"2023-01.{suffix}", data, CONTRACT, "2023-01", "test-key")

    assert dict(zip(result.quarantined["source_row"], result.quarantined["quarantine_reasons"])) == expected
    checked, markers = result.checked, result.missing_markers
    assert pd.isna(checked.loc[1, "applicant_sex"]) and pd.isna(checked.loc[2, "employer_name"]) and pd.isna(checked.loc[4, "employment_type"])
    assert markers["applicant_sex"]["N/A"] == 1 and markers["employment_type"] == {"null": 1}
    assert markers["employer_name"][""] == 1 + (int(month_frame["employer_name"].isna().sum()) if suffix == "csv" else 0)
    if suffix == "csv":
        assert pd.isna(checked.loc[0, "employment_years"]) and pd.isna(checked.loc[3, "annual_income"])
        assert markers["employment_years"]["-"] == 1 and markers["annual_income"] == {"-": 1}


def test_dash_is_missing_even_when_the_contract_declares_no_tokens(tmp_path, month_frame):
    contract = _contract_with(tmp_path, lambda doc, columns: doc.pop("missingValues"))
    frame = month_frame.astype({"employment_years": "object"})
    frame.loc[0, "employment_years"] = "-"
    result = ingest("2023-01.csv", _csv(frame), contract, "2023-01", "test-key")
    assert result.quarantined.empty and result.missing_markers["employment_years"]["-"] == 1


def test_a_file_level_violation_quarantines_tokens_only_and_still_blanks_markers(month_frame):
    """No clear value of any column: each is its keyed token (the same as an accepted row's), a marker stays missing."""
    frame = month_frame.drop(columns=["ssn"]).astype({"employment_years": "object"})
    frame.loc[0, "employment_years"] = "N/A"
    result = ingest("2023-01.csv", _csv(frame), CONTRACT, "2023-01", "test-key")
    assert result.violation is not None and len(result.quarantined) == len(frame)
    assert set(result.quarantined.columns) == {f"{c}_token" for c in frame.columns} | {
        "quarantine_reasons",
        "source_row",
        "source_file_sha256",
        "contract_version",
    }
    assert pd.isna(result.quarantined.loc[0, "employment_years_token"]) and result.missing_markers["employment_years"]["N/A"] == 1
    assert result.quarantined.loc[1, "full_name_token"] == token(frame.loc[1, "full_name"], "test-key", "full_name")
    assert (result.quarantined["quarantine_reasons"] == "ssn:required column present").all()
