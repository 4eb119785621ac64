"""What sensors post (a failed run's alert, an early warning), received by a real webhook on loopback."""

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg

from pipelines.sensors import run_failure_alert_sensor
from resources.alerts import AlertWebhook


@contextlib.contextmanager
def webhook_receiver():
    """A real webhook on loopback: yields (its URL, the payloads it has received so far)."""
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()


def alert_posted_for(result, instance, ui_url: str | None = None) -> dict:
    """The one payload the sensor posts for `result` (a failed in-process run on `instance`)."""
    with webhook_receiver() as (url, received):
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        context = dg.build_run_status_sensor_context(
            sensor_name=run_failure_alert_sensor.name,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=failure,
            resources={"alerts": AlertWebhook(url=url, ui_url=ui_url)},
        ).for_run_failure()
        run_failure_alert_sensor(context)
    (payload,) = received
    return payload
