"""Hostile landing files (issue 13): each ends accepted, quarantined with its reason, or as a
ContractViolation naming file, column and rule; received = accepted + quarantined; and none
leaves a clear PII value of the delivered frame in what ingestion keeps, as a value or as a
column name, nor in the error or the recorded header changes.
"""

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from checks import contract_path
from resources.storage import parquet_bytes
from riskcore.contract import load_contract
from riskcore.ingestion import ingest
from riskcore.pii import token
from riskcore.synthetic import applications_frame, generate_month

MONTH = "2023-03"
KEY = "hostile-corpus-key"
CONTRACT = load_contract(contract_path("loan_applications.yaml"))
BASE = applications_frame(generate_month(9, MONTH, 60))
ROWS = len(BASE)
SCRIPT, IMG = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
TEXT_COLUMNS = [f.name for f in CONTRACT.fields if f.type == "string"]
LINEAGE = {"quarantine_reasons", "source_row", "source_file_sha256", "contract_version"}
KNOWN_COLUMNS = {f.name for f in CONTRACT.fields} | {d.name for d in CONTRACT.derived}


def _csv(frame: pd.DataFrame, **options) -> str:
    return frame.to_csv(index=False, date_format="%Y-%m-%d", **options)


LINES = _csv(BASE).splitlines()  # no value of the base frame has a line break


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _header(rename) -> bytes:
    """The base file with its header line changed by `rename(field) -> field`."""
    return _text([",".join(rename(h) for h in LINES[0].split(","))] + LINES[1:])


def _with(column: str, values: dict[int, object], frame: pd.DataFrame = BASE) -> pd.DataFrame:
    """`frame` (the base one by default) with these rows of a column set to these values, as delivered text would be."""
    frame = frame.astype({column: object})
    for row, value in values.items():
        frame.loc[row, column] = value
    return frame


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _email_as(local_sep: str, at: str, dot: str, email: str) -> str:
    local, domain = email.split("@")
    return local.replace(".", local_sep) + at + domain.replace(".", dot)


def _free_text_pii() -> dict[int, str]:
    """Each applicant's own SSN, phone or e-mail in the free-text column, in the spellings that dodge simple patterns."""
    ssn, phone, email = BASE["ssn"], BASE["phone"], BASE["email"]
    return {
        0: f"SSN {_digits(ssn[0])}",
        1: " ".join(ssn[1].split("-")),
        2: f"ACME, ask for {ssn[2]}",
        3: "+1 {} {} {}".format(_digits(phone[3])[:3], _digits(phone[3])[3:6], _digits(phone[3])[6:]),
        4: f"call {_digits(phone[4])}",
        5: f"ring {phone[5]}",
        6: _email_as(" dot ", " at ", " dot ", email[6]),
        7: _email_as(".", "[at]", "[dot]", email[7]),
        8: _email_as(".", " (at) ", ".", email[8]),
    }


def _payloads() -> pd.DataFrame:
    frame = BASE.copy()
    for column in TEXT_COLUMNS:
        frame[column] = frame[column].astype(object)
        frame.loc[0, column], frame.loc[1, column] = SCRIPT, IMG
    return frame


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    suffix: str = "csv"
    accepted: int = 0  # rows accepted when the file conforms
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined rows per rule when it conforms
    violation: tuple[str | None, str] | None = None  # (column, rule) when it does not
    received: int = ROWS
    changes: dict[str, str] = field(default_factory=dict)  # expected among header_changes
    planted: tuple[str, ...] = ()  # clear PII put in free text: must not survive either


FREE_TEXT_PII = _free_text_pii()
UPPER_PARQUET = BASE.rename(columns=str.upper)
INFINITE_PARQUET = BASE.assign(credit_utilisation=BASE["credit_utilisation"].where(BASE.index != 0, np.inf))
LATIN = _with("full_name", {0: "José Núñez"})

