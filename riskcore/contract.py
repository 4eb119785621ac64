"""Data contracts: what each column of a dataset is, and the rules its rows must keep.

The pipeline learns every column's role (id, timestamp, pii, sensitive, feature, target) from
here, so a new data source needs a new contract file, not new code. A contract that is wrong
fails at load with the file, the key path and what was expected: never half-way through a run.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import math
from dataclasses import dataclass
from numbers import Real
from pathlib import Path

import yaml

from riskcore.yamlfile import load_yaml

ROLES = ("id", "timestamp", "pii", "sensitive", "feature", "target", "attribute")
TYPES = ("string", "integer", "number", "date")
NUMERIC = ("integer", "number")
# What a delivered value that means "missing" looks like in any column, unless the contract
# declares its own `missingValues`. "-" is here: left out, it was a type error (or a category).
DEFAULT_MISSING_VALUES = ("", "NA", "N/A", "NULL", "null", "NaN", "nan", "None", "-")
# Roles that never feed a model: no reason code, no cap, no derived feature built from them
# (pii only through a named function, which reduces it, e.g. date of birth -> age).
NEVER_MODEL_INPUTS = ("pii", "sensitive", "target")


class ContractError(ValueError):
    """A contract file that cannot be used: names the file, the key path and what was expected."""

    def __init__(self, file: str, key: str, problem: str):
        self.file, self.key, self.problem = file, key, problem
        super().__init__(f"{file}: {key}: {problem}")


@dataclass(frozen=True)
class ReasonCode:
    code: str
    text: str


@dataclass(frozen=True)
class Cap:
    """Winsorising bounds of a numeric feature: valid but extreme values are clipped to them."""

    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    role: str
    required: bool = False
    unique: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed_values: tuple | None = None
    pattern: str | None = None
    reason: ReasonCode | None = None
    # Dataset-level rules: a breach blocks the partition rather than quarantining rows.
    max_null_share: float | None = None
    median_between: tuple[float, float] | None = None
    not_in_future: bool = False
    free_text: bool = False  # checked for PII patterns (SSN, e-mail, phone) row by row
    missing_values: tuple = ()  # this column's own markers: numeric sentinels (96) or text tokens
    cap: Cap | None = None

    @property
    def is_categorical(self) -> bool:
        return self.type == "string"


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed at ingestion: a pandas expression or a named function of columns."""

    name: str
    expression: str | None = None
    function: str | None = None
    args: tuple[str, ...] = ()
    reason: ReasonCode | None = None
    type: str = "number"
    role: str = "feature"
    cap: Cap | None = None

    @property
    def is_categorical(self) -> bool:
        return False


@dataclass(frozen=True)
class Quality:
    """Dataset-level rules from the contract's `quality` section."""

    row_count_min: int = 1
    row_count_max: int | None = None
    quarantine_tolerance: float = 0.0  # share of received rows that may be quarantined


@dataclass(frozen=True)
class Contract:
    id: str
    version: str
    owner: str
    fields: tuple[Field, ...]
    derived: tuple[DerivedFeature, ...] = ()
    quality: Quality = Quality()
    digest: str = ""
    missing_values: tuple[str, ...] = DEFAULT_MISSING_VALUES  # text tokens meaning missing in any column

    @property
    def label(self) -> str:
        """What lineage records: id, declared version and the digest of the exact file."""
        return f"{self.id}@{self.version}+{self.digest[:12]}"

    def columns(self, role: str) -> list[str]:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {ROLES}")
        return [f.name for f in self.fields if f.role == role]

    def only(self, role: str) -> str:
        names = self.columns(role)
        if len(names) != 1:
            raise ValueError(f"contract {self.id} must declare exactly one {role} column, found {names}")
        return names[0]

    @property
    def features(self) -> list[Field | DerivedFeature]:
        """Model inputs in a stable order: declared features, then derived ones."""
        return [f for f in self.fields if f.role == "feature"] + list(self.derived)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"contract {self.id} has no column {name!r}")


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_numeric_text(value: str) -> bool:
    """'96' or '-1.5', not 'NaN' or 'inf' (text tokens that never parse to a sentinel)."""
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


