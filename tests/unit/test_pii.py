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


def _month_with_pii():
    """A landing month's PII as read (text in Arrow, dates as dates) and a scores-like frame of
    one application per row: lineage columns holding one value a thousand times, an id column."""
    import numpy as np

    n = 1000
    clear = pd.DataFrame(
        {
            "full_name": pd.Series([f"Jane Doe {i}" for i in range(n)], dtype=pd.StringDtype("pyarrow")),
            "email": pd.Series([f"jane{i}@example.com" if i % 7 else None for i in range(n)], dtype=pd.StringDtype("pyarrow")),
            "date_of_birth": pd.to_datetime("1980-01-01") + pd.to_timedelta(np.arange(n) % 40, unit="D"),
        }
    )
    scores = pd.DataFrame(
        {
            "application_id": pd.Series([f"APP-{i:06d}" for i in range(n)], dtype=pd.StringDtype("pyarrow")),
            "model_name": "retail_pd_model",
            "decision": np.where(np.arange(n) % 3, "approve", "refer"),
            "reason_code_1": pd.Series(["income_low"] * (n - 1) + [None], dtype="object"),
            "pd": np.linspace(0.01, 0.5, n),
        }
    )
    return clear, scores


def test_clear_texts_spell_each_value_as_str_did():
    from riskcore.pii import clear_texts

    clear, _ = _month_with_pii()
    before = {str(v) for c in clear.columns for v in clear[c].dropna().astype(str)}  # what the check compared with before
    assert set(clear_texts(clear, list(clear.columns)).to_pylist()) == before
    assert "1980-01-05" in before and len(clear_texts(clear, [])) == 0


@pytest.mark.parametrize("column", ["application_id", "model_name", "decision", "reason_code_1"])
@pytest.mark.parametrize("planted", ["Jane Doe 17", "jane3@example.com", "1980-01-05", "call 212 555 0199", "900-12-3456"])
@pytest.mark.parametrize("as_categories", [False, True], ids=["text", "categories"])  # categories: as the checks read a dataset
def test_a_clear_value_or_pii_pattern_hidden_in_any_text_column_is_counted(column, planted, as_categories):
    from riskcore.pii import clear_texts, find_pii

    clear, scores = _month_with_pii()
    values = clear_texts(clear, list(clear.columns))
    assert find_pii(scores, values) == {}
    hidden = scores.copy()
    hidden[column] = hidden[column].astype(object)
    hidden.loc[[10, 500], column] = planted  # twice: cells are counted, not distinct values
    if as_categories:
        hidden = hidden.astype({c: "category" for c in ["application_id", "model_name", "decision", "reason_code_1"]})
    found = find_pii(hidden, values)
    assert list(found) == [column]
    kinds = found[column]
    assert kinds.get("clear_value", 0) == (2 if planted in set(values.to_pylist()) else 0)
    assert sum(kinds.values()) >= 2 and all(n == 2 for n in kinds.values())


def test_find_pii_takes_a_set_of_clear_values_and_ignores_missing_and_numeric_cells():
    from riskcore.pii import find_pii

    frame = pd.DataFrame({"note": ["ok", None, "secret-name", "secret-name"], "amount": [12500, 2023, 900123456, 1]})
    assert find_pii(frame, {"secret-name"}) == {"note": {"clear_value": 2}}
    assert find_pii(frame, set()) == {}
    assert find_pii(frame[["amount"]], {"1"}) == {}
