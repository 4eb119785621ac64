"""One door for every landing file, synthetic or real: read, conform to the contract, quarantine.

File-level problems (a missing column, an unreadable file) stop the partition with an error that
names the file, the column and the rule. Row-level problems send the row to quarantine with every
rule it broke, so received = accepted + quarantined always holds. Values the contract declares
as missing (`missingValues`: "N/A", "-", a sentinel 96) become null before any rule runs, counted.

Nothing a file delivers is trusted as a name: a header field is read as a contract column only
when it equals one after trimming, case-folding and turning spaces/hyphens into "_" (`SSN`,
` ssn `, `Full Name`); errors and quarantine never quote a delivered value, and a file that
cannot be conformed keeps only keyed tokens of its values, under contract names or positions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from riskcore.contract import Contract, DerivedFeature
from riskcore.derivations import DERIVATIONS
from riskcore.lineage import repeated
from riskcore.months import parse_month
from riskcore.pii import pii_pattern_hits, token, tokenise

REASONS_COLUMN = "quarantine_reasons"
STRING = pd.StringDtype("pyarrow")
ROW_COLUMN = "source_row"
HEADER_ROW = "header row present"
# Tried on the header line; the one that splits it into the most fields wins (ties: ",").
DELIMITERS = (",", ";", "\t", "|")
# An undeclared header field is quoted in an error only when it looks like a column name, not data.
COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ContractViolation(ValueError):
    """A file that cannot be conformed at all; the partition is blocked. Column and detail never
    carry a delivered value: they go to logs, check metadata and the ledger."""

    def __init__(self, file: str, column: str | None, rule: str, detail: str = ""):
        self.file, self.column, self.rule = file, column, rule
        where = f"column '{column}'" if column else "file"
        super().__init__(f"{file}: {where} breaks rule '{rule}'" + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class LandedFile:
    """A parsed landing file. `header` is a CSV's header line as delivered (duplicates kept; the
    frame's labels de-duplicate them as pandas does); `changes` is what reading changed about the
    file's shape (byte order mark, delimiter, a trailing empty column), for the record."""

    name: str
    sha256: str
    size_bytes: int
    frame: pd.DataFrame
    header: tuple[str, ...] = ()
    changes: dict[str, str] = field(default_factory=dict)


def read_landing_bytes(name: str, data: bytes) -> LandedFile:
    """Parse CSV or Parquet bytes as delivered; values stay as delivered (CSV: all text in Arrow,
    an empty cell is "") until `conform`, which applies the contract's missing-value markers."""
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        raise ContractViolation(name, None, "non-empty file", "the file has no bytes")
    if name.endswith(".parquet"):
        frame, header, changes = _read_parquet(name, data)
    elif name.endswith(".csv"):
        frame, header, changes = _read_csv(name, data)
    else:
        raise ContractViolation(name, None, "file format", "expected a .csv or .parquet file")
    return LandedFile(name=name, sha256=digest, size_bytes=len(data), frame=frame, header=header, changes=changes)


