"""The hostile landing-file corpus (issue 13), built on any base frame of the applications
contract: the unit test runs it through `ingest`, the integration test through real Dagster runs.

Each case is the bytes of one landing file and what must become of it: accepted rows, quarantined
rows per rule, or a ContractViolation's (column, rule); the frame it was written from and what it
planted give the clear PII values, as the file spells them, that nothing may keep.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from resources.storage import parquet_bytes
from riskcore.contract import Contract

SCRIPT, IMG = "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"
PAYLOADS = (SCRIPT, IMG)
# The free-text forms the issue found accepted in clear, spelt exactly as it wrote them.
ISSUE_FREE_TEXT_PII = ("SSN 900123456", "900 12 3456", "+1 212 555 0199", "call 2125550199", "jane dot doe at example dot com")
# The PII inside each of them (what must not be kept, with or without the words around it).
ISSUE_PII_CORES = ("900123456", "900 12 3456", "+1 212 555 0199", "2125550199", "jane dot doe at example dot com")


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    suffix: str = "csv"
    accepted: int = 0  # rows accepted when the file conforms
    reasons: dict[str, int] = field(default_factory=dict)  # quarantined rows per rule when it conforms
    violation: tuple[str | None, str] | None = None  # (column, rule) when it does not
    received: int = 0
    changes: dict[str, str] = field(default_factory=dict)  # expected among header_changes
    planted: tuple[str, ...] = ()  # clear PII put in free text (as spelt there): must not survive either
    frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # what the file was written from
    encoding: str = "utf-8"  # how the file spells its text
    blocks: str | None = None  # the dataset rule (`column:rule`) a pipeline run blocks the month on, when rows conform
    pipeline: bool = True  # also run through a real pipeline run (the integration corpus); False: a reading detail, unit only


def _csv(frame: pd.DataFrame, **options) -> str:
    return frame.to_csv(index=False, date_format="%Y-%m-%d", **options)


def parquet_bytes_of(table: pa.Table) -> bytes:
    """A Parquet file of an Arrow table as it is (repeated or odd column names, pandas metadata and all)."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _with(frame: pd.DataFrame, column: str, values: dict[int, object]) -> pd.DataFrame:
    """`frame` with these rows of a column set to these values, as delivered text would be."""
    frame = frame.astype({column: object})
    for row, value in values.items():
        frame.loc[row, column] = value
    return frame


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _email_as(local_sep: str, at: str, dot: str, email: str) -> str:
    local, domain = email.split("@")
    return local.replace(".", local_sep) + at + domain.replace(".", dot)


def free_text_pii(base: pd.DataFrame) -> tuple[dict[int, str], tuple[str, ...]]:
    """Each applicant's own SSN, phone or e-mail in the free-text column, in the spellings that
    dodge simple patterns; and the PII inside each (as spelt there)."""
    ssn, phone, email = base["ssn"], base["phone"], base["email"]
    p3, p4 = _digits(phone[3]), _digits(phone[4])
    cores = {
        0: _digits(ssn[0]),
        1: " ".join(ssn[1].split("-")),
        2: ssn[2],
        3: f"+1 {p3[:3]} {p3[3:6]} {p3[6:]}",
        4: p4,
        5: phone[5],
        6: _email_as(" dot ", " at ", " dot ", email[6]),
        7: _email_as(".", "[at]", "[dot]", email[7]),
        8: _email_as(".", " (at) ", ".", email[8]),
    }
    texts = {0: f"SSN {cores[0]}", 2: f"ACME, ask for {cores[2]}", 4: f"call {cores[4]}", 5: f"ring {cores[5]}"}
    return {row: texts.get(row, core) for row, core in cores.items()}, tuple(cores.values())


def payloads(base: pd.DataFrame, text_columns: list[str]) -> pd.DataFrame:
    """The script payload in row 0 and the onerror one in row 1 of every text column."""
    frame = base.copy()
    for column in text_columns:
        frame[column] = frame[column].astype(object)
        frame.loc[0, column], frame.loc[1, column] = SCRIPT, IMG
    return frame


