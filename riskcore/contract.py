"""Data contracts: what each column of a dataset is, and the rules its rows must keep.

The pipeline learns every column's role (id, timestamp, pii, sensitive, feature, target) from
here, so a new data source needs a new contract file, not new code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

ROLES = ("id", "timestamp", "pii", "sensitive", "feature", "target", "attribute")
TYPES = ("string", "integer", "number", "date")


@dataclass(frozen=True)
class ReasonCode:
    code: str
    text: str


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


def _reason(raw: dict | None) -> ReasonCode | None:
    return ReasonCode(str(raw["code"]), str(raw["text"])) if raw else None


def _inherited(doc: dict, source: Contract | None, where: str) -> list[Field]:
    """`schemaFrom: {roles: [...]}`: the columns of the source contract with those roles, so a
    downstream contract (features) follows whatever source it is built from."""
    spec = doc.get("schemaFrom")
    if not spec:
        return []
    if source is None:
        raise ValueError(f"{where}: declares schemaFrom but no source contract was given")
    roles = set(spec["roles"])
    fields = [f for f in source.fields if f.role in roles]
    if "feature" in roles:
        fields += [Field(name=d.name, type="number", role="feature", reason=d.reason) for d in source.derived]
    return fields


def load_contract(path: str | Path, source: Contract | None = None) -> Contract:
    """Parse and validate a contract file; errors name the file and the offending entry."""
    path = Path(path)
    raw_bytes = path.read_bytes()
    doc = yaml.safe_load(raw_bytes)
    where = path.name
    for key in ("id", "version", "owner"):
        if key not in doc:
            raise ValueError(f"{where}: contract lacks '{key}'")
    if "schema" not in doc and "schemaFrom" not in doc:
        raise ValueError(f"{where}: contract lacks 'schema'")
    fields = _inherited(doc, source, where)
    for entry in doc.get("schema") or []:
        name = entry.get("name")
        ftype, role = entry.get("logicalType"), entry.get("role")
        if ftype not in TYPES:
            raise ValueError(f"{where}: column {name!r} has logicalType {ftype!r}; expected one of {TYPES}")
        if role not in ROLES:
            raise ValueError(f"{where}: column {name!r} has role {role!r}; expected one of {ROLES}")
        allowed = entry.get("allowedValues")
        fields.append(
            Field(
                name=name,
                type=ftype,
                role=role,
                required=bool(entry.get("required", False)),
                unique=bool(entry.get("unique", False)),
                minimum=entry.get("minimum"),
                maximum=entry.get("maximum"),
                allowed_values=tuple(allowed) if allowed is not None else None,
                pattern=entry.get("pattern"),
                reason=_reason(entry.get("reason")),
                max_null_share=entry.get("maxNullShare"),
                median_between=tuple(entry["medianBetween"]) if entry.get("medianBetween") else None,
                not_in_future=bool(entry.get("notInFuture", False)),
                free_text=bool(entry.get("freeText", False)),
            )
        )
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: duplicate column names in schema")
    derived = []
    for entry in doc.get("derivedFeatures", []) or []:
        if bool(entry.get("expression")) == bool(entry.get("function")):
            raise ValueError(f"{where}: derived feature {entry.get('name')!r} needs exactly one of expression/function")
        derived.append(
            DerivedFeature(
                name=entry["name"],
                expression=entry.get("expression"),
                function=entry.get("function"),
                args=tuple(entry.get("args", ())),
                reason=_reason(entry.get("reason")),
            )
        )
    quality = doc.get("quality") or {}
    tolerance = float(quality.get("quarantineTolerance", 0.0))
    if not 0 <= tolerance <= 1:
        raise ValueError(f"{where}: quality.quarantineTolerance must be a share between 0 and 1")
    return Contract(
        quality=Quality(int(quality.get("rowCountMin", 1)), quality.get("rowCountMax"), tolerance),
        id=str(doc["id"]),
        version=str(doc["version"]),
        owner=str(doc["owner"]),
        fields=tuple(fields),
        derived=tuple(derived),
        digest=hashlib.sha256(raw_bytes).hexdigest(),
    )
