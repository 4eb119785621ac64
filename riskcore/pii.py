"""Keyed-hash tokens for PII: stable (joins and de-duplication still work), not reversible
without the key, and never equal to the clear value."""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

# Development only: makes the embedded default run with no set-up. Any real deployment sets
# RISK_PII_TOKEN_KEY; the pipeline records in its metadata when this default was used.
DEVELOPMENT_TOKEN_KEY = "development-only-pii-token-key-not-a-secret"
TOKEN_PREFIX = "tok_"


def token(value: str, key: str, column: str) -> str:
    """HMAC-SHA256 over column and value: the same SSN gives one token, names never collide with SSNs."""
    digest = hmac.new(key.encode(), f"{column}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return TOKEN_PREFIX + digest[:32]


def tokenise_column(values: pd.Series, key: str, column: str) -> pd.Series:
    """Tokens for a column; missing values stay missing."""
    if not key:
        raise ValueError("PII token key is empty")
    tokens = [token(str(v), key, column) if not pd.isna(v) else None for v in values.tolist()]
    return pd.Series(tokens, index=values.index, dtype="string")


def tokenise(df: pd.DataFrame, columns: list[str], key: str) -> pd.DataFrame:
    """Replace each PII column with its token column `<name>_token`."""
    out = df.copy()
    for column in columns:
        out[f"{column}_token"] = tokenise_column(out.pop(column), key, column)
    return out
