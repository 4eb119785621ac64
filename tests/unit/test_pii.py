import re

import pandas as pd
import pytest

from resources.pii import DEVELOPMENT_TOKEN_KEY
from riskcore.pii import PII_PATTERNS, pii_pattern_hits, token, tokenise


def test_tokens_are_stable_keyed_and_never_the_clear_value():
    assert token("900-12-3456", "k1", "ssn") == token("900-12-3456", "k1", "ssn")
    assert token("900-12-3456", "k1", "ssn") != token("900-12-3456", "k2", "ssn")
    assert token("900-12-3456", "k1", "ssn") != token("900-12-3456", "k1", "phone")
    assert "900-12-3456" not in token("900-12-3456", "k1", "ssn")


def test_tokenise_replaces_columns_and_keeps_missing_values_missing():
    frame = pd.DataFrame({"id": [1, 2, 3], "email": ["a@example.com", None, "a@example.com"], "x": [1.0, 2.0, 3.0]})
    out = tokenise(frame, ["email"], DEVELOPMENT_TOKEN_KEY)
    assert "email" not in out.columns and "email_token" in out.columns
    assert out["email_token"].isna().tolist() == [False, True, False]
    assert out["email_token"][0] == out["email_token"][2]  # joins still work
    assert not out.astype(str).apply(lambda c: c.str.contains("@")).any().any()


def test_fast_column_tokens_equal_the_reference_hmac():
    from riskcore.pii import tokenise_column

    values = pd.Series(["900-12-3456", None, "x" * 300, "é"])
    long_key = "k" * 100  # longer than the hash block: hashed first, per RFC 2104
    for key in ("short", long_key):
        out = tokenise_column(values, key, "ssn")
        assert out[1] is pd.NA
        assert [out[i] for i in (0, 2, 3)] == [token(values[i], key, "ssn") for i in (0, 2, 3)]


SPELLINGS = {
    "ssn": ["900-12-3456", "900 12 3456", "SSN 900123456", "ask for 900-12-3456 please"],
    "phone": ["+1 212 555 0199", "(212) 555-0199", "call 2125550199", "212.555.0199", "+12125550199", "1-800-555-0199"],
    "email": [
        "jane.doe@example.com",
        "jane dot doe at example dot com",
        "Jane DOT Doe AT Example DOT com",
        "jane[at]example[dot]com",
        "jane (at) example.com",
        "jane @ example.com",
        "jane{at}example{dot}org",
    ],
}
NOT_PII = [
    "12500",  # a loan amount
    "2023",  # a year
    "loan of 12500 in 2023",
    "12,500",
    "APP-202303-000001",
    "2023-03-01",
    "2023-03-01 00:00:00",
    "policy@1.0.0",
    "loan_applications@1.2.0+abc123def456",
    "Engineer at Salas Inc.",
    "works at home",
    "c5f4a1b2-1234-5678-9012-123456789012",  # a run id
    "tok_0123456789abcdef0123456789abcdef",  # a token from before key ids
    "tok_90012345_0123456789abcdef0123456789abcdef",  # a token with its key id
]


@pytest.mark.parametrize("kind, text", [(k, t) for k, texts in SPELLINGS.items() for t in texts])
def test_pii_is_found_however_it_is_spelled(kind, text):
    """Arrow's RE2 (ingestion, PII checks) and Python's re (alert redaction) agree."""
    hits = pii_pattern_hits(pd.Series([text]))
    assert hits[kind][0], text
    assert re.search(PII_PATTERNS[kind], text), text


@pytest.mark.parametrize("text", NOT_PII)
def test_amounts_years_dates_and_ids_are_not_pii(text):
    hits = pii_pattern_hits(pd.Series([text]))
    assert not any(mask[0] for mask in hits.values()), text
    assert not any(re.search(p, text) for p in PII_PATTERNS.values()), text