class _Reader:
    """Reads one contract document; every error it raises names the file and the key path."""

    def __init__(self, file: str):
        self.file = file

    def fail(self, key: str, problem: str):
        raise ContractError(self.file, key, problem)

    def mapping(self, value, key: str, expected: str) -> dict:
        if not isinstance(value, dict):
            self.fail(key, f"expected {expected}, got {value!r}")
        return value

    def listing(self, value, key: str, expected: str) -> list:
        if not isinstance(value, list):
            self.fail(key, f"expected a list of {expected}, got {value!r}")
        return value

    def text(self, entry: dict, name: str, key: str) -> str:
        value = entry.get(name)
        if value is None:
            self.fail(f"{key}.{name}", "required key missing")
        if not isinstance(value, str) or not value:
            self.fail(f"{key}.{name}", f"expected a non-empty string, got {value!r}")
        return value

    def choice(self, entry: dict, name: str, key: str, choices: tuple[str, ...]) -> str:
        value = entry.get(name)
        if value is None:
            self.fail(f"{key}.{name}", f"required key missing; expected one of {', '.join(choices)}")
        if value not in choices:
            self.fail(f"{key}.{name}", f"{value!r} is not one of {', '.join(choices)}")
        return value

    def number(self, entry: dict, name: str, key: str) -> float | None:
        value = entry.get(name)
        if value is not None and not _is_number(value):
            self.fail(f"{key}.{name}", f"expected a number, got {value!r}")
        return value

    def reason(self, raw, key: str) -> ReasonCode | None:
        if raw is None:
            return None
        self.mapping(raw, key, "a mapping with code and text")
        for part in ("code", "text"):
            if raw.get(part) in (None, ""):
                self.fail(f"{key}.{part}", "required key missing")
        return ReasonCode(str(raw["code"]), str(raw["text"]))

    def contract_tokens(self, doc: dict) -> tuple[str, ...]:
        if "missingValues" not in doc:
            return DEFAULT_MISSING_VALUES
        tokens = self.listing(doc["missingValues"], "missingValues", "text tokens")
        for i, token in enumerate(tokens):
            if not isinstance(token, str):
                self.fail(f"missingValues[{i}]", f"expected a text token (quoted), got {token!r}; numeric sentinels are declared per column")
        return tuple(tokens)

    def markers(self, entry: dict, key: str, ftype: str) -> tuple:
        """A column's own markers: numbers for numeric columns (they match 96 and 96.0, as text
        or as numbers), text otherwise; a quoted number on a numeric column would only match as text."""
        markers = self.listing(entry.get("missingValues", []), f"{key}.missingValues", "markers")
        for i, marker in enumerate(markers):
            where = f"{key}.missingValues[{i}]"
            if ftype in NUMERIC:
                if not (_is_number(marker) or isinstance(marker, str)):
                    self.fail(where, f"expected a number (or a text token), got {marker!r}")
                if isinstance(marker, str) and _is_numeric_text(marker):
                    self.fail(where, f"{marker!r} is a quoted number but the column is {ftype}: write it unquoted so it matches however the file spells it")
            elif not isinstance(marker, str):
                self.fail(where, f"expected a text token on a {ftype} column (quote it), got {marker!r}")
        return tuple(markers)

    def cap(self, raw, key: str) -> Cap | None:
        if raw is None:
            return None
        self.mapping(raw, key, "a mapping with lower and/or upper")
        unknown = sorted(set(raw) - {"lower", "upper"})
        if unknown or not raw:
            self.fail(key, f"expected keys lower and/or upper, got {sorted(raw)}")
        cap = Cap(self.number(raw, "lower", key), self.number(raw, "upper", key))
        if cap.lower is not None and cap.upper is not None and cap.lower > cap.upper:
            self.fail(key, f"lower {cap.lower} is greater than upper {cap.upper}")
        return cap

    def field(self, entry, key: str) -> Field:
        self.mapping(entry, key, "a column with name, logicalType and role")
        name = self.text(entry, "name", key)
        ftype = self.choice(entry, "logicalType", key, TYPES)
        role = self.choice(entry, "role", key, ROLES)
        minimum, maximum = self.number(entry, "minimum", key), self.number(entry, "maximum", key)
        if (minimum is not None or maximum is not None) and ftype not in NUMERIC:
            self.fail(f"{key}.{'minimum' if minimum is not None else 'maximum'}", f"applies to integer or number columns; {name!r} is {ftype}")
        if minimum is not None and maximum is not None and minimum > maximum:
            self.fail(f"{key}.minimum", f"{minimum} is greater than maximum {maximum} (column {name!r})")
        allowed = entry.get("allowedValues")
        if allowed is not None:
            self.listing(allowed, f"{key}.allowedValues", "values")
        median = entry.get("medianBetween")
        if median is not None and not (isinstance(median, list) and len(median) == 2 and all(map(_is_number, median)) and median[0] <= median[1]):
            self.fail(f"{key}.medianBetween", f"expected [low, high] numbers with low <= high, got {median!r}")
        reason = self.reason(entry.get("reason"), f"{key}.reason")
        if reason is not None and role in NEVER_MODEL_INPUTS:
            self.fail(f"{key}.reason", f"column {name!r} has role {role}, which is never a model feature; a reason code is for features only")
        cap = self.cap(entry.get("cap"), f"{key}.cap")
        if cap is not None:
            self.check_cap(cap, f"{key}.cap", name, ftype, role, minimum, maximum, allowed)
        return Field(
            name=name,
            type=ftype,
            role=role,
            required=bool(entry.get("required", False)),
            unique=bool(entry.get("unique", False)),
            minimum=minimum,
            maximum=maximum,
            allowed_values=tuple(allowed) if allowed is not None else None,
            pattern=entry.get("pattern"),
            reason=reason,
            max_null_share=entry.get("maxNullShare"),
            median_between=tuple(median) if median else None,
            not_in_future=bool(entry.get("notInFuture", False)),
            free_text=bool(entry.get("freeText", False)),
            missing_values=self.markers(entry, key, ftype),
            cap=cap,
        )

    def check_cap(self, cap: Cap, key: str, name: str, ftype: str, role: str, minimum, maximum, allowed) -> None:
        """A cap clips model inputs only, and must leave every clipped value valid under the row rules."""
        if ftype not in NUMERIC:
            self.fail(key, f"a cap applies to integer or number columns; {name!r} is {ftype}")
        if role != "feature":
            self.fail(key, f"a cap applies to features only (it is applied when features are built); {name!r} has role {role}")
        if allowed is not None:
            self.fail(key, f"{name!r} declares allowedValues: clipped values would fall outside them")
        if cap.lower is not None and maximum is not None and cap.lower > maximum:
            self.fail(f"{key}.lower", f"{cap.lower} is above maximum {maximum}: clipped values would break the row rule")
        if cap.upper is not None and minimum is not None and cap.upper < minimum:
            self.fail(f"{key}.upper", f"{cap.upper} is below minimum {minimum}: clipped values would break the row rule")

    def derived(self, entry, key: str, columns: dict[str, Field], earlier: list[str]) -> DerivedFeature:
        self.mapping(entry, key, "a derived feature with name and expression or function")
        name = self.text(entry, "name", key)
        if name in columns or name in earlier:
            self.fail(f"{key}.name", f"{name!r} is already a column or derived feature; a derived feature needs a name of its own")
        if bool(entry.get("expression")) == bool(entry.get("function")):
            self.fail(key, f"derived feature {name!r} needs exactly one of expression/function")
        args = tuple(self.listing(entry.get("args", []), f"{key}.args", "column names"))
        if entry.get("function"):
            from riskcore.derivations import DERIVATIONS

            if entry["function"] not in DERIVATIONS:
                self.fail(f"{key}.function", f"{entry['function']!r} is not one of {', '.join(DERIVATIONS)}")
            for i, arg in enumerate(args):
                # Earlier derived features are there when a function runs.
                if arg not in earlier:
                    self.referenced(arg, f"{key}.args[{i}]", name, columns, allow=("pii",))
        else:
            for column in self.expression_names(entry["expression"], f"{key}.expression"):
                field = self.referenced(column, f"{key}.expression", name, columns, allow=())
                if field.type not in NUMERIC:
                    self.fail(f"{key}.expression", f"{column!r} is {field.type}; expressions take integer or number columns")
        return DerivedFeature(
            name=name,
            expression=entry.get("expression"),
            function=entry.get("function"),
            args=args,
            reason=self.reason(entry.get("reason"), f"{key}.reason"),
            cap=self.cap(entry.get("cap"), f"{key}.cap"),
        )

    def referenced(self, column: str, key: str, feature: str, columns: dict[str, Field], allow: tuple[str, ...]) -> Field:
        """A column a derived feature reads: declared, and not one a model must never see."""
        if column not in columns:
            self.fail(key, f"derived feature {feature!r} references {column!r}, which is not a declared column")
        role = columns[column].role
        if role in NEVER_MODEL_INPUTS and role not in allow:
            self.fail(key, f"derived feature {feature!r} reads {column!r} (role {role}): a {role} column must not become a model feature")
        return columns[column]

    def expression_names(self, expression, key: str) -> list[str]:
        """The column names an expression reads (function names it calls are not columns)."""
        try:
            tree = ast.parse(str(expression), mode="eval")
        except SyntaxError as exc:
            self.fail(key, f"not a valid expression: {exc.msg}")
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
        return [node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called]