def _read_parquet(name: str, data: bytes) -> tuple[pd.DataFrame, tuple[str, ...], dict[str, str]]:
    """A Parquet file's columns as delivered, read by position: a name given twice is kept twice
    (conforming says which rule that breaks), and pandas' own metadata is not obeyed (a stored
    index becomes a column, or, unnamed, is dropped and recorded; rows are numbered as stored).
    Binary columns are read as UTF-8 text; bytes that are not are an error naming the column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(io.BytesIO(data)).read()
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise ContractViolation(name, None, "readable parquet", _parquet_error(data, exc)) from exc
    index = _unnamed_index(table.schema)
    header, columns, changes = [], [], {}
    for position, (label, column) in enumerate(zip(table.column_names, table.columns), 1):
        if label in index:
            changes[f"column_{position}"] = "dropped: an unnamed pandas index, not a column"
            continue
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            try:
                column = pc.cast(column, pa.large_string() if pa.types.is_large_binary(column.type) else pa.string())
            except pa.ArrowInvalid as exc:
                raise ContractViolation(
                    name, None, "encoding utf-8", f"column {position} ('{_quotable(_header_key(label), position)}') holds bytes that are not UTF-8 text"
                ) from exc
        header.append(label)
        columns.append(column)
    by_position = pa.Table.from_arrays(columns, names=[str(i) for i in range(len(columns))])
    frame = by_position.to_pandas(types_mapper=_arrow_strings, ignore_metadata=True)
    return frame.set_axis(_labels(header), axis=1), tuple(header), changes


def _unnamed_index(schema) -> set[str]:
    """The columns of a Parquet schema that hold an unnamed pandas index (a range index is stored
    as a description, not a column): reading drops them."""
    stored = (schema.pandas_metadata or {}).get("index_columns", []) if schema.metadata else []
    return {c for c in stored if isinstance(c, str) and re.fullmatch(r"__index_level_\d+__", c)}


def _parquet_error(data: bytes, exc: Exception) -> str:
    """Why a Parquet file cannot be read. pyarrow's message once the schema is readable may list
    the file's column names (which may be data): then only the kind of error is told."""
    import pyarrow.parquet as pq

    try:
        pq.read_schema(io.BytesIO(data))
    except Exception:
        return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return f"{type(exc).__name__} while reading its data pages (the message is withheld: it may quote the file's column names)"


def _read_csv(name: str, data: bytes) -> tuple[pd.DataFrame, tuple[str, ...], dict[str, str]]:
    """The header line is parsed on its own (its delimiter too: the one that splits it most), so
    no reader names columns from data nor mangles a repeated name. Rows are read without a
    header (Arrow's CSV reader, every value text), and every row must have as many fields as the
    first: a row with more or fewer is an error naming its line (pandas would cut extra fields
    silently or pad a short row with empty ones, shifting nothing into view). A trailing
    delimiter, an empty last field on every row (with or without one in the header), is dropped
    and recorded; any other difference between header and rows is an error. Encoding errors name
    the line and column of the first byte that is not UTF-8."""
    if b"\x00" in data:
        raise ContractViolation(name, None, "encoding utf-8", _nul_detail(data))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContractViolation(name, None, "encoding utf-8", f"byte {exc.start} ({_position(data, exc.start)}) is not UTF-8") from exc
    changes = {"byte order mark": "removed"} if data.startswith(BOM) else {}
    first = re.match(r"[^\r\n]*", text).group()  # a line ends at \n, \r\n or \r
    if not first.strip():
        raise ContractViolation(name, None, HEADER_ROW, "the first line is empty")
    delimiter = _delimiter(first)
    if delimiter != ",":
        changes["delimiter"] = repr(delimiter)
    header = next(csv.reader([first], delimiter=delimiter))
    frame = pd.DataFrame({i: pd.Series(dtype=STRING) for i in range(len(header))})
    body = text[len(first) :]
    if body.strip():
        frame = _read_rows(name, body, delimiter)
    if len(header) > 1 and not header[-1].strip() and frame.shape[1] == len(header) and (frame.iloc[:, -1] == "").all():
        header, frame = header[:-1], frame.iloc[:, :-1]
        changes[f"column_{len(header) + 1}"] = "dropped: no name, no values (trailing delimiter)"
    elif frame.shape[1] == len(header) + 1 and (frame.iloc[:, -1] == "").all():
        frame = frame.iloc[:, :-1]
        changes[f"column_{len(header) + 1}"] = "dropped: no values, not in the header (trailing delimiter on the rows)"
    if frame.shape[1] != len(header):
        raise ContractViolation(name, None, "well-formed CSV", f"the header has {len(header)} fields, the first row {frame.shape[1]}")
    return frame.set_axis(_labels(header), axis=1), tuple(header), changes


BOM = b"\xef\xbb\xbf"


