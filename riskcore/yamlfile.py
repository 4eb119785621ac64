"""YAML documents (contracts, policies, portfolio files), parsed with libyaml where PyYAML has it:
about ten times faster than the pure-Python parser, and the code location parses every
portfolio's files at load; and the checked settings of a policy file."""

from __future__ import annotations

from pathlib import Path

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(data: str | bytes):
    """Like `yaml.safe_load`: plain data only, no arbitrary objects."""
    return yaml.load(data, Loader=_LOADER)


def load_policy_mapping(path: str | Path):
    """(the policy file's mapping, `get(key, kind, low=None, high=None)`: its `setting` at a dotted key,
    errors naming the file and the key). A file that is not a mapping is refused outright."""
    doc = load_yaml(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping of policy settings")

    def get(key: str, kind, low: float | None = None, high: float | None = None):
        return setting(doc, key, path, kind, low, high)

    return doc, get


def setting(doc: dict, key: str, source: str | Path, kind, low: float | None = None, high: float | None = None):
    """The value at dotted `key`, checked: a policy that is silently half-read would gate nothing.

    `kind` is float, int, str, list (of strings) or a tuple of allowed values."""
    value = doc
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            raise ValueError(f"{source}: {key}: missing")
        value = value[part]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(kind, tuple):
        ok, expected = value in kind, f"one of {kind}"
    elif kind is list:
        ok, expected = isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value), "a non-empty list of strings"
    elif kind is str:
        ok, expected = isinstance(value, str) and bool(value), "a non-empty string"
    else:
        ok = (number and float(value).is_integer()) if kind is int else number
        ok = ok and (low is None or value >= low) and (high is None or value <= high)
        expected = ("an integer" if kind is int else "a number") + (f" in [{low}, {high}]" if high is not None else f" >= {low}" if low is not None else "")
    if not ok:
        raise ValueError(f"{source}: {key}: expected {expected}, got {value!r}")
    return tuple(value) if kind is list else kind(value) if kind in (float, int) else value