def cases(base: pd.DataFrame, contract: Contract) -> list[Case]:
    """The corpus on `base` (at least 10 rows, one month of the applications contract)."""
    rows = len(base)
    lines = _csv(base).splitlines()  # no value of a synthetic frame has a line break
    text_columns = [f.name for f in contract.fields if f.type == "string"]

    def header(rename) -> bytes:
        """The base file with its header line changed by `rename(field) -> field`."""
        return _text([",".join(rename(h) for h in lines[0].split(","))] + lines[1:])

    def case(name: str, data: bytes, frame: pd.DataFrame = base, received: int = rows, **expected) -> Case:
        return Case(name, data, frame=frame, received=received, **expected)

    free_text, free_text_cores = free_text_pii(base)
    with_free_text = _with(base, "employer_name", free_text)
    issue_text = dict(enumerate(ISSUE_FREE_TEXT_PII))
    with_issue_text = _with(base, "employer_name", issue_text)
    with_payloads = payloads(base, text_columns)
    upper_parquet = base.rename(columns=str.upper)
    infinite_parquet = base.assign(credit_utilisation=base["credit_utilisation"].where(base.index != 0, np.inf))
    latin = _with(base, "full_name", {0: "José Núñez"})
    thousands = _with(base, "loan_amount", {0: "12,500", 1: "1,200.50"})
    markers = _with(_with(base, "employment_years", {0: "N/A", 1: "-"}), "employer_name", {2: "N/A"})
    required_markers = _with(base, "annual_income", {0: "-", 1: "N/A"})
    infinite = _with(_with(base, "annual_income", {0: "inf", 1: "-inf", 2: "1e309"}), "num_open_accounts", {3: "1e309"})
    newlines = _with(base, "employer_name", {0: "Acme\nHoldings", 1: "Beta\r\nCorp"})
    pii_with_newline = _with(base, "address", {0: base["address"][0].replace(", ", "\n", 1)})
    duplicate_payload_id = _with(base, "application_id", {0: SCRIPT, 1: SCRIPT, 2: IMG, 3: IMG})
    name_column = base.assign(**{base["full_name"][0]: base["ssn"]})
    table = pa.Table.from_pandas(base, preserve_index=False)
    repeated_parquet = table.append_column("ssn", table.column("ssn"))
    payload_parquet = table.append_column(SCRIPT, table.column("ssn"))
    indexed_parquet = pa.Table.from_pandas(base.set_axis(pd.Index(np.arange(rows)[::-1].copy())))  # an index that is no range: stored as a column
    name_position = list(base.columns).index("full_name")
    bytes_parquet = table.set_column(name_position, "full_name", pa.array([v.encode("latin-1") for v in latin["full_name"]], pa.binary()))
    free_text_position = list(base.columns).index("employer_name")
    income = list(base.columns).index("annual_income")
    allowed = [f.name for f in contract.fields if f.type == "string" and f.allowed_values]

    def row_line(fields: list[str]) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        return out.getvalue()

    def field_edit(row: int, edit) -> bytes:
        """The base file with one row's fields changed by `edit(fields) -> fields` (row 1 is the first after the header)."""
        return _text(lines[:row] + [row_line(edit(next(csv.reader([lines[row]]))))] + lines[row + 1 :])

    def unbalanced_quote(row: int, position: int) -> bytes:
        """The base file with a quote opened before one field of a row and never closed."""
        fields = next(csv.reader([lines[row]]))
        line = ",".join(filter(None, [row_line(fields[:position]), '"' + fields[position], row_line(fields[position + 1 :])]))
        return _text(lines[:row] + [line] + lines[row + 1 :])

    return [
        case("clean csv", _text(lines), accepted=rows),
        case("clean parquet", parquet_bytes(base), suffix="parquet", accepted=rows),
        case("header upper case", header(str.upper), accepted=rows, changes={"SSN": "ssn", "FULL_NAME": "full_name"}),
        case("header padded", header(lambda h: f" {h} " if h == "ssn" else h), accepted=rows, changes={" ssn ": "ssn"}),
        case(
            "header in words",
            header(lambda h: {"full_name": "Full Name", "date_of_birth": "Date-Of-Birth"}.get(h, h)),
            accepted=rows,
            changes={"Full Name": "full_name", "Date-Of-Birth": "date_of_birth"},
            pipeline=False,
        ),
        case("parquet columns upper case", parquet_bytes(upper_parquet), suffix="parquet", accepted=rows, changes={"SSN": "ssn"}, pipeline=False),
        case("duplicate header instead of a column", header(lambda h: "ssn" if h == "email" else h), violation=("ssn", "unique column names")),
        case("duplicate header, case apart", _csv(base.assign(SSN=base["ssn"])).encode(), violation=("ssn", "unique column names"), pipeline=False),
        case("no header row", _text(lines[1:]), violation=(None, "header row present")),  # the first applicant is row 1
        case("no header, payloads first", _text(_csv(with_payloads).splitlines()[1:]), frame=with_payloads, violation=(None, "header row present")),
        case(
            "applicant name as a column name",
            _csv(name_column).encode(),
            frame=name_column,
            violation=(f"column_{len(base.columns) + 1}", "no undeclared columns"),
        ),
        case(
            "script payload as a column name", header(lambda h: SCRIPT if h == "employer_name" else h), violation=("employer_name", "required column present")
        ),
        case("semicolon delimited", _csv(base, sep=";").encode(), accepted=rows, changes={"delimiter": "';'"}),
        case("tab delimited", _csv(base, sep="\t").encode(), accepted=rows, changes={"delimiter": "'\\t'"}, pipeline=False),
        case(
            "trailing comma on every line",
            _text([line + "," for line in lines]),
            accepted=rows,
            changes={f"column_{len(base.columns) + 1}": "dropped: no name, no values (trailing delimiter)"},
        ),
        case("trailing comma on the rows only", _text(lines[:1] + [line + "," for line in lines[1:]]), accepted=rows, pipeline=False),
        case("an extra field on one row", _text(lines[:5] + [lines[5] + ",an extra field"] + lines[6:]), violation=(None, "well-formed CSV"), received=0),
        case("a field missing on one row", field_edit(5, lambda f: f[:income] + f[income + 1 :]), violation=(None, "well-formed CSV"), received=0),
        case("unbalanced quote in free text", unbalanced_quote(5, free_text_position), violation=(None, "well-formed CSV"), received=0),
        case("NUL byte in a value", _text(lines[:5] + [lines[5].replace(",", ",\x00", 1)] + lines[6:]), violation=(None, "encoding utf-8"), received=0),
        case("byte order mark", b"\xef\xbb\xbf" + _text(lines), accepted=rows, changes={"byte order mark": "removed"}),
        case("CRLF line endings", _csv(base, lineterminator="\r\n").encode(), accepted=rows),
        case("CR line endings", _csv(base, lineterminator="\r").encode(), accepted=rows, pipeline=False),
        case("quoted newlines in free text", _csv(newlines).encode(), frame=newlines, accepted=rows),
        case("quoted newline in an address", _csv(pii_with_newline).encode(), frame=pii_with_newline, accepted=rows),
        case("latin-1", _csv(latin).encode("latin-1"), frame=latin, encoding="latin-1", violation=(None, "encoding utf-8"), received=0),
        case("utf-16 with byte order mark", _csv(base).encode("utf-16"), encoding="utf-16-le", violation=(None, "encoding utf-8"), received=0),
        case(
            "utf-16 without byte order mark",
            _csv(base).encode("utf-16-le"),
            encoding="utf-16-le",
            violation=(None, "encoding utf-8"),
            received=0,
            pipeline=False,
        ),
        case("parquet with a repeated column", parquet_bytes_of(repeated_parquet), suffix="parquet", violation=("ssn", "unique column names")),
        case(
            "payload as a parquet column name",
            parquet_bytes_of(payload_parquet),
            suffix="parquet",
            violation=(f"column_{len(base.columns) + 1}", "no undeclared columns"),
            pipeline=False,
        ),
        case(
            "parquet with a pandas index",
            parquet_bytes_of(indexed_parquet),
            suffix="parquet",
            accepted=rows,
            changes={f"column_{len(base.columns) + 1}": "dropped: an unnamed pandas index, not a column"},
            pipeline=False,
        ),
        case(
            "parquet text as bytes, not UTF-8",
            parquet_bytes_of(bytes_parquet),
            suffix="parquet",
            frame=latin,
            encoding="latin-1",
            violation=(None, "encoding utf-8"),
            received=0,
            pipeline=False,
        ),
        case("truncated parquet", parquet_bytes(base)[:-200], suffix="parquet", violation=(None, "readable parquet"), received=0),
        case("thousands separators", _csv(thousands).encode(), frame=thousands, accepted=rows - 2, reasons={"loan_amount:type number": 2}),
        case("missing markers", _csv(markers).encode(), frame=markers, accepted=rows),
        case("missing marker in a required column", _csv(required_markers).encode(), accepted=rows - 2, reasons={"annual_income:required": 2}),
        case(
            "infinite numbers",
            _csv(infinite).encode(),
            accepted=rows - 4,
            reasons={"annual_income:finite": 3, "num_open_accounts:finite": 1},
        ),
        case(
            "infinity in parquet",
            parquet_bytes(infinite_parquet),
            suffix="parquet",
            accepted=rows - 1,
            reasons={"credit_utilisation:finite": 1},
            pipeline=False,
        ),
        case(
            "integer beyond 64 bits",
            _csv(_with(base, "num_open_accounts", {0: "1e300"})).encode(),
            accepted=rows - 1,
            reasons={"num_open_accounts:type integer": 1},
            pipeline=False,
        ),
        case(
            "pii in free text",
            _csv(with_free_text).encode(),
            frame=with_free_text,
            accepted=rows - 9,
            reasons={"employer_name:no ssn in free text": 3, "employer_name:no phone in free text": 3, "employer_name:no email in free text": 3},
            planted=tuple(free_text.values()) + free_text_cores,
        ),
        case(
            "pii in free text as the issue spelt it",
            _csv(with_issue_text).encode(),
            frame=with_issue_text,
            accepted=rows - 5,
            reasons={"employer_name:no ssn in free text": 2, "employer_name:no phone in free text": 2, "employer_name:no email in free text": 1},
            planted=ISSUE_FREE_TEXT_PII + ISSUE_PII_CORES,
        ),
        case(
            "amounts and years in free text",
            _csv(_with(base, "employer_name", {0: "12500", 1: "Est. 2023", 2: "loan of 12500 in 2023"})).encode(),
            accepted=rows,
            pipeline=False,
        ),
        case(
            "script payloads in every text field",
            _csv(with_payloads).encode(),
            frame=with_payloads,
            accepted=rows - 2,
            reasons={f"{c}:{rule}": 2 for c, rule in [("ssn", "pattern")] + [(c, "allowed values") for c in allowed]},
        ),
        case(
            "script payloads as duplicated application ids",
            _csv(duplicate_payload_id).encode(),
            frame=duplicate_payload_id,
            accepted=rows - 4,
            reasons={"application_id:unique": 4},
            blocks="application_id:unique",
        ),
        case("empty file", b"", frame=base.head(0), violation=(None, "non-empty file"), received=0),
        case("header only", _text(lines[:1]), frame=base.head(0), accepted=0, received=0, blocks="table:row count"),
    ]


def clear_pii(case: Case, contract: Contract) -> set[str]:
    """Every clear PII value of the file a case delivers, as the file spells it (dates as
    delivered), and the PII it planted in free text; payloads are payloads, not PII."""
    values = set(case.planted)
    if case.frame is not None:
        for column in contract.columns("pii"):
            series = case.frame[column].dropna()
            if pd.api.types.is_datetime64_any_dtype(series):
                series = series.dt.strftime("%Y-%m-%d")
            values |= set(series.astype(str))
    return values - set(PAYLOADS) - {""}