def _delimiter(line: str) -> str:
    return max(DELIMITERS, key=lambda d: len(next(csv.reader([line], delimiter=d))))


def _read_rows(name: str, body: str, delimiter: str) -> pd.DataFrame:
    """The rows after the header line, all as text, as wide as the first row; any row of another
    width is an error naming it by its row number (as `source_row` counts: the first after the header is 1)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    first_row = next(row for row in csv.reader(io.StringIO(body, newline=""), delimiter=delimiter) if row)
    names = [str(i) for i in range(len(first_row))]
    ragged: list[tuple[int | None, int]] = []

    def refuse(row) -> str:  # row.text is data: only its line number and width are kept
        ragged.append((row.number, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body.encode()),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, invalid_row_handler=refuse),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False, null_values=[]),
        )
    except pa.ArrowInvalid as exc:  # its message may quote the row: not repeated
        raise ContractViolation(
            name, None, "well-formed CSV", f"the CSV reader stopped after row {len(ragged)} ({type(exc).__name__}; message withheld: it may quote data)"
        ) from exc
    if ragged:
        row, width = ragged[0]
        more = f"; {len(ragged) - 1} more rows of another width" if len(ragged) > 1 else ""
        raise ContractViolation(name, None, "well-formed CSV", f"row {row} has {width} fields, the first row {len(names)}{more}")
    return table.to_pandas(types_mapper=_arrow_strings).set_axis(range(len(names)), axis=1)


def _position(data: bytes, offset: int) -> str:
    """Where a byte of a text file lies, for an error: its line and field, by the header's name for
    that field when every field of the header reads as a column name (a first line that is data,
    a file without its header row, is never quoted), else by position."""
    lines = re.split(r"\r\n|\r|\n", data[:offset].decode("utf-8", "replace").removeprefix("\ufeff"))
    header_line = lines[0] if len(lines) > 1 else re.match(r"[^\r\n]*", data.decode("utf-8", "replace")).group()
    delimiter = _delimiter(header_line)
    field = len(next(csv.reader([lines[-1]], delimiter=delimiter), [""])) or 1
    header = [_header_key(h) for h in next(csv.reader([header_line], delimiter=delimiter), [])]
    named = field <= len(header) and all(COLUMN_NAME.fullmatch(h) for h in header)
    return f"line {len(lines)}, column '{header[field - 1] if named else f'column_{field}'}'"


def _nul_detail(data: bytes) -> str:
    """Why a file with NUL bytes is no UTF-8 text: UTF-16 (with or without byte order mark), or where the NUL is."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "the file is UTF-16 text (its byte order mark says so), not UTF-8"
    sample = data[:256]
    if max(sample[0::2].count(0), sample[1::2].count(0)) > len(sample) // 4:
        return "the file looks like UTF-16 text without a byte order mark (every other byte is NUL), not UTF-8"
    offset = data.index(b"\x00")
    return f"byte {offset} ({_position(data, offset)}) is NUL, which is no text"


def _labels(header: list[str]) -> list[str]:
    """Frame labels for a header: a repeated name gets ".1", ".2" as pandas gives it (other
    readers of the frame expect unique labels; conforming reads the header itself)."""
    seen: Counter[str] = Counter()
    labels = []
    for name in header:
        labels.append(f"{name}.{seen[name]}" if seen[name] else name)
        seen[name] += 1
    return labels


def _arrow_strings(arrow_type):
    """Text stays in Arrow: string rules then run in Arrow's compute kernels, not per Python object."""
    import pyarrow as pa

    return STRING if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else None


def _header_key(name: str) -> str:
    """What a header field is compared by: trimmed, case-folded, runs of spaces/hyphens as "_"."""
    return re.sub(r"[\s-]+", "_", name.strip()).casefold()


def _contract_names(header: tuple[str, ...], contract: Contract) -> list[str | None]:
    """Per header field, the contract column it names (None: none)."""
    by_key = {_header_key(f.name): f.name for f in contract.fields}
    return [by_key.get(_header_key(h)) for h in header]