CASES = [
    Case("clean csv", _text(LINES), accepted=ROWS),
    Case("clean parquet", parquet_bytes(BASE), suffix="parquet", accepted=ROWS),
    Case("header upper case", _header(str.upper), accepted=ROWS, changes={"SSN": "ssn", "FULL_NAME": "full_name"}),
    Case("header padded", _header(lambda h: f" {h} " if h == "ssn" else h), accepted=ROWS, changes={" ssn ": "ssn"}),
    Case(
        "header in words",
        _header(lambda h: {"full_name": "Full Name", "date_of_birth": "Date-Of-Birth"}.get(h, h)),
        accepted=ROWS,
        changes={"Full Name": "full_name", "Date-Of-Birth": "date_of_birth"},
    ),
    Case("parquet columns upper case", parquet_bytes(UPPER_PARQUET), suffix="parquet", accepted=ROWS, changes={"SSN": "ssn"}),
    Case("duplicate header instead of a column", _header(lambda h: "ssn" if h == "email" else h), violation=("ssn", "unique column names")),
    Case("duplicate header, case apart", _csv(BASE.assign(SSN=BASE["ssn"])).encode(), violation=("ssn", "unique column names")),
    Case("no header row", _text(LINES[1:]), violation=(None, "header row present"), received=ROWS),  # the first applicant is row 1
    Case("no header, payloads first", _text(_csv(_payloads()).splitlines()[1:]), violation=(None, "header row present"), received=ROWS),
    Case(
        "applicant name as a column name", _csv(BASE.assign(**{BASE["full_name"][0]: BASE["ssn"]})).encode(), violation=("column_25", "no undeclared columns")
    ),
    Case("script payload as a column name", _header(lambda h: SCRIPT if h == "employer_name" else h), violation=("employer_name", "required column present")),
    Case("semicolon delimited", _csv(BASE, sep=";").encode(), accepted=ROWS, changes={"delimiter": "';'"}),
    Case("tab delimited", _csv(BASE, sep="\t").encode(), accepted=ROWS, changes={"delimiter": "'\\t'"}),
    Case(
        "trailing comma on every line",
        _text([line + "," for line in LINES]),
        accepted=ROWS,
        changes={"column_25": "dropped: no name, no values (trailing delimiter)"},
    ),
    Case("trailing comma on the rows only", _text(LINES[:1] + [line + "," for line in LINES[1:]]), accepted=ROWS),
    Case("an extra field on one row", _text(LINES[:5] + [LINES[5] + ",an extra field"] + LINES[6:]), violation=(None, "well-formed CSV"), received=0),
    Case("byte order mark", b"\xef\xbb\xbf" + _text(LINES), accepted=ROWS, changes={"byte order mark": "removed"}),
    Case("CRLF line endings", _csv(BASE, lineterminator="\r\n").encode(), accepted=ROWS),
    Case("CR line endings", _csv(BASE, lineterminator="\r").encode(), accepted=ROWS),
    Case("quoted newlines in free text", _csv(_with("employer_name", {0: "Acme\nHoldings", 1: "Beta\r\nCorp"})).encode(), accepted=ROWS),
    Case("latin-1", _csv(LATIN).encode("latin-1"), violation=(None, "encoding utf-8"), received=0, planted=("José Núñez",)),
    Case("utf-16 with byte order mark", _csv(BASE).encode("utf-16"), violation=(None, "encoding utf-8"), received=0),
    Case("utf-16 without byte order mark", _csv(BASE).encode("utf-16-le"), violation=(None, "encoding utf-8"), received=0),
    Case("truncated parquet", parquet_bytes(BASE)[:-200], suffix="parquet", violation=(None, "readable parquet"), received=0),
    Case("thousands separators", _csv(_with("loan_amount", {0: "12,500", 1: "1,200.50"})).encode(), accepted=ROWS - 2, reasons={"loan_amount:type number": 2}),
    Case("missing markers", _csv(_with("employer_name", {2: "N/A"}, _with("employment_years", {0: "N/A", 1: "-"}))).encode(), accepted=ROWS),
    Case(
        "missing marker in a required column",
        _csv(_with("annual_income", {0: "-", 1: "N/A"})).encode(),
        accepted=ROWS - 2,
        reasons={"annual_income:required": 2},
    ),
    Case(
        "infinite numbers",
        _csv(_with("num_open_accounts", {3: "1e309"}, _with("annual_income", {0: "inf", 1: "-inf", 2: "1e309"}))).encode(),
        accepted=ROWS - 4,
        reasons={"annual_income:finite": 3, "num_open_accounts:finite": 1},
    ),
    Case("infinity in parquet", parquet_bytes(INFINITE_PARQUET), suffix="parquet", accepted=ROWS - 1, reasons={"credit_utilisation:finite": 1}),
    Case("integer beyond 64 bits", _csv(_with("num_open_accounts", {0: "1e300"})).encode(), accepted=ROWS - 1, reasons={"num_open_accounts:type integer": 1}),
    Case(
        "pii in free text",
        _csv(_with("employer_name", FREE_TEXT_PII)).encode(),
        accepted=ROWS - 9,
        reasons={"employer_name:no ssn in free text": 3, "employer_name:no phone in free text": 3, "employer_name:no email in free text": 3},
        planted=tuple(FREE_TEXT_PII.values()),
    ),
    Case("amounts and years in free text", _csv(_with("employer_name", {0: "12500", 1: "Est. 2023", 2: "loan of 12500 in 2023"})).encode(), accepted=ROWS),
    Case(
        "script payloads in every text field",
        _csv(_payloads()).encode(),
        accepted=ROWS - 2,
        reasons={
            f"{c}:{rule}": 2
            for c, rule in [("ssn", "pattern")] + [(f.name, "allowed values") for f in CONTRACT.fields if f.type == "string" and f.allowed_values]
        },
    ),
    Case("empty file", b"", violation=(None, "non-empty file"), received=0),
    Case("header only", _text(LINES[:1]), accepted=0, received=0),
]


def _clear_pii(planted: tuple[str, ...]) -> set[str]:
    """Every clear PII value of the delivered frame (dates as delivered), and what a case planted."""
    values = set(planted)
    for column in CONTRACT.columns("pii"):
        series = BASE[column].dropna()
        values |= set(series.dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(series) else series.astype(str))
    return values


def _kept_text(result) -> str:
    """Everything ingestion keeps or reports, as one text: column names, values, header changes, the error."""
    parts = [str(result.violation or ""), *map(str, result.header_changes.items())]
    for frame in (result.accepted, result.quarantined):
        parts += [str(c) for c in frame.columns]
        parts += frame.astype(str).to_numpy().ravel().tolist()
    return "\x1f".join(parts)


def test_the_corpus_is_large_enough_and_names_are_unique():
    assert len(CASES) >= 25 and len({c.name for c in CASES}) == len(CASES)


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
    leaked = sorted(v for v in _clear_pii(case.planted) if v in kept)
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
