"""Keyed-hash tokens for PII: stable (joins and de-duplication still work), not reversible
without the key, and never equal to the clear value.

A token names the key it was made under: `tok_<key id>_<digest>`, the key id being the first 8
hex of HMAC-SHA256(key, "key-id") (public, says nothing of the key), the digest the first 32 hex
of HMAC-SHA256(key, column + 0x1F + value). Tokens from before key ids (`tok_<digest>`) carry the
same digest, so they still match (`same_token`)."""

from __future__ import annotations

import hashlib
import hmac
import re

import numpy as np
import pandas as pd

from riskcore.keyed_hash import hmac_sha256_digests

TOKEN_PREFIX = "tok_"
KEY_ID_HEX = 8
DIGEST_HEX = 32
MIN_KEY_BYTES = 32  # what production requires of the token key (256 bits, the HMAC-SHA256 output size)
LEGACY_KEY_ID = "none"  # tokens made before tokens carried a key id
NOT_A_TOKEN = "not a token"
# One word (letters, digits, "_"): no PII pattern matches inside a token (tested).
TOKEN_PATTERN = rf"^tok_(?:([0-9a-f]{{{KEY_ID_HEX}}})_)?([0-9a-f]{{{DIGEST_HEX}}})$"
_TOKEN = re.compile(TOKEN_PATTERN)

# "@" and "." as people spell them to dodge filters: "jane dot doe at example dot com",
# "jane[at]example[dot]com", "jane (at) example.com", "jane @ example.com".
_AT = r"(?:\s*@\s*|\s*[\[({<]\s*(?i:at)\s*[\])}>]\s*|\s+(?i:at)\s+)"
_DOT = r"(?:\.|\s*[\[({<]\s*(?i:dot)\s*[\])}>]\s*|\s+(?i:dot)\s+)"

# What clear PII looks like in text: checked in free-text columns at ingestion and in every
# dataset after it (features, scores). RE2 (Arrow) and Python's re both run them: no lookaround.
# Digit runs must be whole (word boundaries): an amount (12500) or a year (2023) is no SSN or phone.
PII_PATTERNS = {
    "ssn": r"\b\d{3}[ -]?\d{2}[ -]?\d{4}\b",  # 900-12-3456, 900 12 3456, 900123456
    # A TLD of letters: "policy@1.0.0" is no address.
    "email": rf"[\w+-]+(?:{_DOT}[\w+-]+)*{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}[A-Za-z]{{2,}}\b",
    # 10 digits, 3-3-4, separators optional, area code maybe in parentheses, maybe a country code.
    "phone": r"(?:\+\d{1,3}[ .-]?\(?|\(|\b)\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}\b",
}


def pii_pattern_hits(values: pd.Series) -> dict[str, pd.Series]:
    """Per PII kind, which values contain it (missing values never do).

    One pass with all patterns; each kind on its own only when something matched (rare)."""
    text = values.astype(pd.StringDtype("pyarrow"))  # regexes run in Arrow (RE2), not per Python object
    any_hit = text.str.contains("|".join(f"(?:{p})" for p in PII_PATTERNS.values()), regex=True).fillna(False).astype(bool)
    if not any_hit.any():
        return {kind: any_hit for kind in PII_PATTERNS}
    return {kind: text.str.contains(pattern, regex=True).fillna(False).astype(bool) for kind, pattern in PII_PATTERNS.items()}


def key_id(key: str) -> str:
    """The key's public id: which key made a token, without revealing anything of the key."""
    if not key:
        raise ValueError("PII token key is empty")
    return hmac.new(key.encode(), b"key-id", hashlib.sha256).hexdigest()[:KEY_ID_HEX]


def _prefix(key: str) -> str:
    return f"{TOKEN_PREFIX}{key_id(key)}_"