def _quotable(name: str, position: int) -> str:
    """An undeclared header field as an error may name it: itself if it looks like a column name, else its position."""
    return name if COLUMN_NAME.fullmatch(name) else f"column_{position}"


def received_rows(landed: LandedFile, contract: Contract) -> int:
    """Rows the file delivered, as `ingest` counts them: a CSV header line that names no contract
    column is data (the file has no header row), so it is a row too."""
    return _received(len(landed.frame), landed.header, contract)


def delivered_rows(name: str, data: bytes, contract: Contract) -> int:
    """`received_rows` of a landing file's bytes. A Parquet file's footer holds its row count and
    column names: its pages are not decoded (a million rows' parse is about a second); a CSV is parsed."""
    if not name.endswith(".parquet") or not data:
        return received_rows(read_landing_bytes(name, data), contract)
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
    except Exception as exc:  # as _read_parquet
        raise ContractViolation(name, None, "readable parquet", _parquet_error(data, exc)) from exc
    dropped = _unnamed_index(parquet.schema_arrow)
    return _received(parquet.metadata.num_rows, tuple(c for c in parquet.schema_arrow.names if c not in dropped), contract)


def _received(rows: int, header: tuple[str, ...], contract: Contract) -> int:
    header_is_data = bool(header) and not any(_contract_names(header, contract))
    return rows + int(header_is_data)


def match_header(landed: LandedFile, contract: Contract) -> LandedFile:
    """The file with its columns under the contract's names, renames recorded in `changes`.

    A header with no contract column (the first line is data), a name given twice (`ssn`, ` SSN `),
    a missing or an undeclared column is a ContractViolation naming file, column and rule."""
    header = landed.header or tuple(str(c) for c in landed.frame.columns)
    names = _contract_names(header, contract)
    if not any(names):
        raise ContractViolation(
            landed.name,
            None,
            HEADER_ROW,
            f"none of the {len(header)} column names is a contract column (a CSV without its header row names them after its first row)",
        )
    keys = [_header_key(h) for h in header]
    repeated = next((k for k, n in Counter(keys).items() if n > 1), None)
    if repeated is not None:
        positions = [i for i, k in enumerate(keys, 1) if k == repeated]
        column = names[positions[0] - 1] or _quotable(header[positions[0] - 1], positions[0])
        raise ContractViolation(landed.name, column, "unique column names", f"the header names it at positions {positions}")
    missing = [f.name for f in contract.fields if f.name not in names]
    if missing:
        raise ContractViolation(landed.name, missing[0], "required column present", f"missing columns {missing}")
    unexpected = [_quotable(h, i) for i, (h, n) in enumerate(zip(header, names), 1) if n is None]
    if unexpected:
        raise ContractViolation(landed.name, unexpected[0], "no undeclared columns", f"unexpected columns {unexpected}")
    renamed = {h: n for h, n in zip(header, names) if h != n}
    if not renamed and list(landed.frame.columns) == names:
        return landed
    return replace(landed, frame=landed.frame.set_axis(names, axis=1), header=tuple(names), changes=landed.changes | renamed)


