"""Where failure alerts go: a webhook (Slack-compatible) when configured; always the logs."""

import dagster as dg


class AlertWebhook(dg.ConfigurableResource):
    """`url` comes from RISK_ALERT_WEBHOOK_URL (an EnvVar: the UI shows the name, never the value)."""

    url: str | None = None
    ui_url: str | None = None  # links runs in messages, e.g. http://127.0.0.1:3000

    def post(self, payload: dict) -> bool:
        import json
        import urllib.request

        if not self.url:
            return False
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            return True