def _inherited(doc: dict, source: Contract | None, reader: _Reader) -> list[Field]:
    """`schemaFrom: {roles: [...]}`: the columns of the source contract with those roles, so a
    downstream contract (features) follows whatever source it is built from."""
    spec = doc.get("schemaFrom")
    if not spec:
        return []
    if source is None:
        reader.fail("schemaFrom", "declared, but no source contract was given")
    roles = reader.listing(reader.mapping(spec, "schemaFrom", "a mapping with roles").get("roles"), "schemaFrom.roles", "roles")
    for i, role in enumerate(roles):
        if role not in ROLES:
            reader.fail(f"schemaFrom.roles[{i}]", f"{role!r} is not one of {', '.join(ROLES)}")
    fields = [f for f in source.fields if f.role in roles]
    if "feature" in roles:
        fields += [Field(name=d.name, type="number", role="feature", reason=d.reason) for d in source.derived]
    return fields


def load_contract(path: str | Path, source: Contract | None = None) -> Contract:
    """Parse and validate a contract file; a `ContractError` names the file, key path and expectation.

    Parsed once per file version: the code location reads every portfolio's contracts at load, and
    every asset reads its own; a file changed on disk (other size or modification time) is read again."""
    path = Path(path).resolve()
    stat = path.stat()
    return _load_contract(path, stat.st_mtime_ns, stat.st_size, source)


