"""One door for every landing file, synthetic or real: read, conform to the contract, quarantine.

File-level problems (a missing column, an unreadable file) stop the partition with an error that
names the file, the column and the rule. Row-level problems send the row to quarantine with every
rule it broke, so received = accepted + quarantined always holds. Values the contract declares
as missing (`missingValues`: "N/A", "-", a sentinel 96) become null before any rule runs, counted.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

from riskcore.contract import Contract, DerivedFeature
from riskcore.months import parse_month
from riskcore.pii import pii_pattern_hits, tokenise

REASONS_COLUMN = "quarantine_reasons"
STRING = pd.StringDtype("pyarrow")
ROW_COLUMN = "source_row"


class ContractViolation(ValueError):
    """A file that cannot be conformed at all; the partition is blocked."""

    def __init__(self, file: str, column: str | None, rule: str, detail: str = ""):
        self.file, self.column, self.rule = file, column, rule
        where = f"column '{column}'" if column else "file"
        super().__init__(f"{file}: {where} breaks rule '{rule}'" + (f": {detail}" if detail else ""))


@dataclass(frozen=True)
class LandedFile:
    name: str
    sha256: str
    size_bytes: int
    frame: pd.DataFrame


def read_landing_bytes(name: str, data: bytes) -> LandedFile:
    """Parse CSV or Parquet bytes as delivered; values stay as delivered (CSV: all text in Arrow,
    an empty cell is "") until `conform`, which applies the contract's missing-value markers."""
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        raise ContractViolation(name, None, "non-empty file", "the file has no bytes")
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq

            frame = pq.read_table(io.BytesIO(data)).to_pandas(types_mapper=_arrow_strings)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise ContractViolation(name, None, "readable parquet", str(exc)) from exc
    elif name.endswith(".csv"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ContractViolation(name, None, "encoding utf-8", f"byte {exc.start} is not UTF-8") from exc
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=STRING, keep_default_na=False, na_filter=False, on_bad_lines="error")
        except pd.errors.EmptyDataError as exc:
            raise ContractViolation(name, None, "header row present", "the file has no header") from exc
        except pd.errors.ParserError as exc:
            raise ContractViolation(name, None, "well-formed CSV", str(exc).strip()) from exc
    else:
        raise ContractViolation(name, None, "file format", "expected a .csv or .parquet file")
    return LandedFile(name=name, sha256=digest, size_bytes=len(data), frame=frame)


def _arrow_strings(arrow_type):
    """Text stays in Arrow: string rules then run in Arrow's compute kernels, not per Python object."""
    import pyarrow as pa

    return STRING if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) else None


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


def _cast(values: pd.Series, ftype: str) -> pd.Series:
    if ftype == "string":
        return values.astype(STRING)
    if ftype == "date":
        if pd.api.types.is_datetime64_any_dtype(values):
            return values.dt.tz_localize(None).dt.normalize() if values.dt.tz is not None else values.dt.normalize()
        return pd.to_datetime(values, errors="coerce", format="ISO8601").dt.normalize()  # dates as ISO 8601 text
    numeric = pd.to_numeric(values, errors="coerce")
    if ftype == "integer":
        whole = numeric.where(np.isclose(numeric, np.round(numeric)) | numeric.isna())
        return whole.round().astype("Int64")
    return numeric.astype("float64")


def years_between(start: pd.Series, end: pd.Series) -> pd.Series:
    """Whole years from start to end (an age on a date), as float so missing stays NaN."""
    years = end.dt.year - start.dt.year
    before_birthday = (end.dt.month < start.dt.month) | ((end.dt.month == start.dt.month) & (end.dt.day < start.dt.day))
    return (years - before_birthday.astype("int64")).astype("float64")


DERIVATIONS = {"years_between": years_between}


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
    frame = landed.frame
    declared = [f.name for f in contract.fields]
    missing = [c for c in declared if c not in frame.columns]
    if missing:
        raise ContractViolation(landed.name, missing[0], "required column present", f"missing columns {missing}")
    unexpected = [c for c in frame.columns if c not in declared]
    if unexpected:
        raise ContractViolation(landed.name, unexpected[0], "no undeclared columns", f"unexpected columns {unexpected}")

    frame, markers = mark_missing(frame, contract)
    out = pd.DataFrame(index=frame.index)
    reasons = pd.Series("", index=frame.index, dtype="object")

    def flag(mask: pd.Series, column: str, rule: str) -> None:
        nonlocal reasons
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            reasons = reasons.where(~mask, reasons + f"{column}:{rule};")

    for f in contract.fields:
        raw = frame[f.name]
        cast = _cast(raw, f.type)
        flag(raw.notna() & cast.isna(), f.name, f"type {f.type}")
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
    `missing_markers` is how many values each declared marker turned into null, per column."""

    file: str
    sha256: str
    received: int
    accepted: pd.DataFrame
    quarantined: pd.DataFrame
    checked: pd.DataFrame | None
    violation: ContractViolation | None = None
    missing_markers: dict[str, dict[str, int]] = field(default_factory=dict)

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
    out["source_file_sha256"] = sha256
    out["contract_version"] = contract.label
    return out


def ingest(name: str, data: bytes, contract: Contract, month: str, token_key: str) -> Ingested:
    """Conform a landing file, then tokenise PII in everything that is kept.

    A file that cannot be conformed as a whole (missing or undeclared column) is not dropped:
    every row goes to quarantine, as delivered, with the file-level rule it broke. A file that
    cannot even be parsed keeps no rows (the landing file itself stays, registered by digest).
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
        checked, reasons, markers = judge(landed, contract, month)
    except ContractViolation as violation:
        raw, markers = mark_missing(landed.frame, contract)
        raw = raw.astype("string")
        raw[REASONS_COLUMN] = f"{violation.column or 'file'}:{violation.rule}"
        raw[ROW_COLUMN] = range(1, len(raw) + 1)
        return Ingested(
            name,
            digest,
            len(raw),
            _with_lineage(empty, contract, token_key, digest),
            _with_lineage(raw, contract, token_key, digest, quarantine=True),
            None,
            violation,
            markers,
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
    )
