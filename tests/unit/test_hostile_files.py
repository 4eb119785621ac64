"""Hostile landing files (issue 13): each ends accepted, quarantined with its reason, or as a
ContractViolation naming file, column and rule; received = accepted + quarantined; and none
leaves a clear PII value of the delivered frame in what ingestion keeps, as a value or as a
column name, nor in the error or the recorded header changes.
"""

import re

import pandas as pd
import pytest

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.ingestion import ingest
from riskcore.pii import token
from riskcore.synthetic import applications_frame, generate_month
from tests.hostile_corpus import cases, clear_pii

MONTH = "2023-03"
KEY = "hostile-corpus-key"
CONTRACT = load_contract(contract_path("loan_applications.yaml"))
BASE = applications_frame(generate_month(9, MONTH, 60))
LINEAGE = {"quarantine_reasons", "source_row", "source_file_sha256", "contract_version"}
KNOWN_COLUMNS = {f.name for f in CONTRACT.fields} | {d.name for d in CONTRACT.derived}
CASES = cases(BASE, CONTRACT)


def _csv(frame: pd.DataFrame, **options) -> str:
    return frame.to_csv(index=False, date_format="%Y-%m-%d", **options)


LINES = _csv(BASE).splitlines()  # no value of the base frame has a line break


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _header(rename) -> bytes:
    """The base file with its header line changed by `rename(field) -> field`."""
    return _text([",".join(rename(h) for h in LINES[0].split(","))] + LINES[1:])


def _with(column: str, values: dict[int, object]) -> pd.DataFrame:
    frame = BASE.astype({column: object})
    for row, value in values.items():
        frame.loc[row, column] = value
    return frame


def _kept_text(result) -> str:
    """Everything ingestion keeps or reports, as one text: column names, values, header changes, the error."""
    parts = [str(result.violation or ""), *map(str, result.header_changes.items())]
    for frame in (result.accepted, result.quarantined):
        parts += [str(c) for c in frame.columns]
        parts += frame.astype(str).to_numpy().ravel().tolist()
    return "\x1f".join(parts)


def test_the_corpus_is_large_enough_and_names_are_unique():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_hostile_file_ends_as_designed_and_leaves_no_clear_pii(case):
    name = f"{MONTH}.{case.suffix}"
    result = ingest(name, case.data, CONTRACT, MONTH, KEY)

    assert result.received == len(result.accepted) + len(result.quarantined) == case.received
    if case.violation:
        violation = result.violation
        assert (violation.file, violation.column, violation.rule) == (name, *case.violation), str(violation)
        assert result.accepted.empty
        assert set(result.quarantined["quarantine_reasons"]) <= {f"{case.violation[0] or 'file'}:{case.violation[1]}"}
        if case.received:  # an unreadable file keeps no rows at all
            values = [c for c in result.quarantined.columns if c not in LINEAGE]
            assert all(c.endswith("_token") for c in values), values  # no clear value of any column, declared or not
    else:
        assert result.violation is None, str(result.violation)
        assert len(result.accepted) == case.accepted and result.quarantine_reasons() == case.reasons
    assert case.changes.items() <= result.header_changes.items()

    for frame in (result.accepted, result.quarantined):  # column names come from the contract or a position, never from data
        for column in frame.columns:
            assert column in LINEAGE | KNOWN_COLUMNS or column.removesuffix("_token") in KNOWN_COLUMNS or re.fullmatch(r"column_\d+_token", column), column
    kept = _kept_text(result)
    leaked = sorted(v for v in clear_pii(case, CONTRACT) if v in kept)
    assert not leaked, f"{len(leaked)} clear PII values kept, e.g. {leaked[0]!r}"


def test_a_header_that_is_data_is_the_first_quarantined_row_by_position():
    result = ingest(f"{MONTH}.csv", _text(LINES[1:]), CONTRACT, MONTH, KEY)
    first = result.quarantined.iloc[0]
    assert first["source_row"] == 1 and first["column_1_token"] == token(BASE["application_id"][0], KEY, "column_1")
    assert result.header_changes["column_3"] == token(BASE["full_name"][0], KEY, "header")  # the delivered header, by token only


def test_a_repeated_header_quarantines_both_columns_by_position_and_keeps_the_rest_joinable():
    result = ingest(f"{MONTH}.csv", _header(lambda h: "SSN" if h == "email" else h), CONTRACT, MONTH, KEY)
    columns = set(result.quarantined.columns)
    assert {"column_4_token", "column_5_token"} <= columns and not {"ssn_token", "email_token"} & columns
    assert result.header_changes["column_4"] == token("ssn", KEY, "header") and result.header_changes["column_5"] == token("SSN", KEY, "header")
    assert result.quarantined["full_name_token"].tolist() == [token(v, KEY, "full_name") for v in BASE["full_name"]]


def test_a_quoted_line_break_stays_inside_its_value():
    result = ingest(f"{MONTH}.csv", _csv(_with("employer_name", {0: "Acme\nHoldings"})).encode(), CONTRACT, MONTH, KEY)
    assert result.checked.loc[0, "employer_name"] == "Acme\nHoldings" and result.checked.loc[1, "application_id"] == BASE["application_id"][1]


def test_a_delimited_file_reads_the_same_values_as_a_comma_one():
    comma = ingest(f"{MONTH}.csv", _text(LINES), CONTRACT, MONTH, KEY).checked
    for delimiter in (";", "\t"):
        pd.testing.assert_frame_equal(ingest(f"{MONTH}.csv", _csv(BASE, sep=delimiter).encode(), CONTRACT, MONTH, KEY).checked, comma)


@pytest.mark.parametrize(
    "name, where",
    [
        ("latin-1", "(line 2, column 'full_name') is not UTF-8"),  # the first byte that is not: its line, its column by the header's name
        ("NUL byte in a value", "(line 6, column 'application_date') is NUL"),
        ("utf-16 with byte order mark", "UTF-16 text (its byte order mark says so)"),
        ("utf-16 without byte order mark", "UTF-16 text without a byte order mark"),
        ("an extra field on one row", "row 5 has 25 fields, the first row 24"),
        ("a field missing on one row", "row 5 has 23 fields, the first row 24"),
        ("parquet text as bytes, not UTF-8", "column 3 ('full_name') holds bytes that are not UTF-8"),
    ],
)
def test_a_file_level_error_says_where_in_the_file(name, where):
    case = next(c for c in CASES if c.name == name)
    violation = ingest(f"{MONTH}.{case.suffix}", case.data, CONTRACT, MONTH, KEY).violation
    assert where in str(violation), str(violation)


def test_a_header_line_that_is_data_is_never_quoted_in_an_encoding_error():
    data = _text(LINES[1:]).replace(BASE["full_name"][3].encode(), "José".encode("latin-1"))
    violation = ingest(f"{MONTH}.csv", data, CONTRACT, MONTH, KEY).violation
    assert "(line 4, column 'column_3') is not UTF-8" in str(violation), str(violation)
