"""A failed run is posted to the webhook (a real HTTP server on loopback), redacted."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg

from pipelines.sensors import run_failure_alert_sensor
from resources.alerts import AlertWebhook


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@dg.op
def leaky_op():
    raise ValueError("applicant jane.doe@example.com, SSN 123-45-6789: ledger at postgresql://risk:hunter22@127.0.0.1/ledger")


@dg.job
def leaky_job():
    leaky_op()


def test_a_failed_run_is_posted_redacted(monkeypatch):
    monkeypatch.setenv("RISK_PII_TOKEN_KEY", "not-a-real-key-but-secret")
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with dg.instance_for_test() as instance:
            result = leaky_job.execute_in_process(instance=instance, raise_on_error=False)
            assert not result.success
            failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
            context = dg.build_run_status_sensor_context(
                sensor_name=run_failure_alert_sensor.name,
                dagster_instance=instance,
                dagster_run=result.dagster_run,
                dagster_event=failure,
                resources={"alerts": AlertWebhook(url=f"http://127.0.0.1:{server.server_port}/hook", ui_url="http://127.0.0.1:3000")},
            ).for_run_failure()
            run_failure_alert_sensor(context)
    finally:
        server.shutdown()
    (payload,) = _Receiver.received
    assert payload["text"].startswith(":red_circle: leaky_job failed") and result.run_id[:8] in payload["text"]
    assert "leaky_op: ValueError: applicant [email], SSN [ssn]" in payload["text"]
    assert "postgresql://[credentials]@127.0.0.1" in payload["text"]
    for leaked in ("jane.doe@example.com", "123-45-6789", "hunter22"):
        assert leaked not in json.dumps(payload)
