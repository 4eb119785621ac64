"""Alert messages that are safe to send outside: no PII, no secrets."""

from __future__ import annotations

import re

from riskcore.escaping import slack_link, slack_text
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
    # Slack's control characters: no text (error, job, run id) becomes a link, a mention or an
    # @channel; the only link is the run's, and only to an http(s) URL.
    where = slack_link(run_url, f"run {run_id[:8]}") if run_url else slack_text(f"run {run_id}")
    text = f":red_circle: {slack_text(job)} failed ({where}): {slack_text(error)}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def review_sla_alert(portfolio: str, month: str, overdue: int, oldest_queued_at: str, sla_days: int, run_url: str | None) -> dict:
    """Referrals waiting for a person beyond the review policy's service level: counts and dates only, no application."""
    where = slack_link(run_url, "the run") if run_url else "the override_metrics check"
    text = (
        f":hourglass: {slack_text(portfolio)} {slack_text(month)}: {overdue} referral(s) waiting for review longer than {sla_days} days "
        f"(oldest queued {slack_text(oldest_queued_at)}); see {where}"
    )
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def early_warning_alert(portfolio: str, month: str, model: str, why: str) -> dict:
    """A Slack-compatible payload for an estimate that breaks the early-warning rule: figures and
    names only (no row, no PII), and it says that nothing was launched or rolled back."""
    text = (
        f":warning: {slack_text(portfolio)} {slack_text(month)}: estimated performance of {slack_text(model)} before labels mature: {slack_text(why)}."
        " Alert only: no retraining or rollback is launched on an estimate; the back-test follows when labels mature."
    )
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
