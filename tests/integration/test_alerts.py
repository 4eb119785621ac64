"""A failed run is posted to the webhook (a real HTTP server on loopback), redacted."""

import json

import dagster as dg

from tests.dagster_instance import instance_for_test
from tests.integration.alerting import alert_posted_for


@dg.op
def leaky_op():
    raise ValueError("applicant jane.doe@example.com, SSN 123-45-6789: ledger at postgresql://risk:hunter22@127.0.0.1/ledger")


@dg.job
def leaky_job():
    leaky_op()


def test_a_failed_run_is_posted_redacted(monkeypatch):
    monkeypatch.setenv("RISK_PII_TOKEN_KEY", "not-a-real-key-but-secret")
    with instance_for_test() as instance:
        result = leaky_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        payload = alert_posted_for(result, instance, ui_url="http://127.0.0.1:3000")
    assert payload["text"].startswith(":red_circle: leaky_job failed") and result.run_id[:8] in payload["text"]
    assert "leaky_op: ValueError: applicant [email], SSN [ssn]" in payload["text"]
    assert "postgresql://[credentials]@127.0.0.1" in payload["text"]
    for leaked in ("jane.doe@example.com", "123-45-6789", "hunter22"):
        assert leaked not in json.dumps(payload)
