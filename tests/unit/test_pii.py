import pandas as pd

from riskcore.pii import DEVELOPMENT_TOKEN_KEY, token, tokenise


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