def token(value: str, key: str, column: str) -> str:
    """HMAC-SHA256 over column and value: the same SSN gives one token, names never collide with SSNs."""
    digest = hmac.new(key.encode(), f"{column}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return _prefix(key) + digest[:DIGEST_HEX]


def token_key_id(value: str) -> str | None:
    """The key id a token carries; LEGACY_KEY_ID for a token from before key ids; None for no token."""
    found = _TOKEN.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        return None
    return found.group(1) or LEGACY_KEY_ID


def same_token(stored: str, made: str) -> bool:
    """Whether a stored token is `made` (a token with key id), or its form from before key ids."""
    stored_match, made_match = _TOKEN.fullmatch(stored or ""), _TOKEN.fullmatch(made or "")
    if stored_match is None or made_match is None or made_match.group(1) is None:
        return False
    return stored_match.group(2) == made_match.group(2) and stored_match.group(1) in (None, made_match.group(1))


def tokens_under_keys(value: str, keys: list[str], column: str) -> dict[str, str]:
    """The value's token under each key, by key id (in the keys' order): what matches it in data
    written under any of them."""
    return {key_id(key): token(value, key, column) for key in keys}


def count_key_ids(values) -> dict[str, int]:
    """How many of a column's tokens (a pandas Series or an Arrow array) were made under each key
    id (LEGACY_KEY_ID: before key ids; NOT_A_TOKEN: a value that is no token). Missing values are
    not counted. Arrow compute (RE2) throughout: millions of tokens a second."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pd.Series):
        values = pa.array(values.astype(object), type=pa.string(), from_pandas=True)
    text = pc.drop_null(pc.cast(values, pa.string()))
    with_id = pc.match_substring_regex(text, rf"^tok_[0-9a-f]{{{KEY_ID_HEX}}}_[0-9a-f]{{{DIGEST_HEX}}}$")
    legacy = int(pc.sum(pc.match_substring_regex(text, rf"^tok_[0-9a-f]{{{DIGEST_HEX}}}$")).as_py() or 0)
    start = len(TOKEN_PREFIX)
    ids = pc.value_counts(pc.utf8_slice_codeunits(pc.filter(text, with_id), start, start + KEY_ID_HEX))
    counts = {kid.as_py(): n.as_py() for kid, n in zip(ids.field("values"), ids.field("counts"))}
    counts |= {LEGACY_KEY_ID: legacy, NOT_A_TOKEN: len(text) - sum(counts.values()) - legacy}
    return {k: n for k, n in counts.items() if n}


def tokenise_column(values: pd.Series, key: str, column: str) -> pd.Series:
    """Tokens for a column, equal to `token` (tested) but ~4x faster; missing values stay missing."""
    if not key:
        raise ValueError("PII token key is empty")
    prefix = _prefix(key)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # repeated values (dates of birth) hash once
    messages = (str(value).encode() for value in uniques.tolist())
    tokens = [prefix + digest.hex()[:DIGEST_HEX] for digest in hmac_sha256_digests(key.encode(), messages, f"{column}\x1f".encode())]
    lookup = np.array(tokens + [None], dtype=object)  # code -1 (missing) picks the trailing None
    return pd.Series(lookup[codes], index=values.index, dtype="string")


def tokenise(df: pd.DataFrame, columns: list[str], key: str) -> pd.DataFrame:
    """Replace each PII column with its token column `<name>_token`."""
    out = df.copy()
    for column in columns:
        out[f"{column}_token"] = tokenise_column(out.pop(column), key, column)
    return out


def clear_texts(frame: pd.DataFrame, columns: list[str]):
    """The non-missing values of `columns` as text, spelt as `Series.astype(str)` spells them: the
    Arrow array of clear values `find_pii` looks cells up in (millions a month, kept in Arrow)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.StringDtype):
            parts.append(pc.drop_null(pa.array(values, type=pa.string(), from_pandas=True)))
        else:  # dates, numbers, objects: their distinct values spelt as before (dates: few)
            parts.append(pa.array(values.dropna().drop_duplicates().astype(str).tolist(), type=pa.string()))
    return pa.concat_arrays(parts) if parts else pa.array([], type=pa.string())


def find_pii(frame: pd.DataFrame, clear_values) -> dict[str, dict[str, int]]:
    """Per text column, how many cells look like PII or equal a known clear PII value
    (`clear_values`: strings, or the Arrow array `clear_texts` makes).

    The distinct values of all text columns are looked at once, in one pass (a month's lineage
    columns hold one value a million times), each counted as often as it occurs in its column.
    Counts only: the findings themselves must not become a new place where PII is written."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(clear_values, pa.Array):
        clear_values = pa.array(sorted(clear_values), type=pa.string())
    columns = [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])]
    counted = []
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):  # its codes are counted, its categories read once
            cells = pa.array(values, from_pandas=True)
        else:
            cells = pa.array(values.astype(pd.StringDtype("pyarrow")), type=pa.string(), from_pandas=True)
        counts = pc.value_counts(cells)
        counted.append(counts.filter(pc.is_valid(counts.field("values"))))  # a missing value is never PII
    if not counted:
        return {}
    distinct = pa.concat_arrays([pc.cast(c.field("values"), pa.string()) for c in counted])
    occurrences = np.concatenate([c.field("counts").to_numpy(zero_copy_only=False) for c in counted]).astype("int64")
    owner = np.repeat(np.arange(len(columns)), [len(c) for c in counted])
    # the distinct values stay in Arrow for the patterns (no Python string each: a million ids)
    masks = {kind: mask.to_numpy(dtype=bool) for kind, mask in pii_pattern_hits(pd.Series(pd.arrays.ArrowStringArray(distinct))).items()}
    # The month's clear values (millions) are looked up among the distinct values, not the other way:
    # the hash table is built of the smaller side.
    present = pc.filter(clear_values, pc.is_in(clear_values, value_set=distinct))
    masks["clear_value"] = pc.is_in(distinct, value_set=present).to_numpy(zero_copy_only=False)
    per_column = {kind: np.bincount(owner[mask], weights=occurrences[mask], minlength=len(columns)) for kind, mask in masks.items()}
    findings = {}
    for i, column in enumerate(columns):
        hits = {kind: int(n[i]) for kind, n in per_column.items() if n[i]}
        if hits:
            findings[column] = hits
    return findings


def pii_kinds_in_text(text: str) -> list[str]:
    """The PII kinds one piece of free text (an officer's note) contains, by the same patterns."""
    return [kind for kind, pattern in PII_PATTERNS.items() if re.search(pattern, text)]