@functools.lru_cache(maxsize=256)
def _load_contract(path: Path, _mtime_ns: int, _size: int, source: Contract | None) -> Contract:
    raw_bytes = path.read_bytes()
    reader = _Reader(path.name)
    try:
        doc = load_yaml(raw_bytes)
    except yaml.YAMLError as exc:
        reader.fail("(document)", f"not valid YAML: {exc}")
    reader.mapping(doc, "(document)", "a mapping of contract keys")
    for key in ("id", "version", "owner"):
        if doc.get(key) in (None, ""):
            reader.fail(key, "required key missing")
    if "schema" not in doc and "schemaFrom" not in doc:
        reader.fail("schema", "required key missing (or schemaFrom)")
    tokens = reader.contract_tokens(doc)
    fields = {f.name: (f, "schemaFrom") for f in _inherited(doc, source, reader)}
    for i, entry in enumerate(reader.listing(doc.get("schema") or [], "schema", "columns")):
        field = reader.field(entry, f"schema[{i}]")
        if field.name in fields:
            other, where = fields[field.name]
            problem = f"{field.name!r} is declared twice (role {other.role} at {where}, {field.role} here)"
            if {field.role, other.role} == {"pii", "feature"}:
                problem += ": a column cannot be both PII and a feature"
            reader.fail(f"schema[{i}].name", problem)
        fields[field.name] = (field, f"schema[{i}]")
    columns = {name: f for name, (f, _) in fields.items()}
    derived: list[DerivedFeature] = []
    for i, entry in enumerate(reader.listing(doc.get("derivedFeatures") or [], "derivedFeatures", "derived features")):
        derived.append(reader.derived(entry, f"derivedFeatures[{i}]", columns, [d.name for d in derived]))
    quality = reader.mapping(doc.get("quality") or {}, "quality", "a mapping")
    tolerance = quality.get("quarantineTolerance", 0.0)
    if not (_is_number(tolerance) and 0 <= tolerance <= 1):
        reader.fail("quality.quarantineTolerance", f"expected a share between 0 and 1, got {tolerance!r}")
    return Contract(
        quality=Quality(int(quality.get("rowCountMin", 1)), quality.get("rowCountMax"), float(tolerance)),
        id=str(doc["id"]),
        version=str(doc["version"]),
        owner=str(doc["owner"]),
        fields=tuple(columns.values()),
        derived=tuple(derived),
        digest=hashlib.sha256(raw_bytes).hexdigest(),
        missing_values=tokens,
    )
