"""Keyed-hash tokens for PII: stable (joins and de-duplication still work), not reversible
without the key, and never equal to the clear value."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd

# Development only: makes the embedded default run with no set-up. Any real deployment sets
# RISK_PII_TOKEN_KEY; the pipeline records in its metadata when this default was used.
DEVELOPMENT_TOKEN_KEY = "development-only-pii-token-key-not-a-secret"
TOKEN_PREFIX = "tok_"


def token(value: str, key: str, column: str) -> str:
    """HMAC-SHA256 over column and value: the same SSN gives one token, names never collide with SSNs."""
    digest = hmac.new(key.encode(), f"{column}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return TOKEN_PREFIX + digest[:32]


def _keyed_hashes(key: str, column: str) -> tuple:
    """HMAC-SHA256's inner and outer hashes with the key (and column) absorbed once (RFC 2104)."""
    block = hashlib.sha256().block_size
    raw = key.encode()
    raw = hashlib.sha256(raw).digest() if len(raw) > block else raw
    raw = raw.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in raw))
    inner.update(f"{column}\x1f".encode())
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in raw))
    return inner, outer


def tokenise_column(values: pd.Series, key: str, column: str) -> pd.Series:
    """Tokens for a column, equal to `token` (tested) but ~4x faster; missing values stay missing."""
    if not key:
        raise ValueError("PII token key is empty")
    inner, outer = _keyed_hashes(key, column)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)  # repeated values (dates of birth) hash once
    tokens = []
    for value in uniques.tolist():
        i = inner.copy()
        i.update(str(value).encode())
        o = outer.copy()
        o.update(i.digest())
        tokens.append(TOKEN_PREFIX + o.hexdigest()[:32])
    lookup = np.array(tokens + [None], dtype=object)  # code -1 (missing) picks the trailing None
    return pd.Series(lookup[codes], index=values.index, dtype="string")


def tokenise(df: pd.DataFrame, columns: list[str], key: str) -> pd.DataFrame:
    """Replace each PII column with its token column `<name>_token`."""
    out = df.copy()
    for column in columns:
        out[f"{column}_token"] = tokenise_column(out.pop(column), key, column)
    return out