def mark_missing(frame: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """Declared missing-value markers become null, so a "-" in a numeric column is a missing
    value, not a type error; returns how many values each marker replaced, per column.

    Text tokens (the contract's and the column's own) match text exactly; a column's numeric
    sentinels match by value, so 96 finds "96" and "96.0" in a CSV and 96 or 96.0 in Parquet.
    """
    out, counts = frame.copy(deep=False), {}  # columns are replaced below, never written into
    fields = {f.name: f for f in contract.fields}
    for column in frame.columns:
        values = frame[column]
        own = fields[column].missing_values if column in fields else ()
        tokens = tuple(m for m in own if isinstance(m, str))
        if is_numeric_dtype(values):
            tokens = ()  # a number is never one of the text tokens
        elif not is_datetime64_any_dtype(values):
            tokens = contract.missing_values + tokens  # a date column only ever matches its own
        found, replaced = _markers(values, tokens, tuple(m for m in own if not isinstance(m, str)))
        if replaced:
            out[column] = values.mask(found)
            counts[column] = replaced
    return out, counts


def _markers(values: pd.Series, tokens: tuple[str, ...], sentinels: tuple) -> tuple[pd.Series, dict[str, int]]:
    """Which values are markers, and how many each marker matched (as the contract spells it)."""
    found = pd.Series(False, index=values.index)
    replaced: dict[str, int] = {}
    if tokens:
        text = values.astype(STRING)
        found = text.isin(tokens)
        replaced |= {str(k): int(v) for k, v in text[found].value_counts().items()}
    if sentinels:
        number = pd.to_numeric(values, errors="coerce")
        hit = number.isin(sentinels).fillna(False).astype(bool) & ~found
        found |= hit
        replaced |= {str(s): int(n) for s in sentinels if (n := (number[hit] == s).sum())}
    return found, replaced


def _cast(values: pd.Series, ftype: str) -> tuple[pd.Series, pd.Series]:
    """Values as the contract type, and which were infinite numbers ("inf", or "1e309", which
    overflows a float): those become missing and break the rule `finite`, not the type rule."""
    none = pd.Series(False, index=values.index)
    if ftype == "string":
        return values.astype(STRING), none
    if ftype == "date":
        if pd.api.types.is_datetime64_any_dtype(values):
            return (values.dt.tz_localize(None).dt.normalize() if values.dt.tz is not None else values.dt.normalize()), none
        return pd.to_datetime(values, errors="coerce", format="ISO8601").dt.normalize(), none  # dates as ISO 8601 text
    numeric = pd.to_numeric(values, errors="coerce")
    infinite = pd.Series(np.isinf(numeric.to_numpy(dtype="float64", na_value=np.nan)), index=values.index)
    unparsed = values.notna() & numeric.isna()
    if unparsed.any():  # rare: only values that are no number at all are looked at one by one
        infinite |= values[unparsed].map(_overflows).reindex(values.index, fill_value=False).astype(bool)
    numeric = numeric.mask(infinite)
    if ftype == "integer":
        # Beyond 64 bits a number is no integer the column can hold: a type error, not a crash.
        whole = numeric.where((np.isclose(numeric, np.round(numeric)) & (numeric.abs() < 2**63)) | numeric.isna())
        return whole.round().astype("Int64"), infinite
    return numeric.astype("float64"), infinite


def _overflows(value) -> bool:
    try:
        return bool(np.isinf(float(value)))
    except (TypeError, ValueError):
        return False


def derive(frame: pd.DataFrame, derived: tuple[DerivedFeature, ...]) -> pd.DataFrame:
    """Add derived features; divisions by zero become missing, not infinity."""
    out = frame.copy()
    # Expressions see nullable integers as floats (NaN), which pandas' eval can divide.
    numeric = pd.DataFrame({c: out[c].astype("float64") for c in out.columns if pd.api.types.is_numeric_dtype(out[c])})
    for feature in derived:
        if feature.function:
            if feature.function not in DERIVATIONS:
                raise ValueError(f"unknown derivation function {feature.function!r} for {feature.name}")
            values = DERIVATIONS[feature.function](*(out[a] for a in feature.args))
        else:
            values = numeric.eval(feature.expression, engine="python")
        out[feature.name] = pd.to_numeric(values, errors="coerce").astype("float64").replace([np.inf, -np.inf], np.nan)
    return out


def conform(landed: LandedFile, contract: Contract, month: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Blank missing-value markers, cast to contract types and apply row rules; returns (accepted, quarantined).

    Quarantined rows keep every column (PII still clear: the caller tokenises both outputs)
    plus the reasons, one `column:rule` per broken rule, and the row number in the file.
    """
    checked, reasons, _ = judge(landed, contract, month)
    return split(checked, reasons)


def split(frame: pd.DataFrame, reasons: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    bad = reasons != ""
    accepted = frame[~bad].reset_index(drop=True)
    quarantined = frame[bad].copy()
    quarantined[REASONS_COLUMN] = reasons[bad].str.rstrip(";")
    quarantined[ROW_COLUMN] = (quarantined.index + 1).astype("int64")
    return accepted, quarantined.reset_index(drop=True)


def judge(landed: LandedFile, contract: Contract, month: str | None = None) -> tuple[pd.DataFrame, pd.Series, dict[str, dict[str, int]]]:
    """Every received row cast to contract types (derived features added), per row the rules it
    broke as `column:rule;...` ('' for a good row), and the missing-value markers it replaced."""
    frame, markers = mark_missing(match_header(landed, contract).frame, contract)
    out = pd.DataFrame(index=frame.index)
    reasons = pd.Series("", index=frame.index, dtype="object")

    def flag(mask: pd.Series, column: str, rule: str) -> None:
        nonlocal reasons
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            reasons = reasons.where(~mask, reasons + f"{column}:{rule};")

    for f in contract.fields:
        raw = frame[f.name]
        cast, infinite = _cast(raw, f.type)
        flag(raw.notna() & cast.isna() & ~infinite, f.name, f"type {f.type}")
        flag(infinite, f.name, "finite")
        out[f.name] = cast
        if f.required:
            flag(raw.isna(), f.name, "required")
        if f.minimum is not None:
            flag(cast < f.minimum, f.name, f"minimum {f.minimum}")
        if f.maximum is not None:
            flag(cast > f.maximum, f.name, f"maximum {f.maximum}")
        if f.allowed_values is not None:
            flag(cast.notna() & ~cast.isin(list(f.allowed_values)), f.name, "allowed values")
        if f.pattern:
            flag(cast.notna() & ~cast.astype(STRING).str.fullmatch(f.pattern).fillna(False).astype(bool), f.name, "pattern")
        if f.unique:
            flag(cast.notna() & cast.duplicated(keep=False), f.name, "unique")
        if f.not_in_future:
            flag(cast > pd.Timestamp.today().normalize(), f.name, "not in future")
        if f.free_text:
            for kind, hits in pii_pattern_hits(cast).items():
                flag(hits, f.name, f"no {kind} in free text")
    if month is not None:
        timestamp = out[contract.only("timestamp")]
        expected = parse_month(month)
        outside = (timestamp.dt.year != expected.year) | (timestamp.dt.month != expected.month)
        flag(timestamp.notna() & outside, contract.only("timestamp"), "in partition month")

    return derive(out, contract.derived), reasons, markers


@dataclass(frozen=True)
class Ingested:
    """One landing file's fate. `checked` is every received row, cast but not yet tokenised, for
    the dataset-level contract checks; `violation` is set when the file could not be conformed;
    `missing_markers` is how many values each declared marker turned into null, per column;
    `header_changes` is how the file was read where it differs from the contract's spelling:
    a delivered header field -> the contract column it was read as, a dropped trailing empty
    column, the delimiter or byte order mark, and, for a column the header did not name
    (`column_3`), the keyed token of what the header said there."""

    file: str
    sha256: str
    received: int
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    checked: pd.DataFrame | None
    violation: ContractViolation | None = None
    missing_markers: dict[str, dict[str, int]] = field(default_factory=dict)
    header_changes: dict[str, str] = field(default_factory=dict)

    def quarantine_reasons(self) -> dict[str, int]:
        return count_reasons(self.quarantined)


def count_reasons(quarantined: pd.DataFrame) -> dict[str, int]:
    """Rows per broken rule (a row breaking two rules counts under both)."""
    if quarantined.empty:
        return {}
    counts = quarantined[REASONS_COLUMN].str.split(";").explode().value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _with_lineage(frame: pd.DataFrame, contract: Contract, token_key: str, sha256: str, quarantine: bool = False) -> pd.DataFrame:
    """Tokenise PII (and, in quarantine, free text, which may be why the row is there)."""
    risky = contract.columns("pii") + ([f.name for f in contract.fields if f.free_text] if quarantine else [])
    pii = [c for c in risky if c in frame.columns]
    out = tokenise(frame, pii, token_key)
    out["source_file_sha256"] = repeated(sha256, len(out))
    out["contract_version"] = repeated(contract.label, len(out))
    return out


def _unconformable(landed: LandedFile, contract: Contract, violation: ContractViolation, token_key: str) -> tuple[pd.DataFrame, dict[str, str], dict]:
    """Every row of a file that cannot be conformed, with no clear value of any column: each
    value as its keyed token, under the contract's name where the header named that column once,
    else by position (`column_3_token`), with the row number and the file-level rule as reason.

    When the header is data (no contract column in it), it is the first row and is kept as one.
    Returns the rows, the header changes (the delivered header's token for every column named by
    position) and the missing-value markers replaced (markers stay missing, never a token)."""
    header = landed.header or tuple(str(c) for c in landed.frame.columns)
    frame = landed.frame.set_axis(range(len(header)), axis=1)
    if violation.rule == HEADER_ROW and landed.header:
        frame = pd.concat([pd.DataFrame([list(header)], dtype=STRING), frame], ignore_index=True)
    names = _contract_names(header, contract)
    columns = [n if n is not None and names.count(n) == 1 else f"column_{i}" for i, n in enumerate(names, 1)]
    frame, markers = mark_missing(frame.set_axis(columns, axis=1).reset_index(drop=True), contract)
    out = tokenise(frame, columns, token_key)
    out[REASONS_COLUMN] = f"{violation.column or 'file'}:{violation.rule}"
    out[ROW_COLUMN] = np.arange(1, len(out) + 1, dtype="int64")
    changes = {h: c for h, c in zip(header, columns) if h != c and c in names}
    changes |= {c: token(h, token_key, "header") for h, c in zip(header, columns) if c not in names}
    return out, landed.changes | changes, markers


def ingest(name: str, data: bytes, contract: Contract, month: str, token_key: str) -> Ingested:
    """Conform a landing file, then tokenise PII in everything that is kept.

    A file that cannot be conformed as a whole (its header is data, names a column twice, lacks
    one or adds one) is not dropped: every row goes to quarantine with the file-level rule it
    broke, as keyed tokens only (`_unconformable`). A file that cannot even be parsed keeps no
    rows (the landing file itself stays, registered by digest).
    """
    digest = hashlib.sha256(data).hexdigest()
    empty = conform(LandedFile(name, digest, 0, pd.DataFrame(columns=[f.name for f in contract.fields])), contract)[0]
    try:
        landed = read_landing_bytes(name, data)
    except ContractViolation as violation:
        nothing = _with_lineage(empty, contract, token_key, digest)
        no_rows = _with_lineage(empty, contract, token_key, digest, quarantine=True).assign(**{REASONS_COLUMN: "", ROW_COLUMN: 0})
        return Ingested(name, digest, 0, nothing, no_rows, None, violation)
    try:
        landed = match_header(landed, contract)
        checked, reasons, markers = judge(landed, contract, month)
    except ContractViolation as violation:
        rows, changes, markers = _unconformable(landed, contract, violation, token_key)
        return Ingested(
            name,
            digest,
            len(rows),
            _with_lineage(empty, contract, token_key, digest),
            _with_lineage(rows, contract, token_key, digest),
            None,
            violation,
            markers,
            changes,
        )
    accepted, quarantined = split(checked, reasons)
    return Ingested(
        name,
        digest,
        len(landed.frame),
        _with_lineage(accepted, contract, token_key, digest),
        _with_lineage(quarantined, contract, token_key, digest, quarantine=True),
        checked,
        missing_markers=markers,
        header_changes=landed.changes,
    )
