"""Alert messages that are safe to send outside: no PII, no secrets."""

from __future__ import annotations

import re

from riskcore.pii import PII_PATTERNS

SECRET_NAME = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN|CREDENTIAL)", re.IGNORECASE)
URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@", re.IGNORECASE)
MAX_ERROR_CHARS = 600


def redact(text: str, environment: dict[str, str]) -> str:
    """Replace what looks like PII (SSN, e-mail, phone), credentials inside URLs, and the value of
    every environment variable whose name says it is a secret."""
    for name, value in environment.items():
        if SECRET_NAME.search(name) and value and len(value) >= 4:
            text = text.replace(value, f"[{name}]")
    text = URL_CREDENTIALS.sub(r"\1[credentials]@", text)
    for kind, pattern in PII_PATTERNS.items():
        text = re.sub(pattern, f"[{kind}]", text)
    return text


def failure_alert(job: str, run_id: str, error: str, run_url: str | None, environment: dict[str, str]) -> dict:
    """A Slack-compatible payload (`text`, plus `blocks` for richer clients)."""
    error = redact(error.strip(), environment)
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + " ..."
    # Slack's control characters: an error text must not become a link or an @channel.
    error = error.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    where = f"<{run_url}|run {run_id[:8]}>" if run_url else f"run {run_id}"
    text = f":red_circle: {job} failed ({where}): {error}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
