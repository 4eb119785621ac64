from riskcore.alerts import failure_alert, redact


def test_pii_and_secrets_never_reach_an_alert():
    environment = {"RISK_PII_TOKEN_KEY": "s3cr3t-token-key", "HOME": "/home/x", "DAGSTER_PG_PASSWORD": "pgpass"}
    error = (
        "ValueError: row of jane.doe@example.com (SSN 123-45-6789, phone (555) 010-1234) failed; "
        "key s3cr3t-token-key; db postgresql://risk:pgpass@127.0.0.1:5432/dagster"
    )
    text = redact(error, environment)
    for leaked in ("jane.doe@example.com", "123-45-6789", "010-1234", "s3cr3t-token-key", "pgpass", "risk:"):
        assert leaked not in text, leaked
    assert "[email]" in text and "[ssn]" in text and "[RISK_PII_TOKEN_KEY]" in text and "postgresql://[credentials]@127.0.0.1" in text
    assert "ValueError" in text  # the useful part stays


def test_the_payload_is_slack_compatible_and_bounded():
    payload = failure_alert("monthly_scoring_job", "0123456789abcdef", "x" * 5000, "http://127.0.0.1:3000/runs/0123456789abcdef", {})
    assert payload["text"].startswith(":red_circle: monthly_scoring_job failed")
    assert "<http://127.0.0.1:3000/runs/0123456789abcdef|run 01234567>" in payload["text"]
    assert len(payload["text"]) < 800 and payload["blocks"][0]["text"]["type"] == "mrkdwn"


def test_error_text_cannot_ping_a_channel_or_forge_a_link():
    payload = failure_alert("job", "0123456789abcdef", "<!channel> see <http://evil|here>", None, {})
    assert "<!channel>" not in payload["text"] and "&lt;!channel&gt;" in payload["text"]
