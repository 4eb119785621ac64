import dagster as dg

from pipelines.environment import automation_status
from resources.alerts import AlertWebhook
from resources.portfolios import Portfolios
from riskcore.datasets import CHAMPION_MODEL, DRIFT, ESTIMATED, FEATURES, PERFORMANCE, SWAP_SET


def latest_metadata_by_month(instance: dg.DagsterInstance, asset: dg.AssetKey, limit: int = 240) -> dict:
    """month -> metadata of the newest materialisation of each partition (records come newest first)."""
    from riskcore.months import month_label

    latest = {}
    for record in instance.fetch_materializations(asset, limit=limit).records:
        latest.setdefault(month_label(record.partition_key), {k: v.value for k, v in record.asset_materialization.metadata.items()})
    return latest


def feature_automation_sensor(portfolios: list[str]) -> dg.AutomationConditionSensorDefinition:
    """Evaluates application_features' automation condition (eager, gated by every upstream
    blocking check) for every portfolio. Running by default: it only ever acts on the newest month."""
    return dg.AutomationConditionSensorDefinition(
        "feature_automation_sensor",
        target=dg.AssetSelection.assets(*[[p, FEATURES] for p in portfolios]),
        default_status=dg.DefaultSensorStatus.RUNNING,
    )


# The retraining sensor's identity in the ledger (the actor of its decisions).
RETRAINING_IDENTITY = "drift_retraining_sensor"


def retraining_subject(portfolio: str, month: str) -> str:
    """The ledger subject of the retraining decision taken on a month's drift."""
    return f"{portfolio}/retraining/{month}"


def drift_retraining_sensor(portfolio: str, monitoring_policy: str, training_job) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{portfolio}_drift_retraining_sensor", job=training_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus[automation_status()]
    )
    def sensor(context: dg.SensorEvaluationContext, portfolios: Portfolios, alerts: AlertWebhook):
        """Launch retraining when drift persists (monitoring policy: persistence, cooldown); post an
        early warning when the newest month's estimated performance breaks the policy's rule.

        Reads only Dagster's records of drift_report and estimated_performance (no data, no
        Evidently): runs in milliseconds. The cursor keeps the last launch and the last month warned
        about, the run key makes a launch per month happen once, and every decision, launch or skip,
        says why. The decision on each newest drift month is recorded once in the governance ledger
        (the cursor remembers the month recorded; later ticks on the same month add nothing), before
        the run is requested. An estimate rests on calibration holding, so a warning alerts people
        and never launches or rolls back anything by itself."""
        import json

        from riskcore.drift import persistence_window, retraining_decision
        from riskcore.monitoring_policy import load_monitoring_policy
        from riskcore.months import month_index

        shares = {m: float(r["drift_share"]) for m, r in latest_metadata_by_month(context.instance, dg.AssetKey([portfolio, DRIFT])).items()}
        state = json.loads(context.cursor or "{}")
        policy = load_monitoring_policy(monitoring_policy)
        warned, warning = _early_warning(portfolio, context.instance, state.get("last_warning"), policy, alerts), ""
        if warned:
            state["last_warning"] = warned[0]
            warning = f"; early warning for {warned[0]} alerted, not acted on (an estimate alone launches and rolls back nothing): {warned[1]}"
        month, why = retraining_decision(shares, state.get("last_launch"), policy)
        latest = max(shares, key=month_index) if shares else None
        if latest is not None and latest != state.get("recorded"):
            considered = {m: shares.get(m) for m in persistence_window(latest, policy)}
            _record_decision(portfolios.named(portfolio), latest, month is not None, why, policy.label, considered, warned[1] if warned else None)
            state["recorded"] = latest
        if month is not None:
            state["last_launch"] = month
        context.update_cursor(json.dumps(state, sort_keys=True))
        if month is None:
            return dg.SkipReason(why + warning)
        return dg.RunRequest(
            run_key=f"drift-retraining-{month}",
            tags={
                "trigger": "drift_retraining_sensor",
                "drift_month": month,
                "decision": why,
                "monitoring_policy": policy.label,
                **({"early_warning": warning.removeprefix("; ")} if warned else {}),
            },
        )

    return sensor


def _record_decision(portfolio, month: str, launch: bool, reason: str, policy_label: str, drift_shares: dict, early_warning: str | None) -> None:
    """One ledger entry per month decided, then the head anchored as after every governance event.
    Skipped when the ledger already holds it (a cursor lost or reset, a tick that failed after the append)."""
    subject = retraining_subject(portfolio.name, month)
    ledger = portfolio.governance.ledger()
    if ledger.entries(kind="retraining_decision", subject=subject):
        return
    payload = {
        "month": month,
        "decision": "launch" if launch else "skip",
        "reason": reason,
        "monitoring_policy": policy_label,
        "drift_shares": drift_shares,
        "run_key": f"drift-retraining-{month}" if launch else None,
        "early_warning": early_warning,  # alerted, never acted on by itself
    }
    ledger.append("retraining_decision", subject, RETRAINING_IDENTITY, payload)
    portfolio.governance.anchor(portfolio.registry)


def _early_warning(portfolio: str, instance: dg.DagsterInstance, last_warning: str | None, policy, alerts: AlertWebhook) -> tuple[str, str] | None:
    """(month, why) when the newest month's estimate breaks the early-warning rule
    (riskcore.estimation), else None; posted to the alert webhook once per month."""
    from riskcore.alerts import early_warning_alert
    from riskcore.estimation import early_warning
    from riskcore.months import month_index

    estimates = latest_metadata_by_month(instance, dg.AssetKey([portfolio, ESTIMATED]))
    if not estimates:
        return None
    month = max(estimates, key=month_index)
    record = estimates[month]
    why = early_warning(record, record.get("reference_auc"), record.get("reference_default_rate"), policy)
    if why is None:
        return None
    if month != last_warning:
        alerts.post(early_warning_alert(portfolio, month, record["model"], why))
    return month, why


# The rollback sensor's identity: the promotion policy's `services` section says what it may do.
SERVICE_IDENTITY = "performance_rollback_sensor"


def performance_rollback_sensor(portfolio: str, monitoring_policy: str, rollback_job) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{portfolio}_performance_rollback_sensor",
        job=rollback_job,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus[automation_status()],
    )
    def sensor(context: dg.SensorEvaluationContext, portfolios: Portfolios):
        """Roll the champion back when its realised performance, on matured months it scored, trails
        the version it replaced on the same rows by more than the tolerance, or falls below the floor.

        Reads only Dagster's records (champion_model, model_performance): no registry call, no data.
        One rollback per champion version (run key); the rollback job refuses if the champion changed
        since, and records the rollback in the ledger. The request is signed with the service
        identity's own key (RISK_SERVICE_SIGNING_KEY); without one the run is refused and alerts."""
        import datetime as dt

        from riskcore.monitoring_policy import load_monitoring_policy
        from riskcore.performance import rollback_decision
        from riskcore.signatures import SignedRequest

        settled = context.instance.fetch_materializations(dg.AssetKey([portfolio, CHAMPION_MODEL]), limit=1).records
        if not settled:
            return dg.SkipReason("no champion recorded yet")
        champion = settled[0].asset_materialization.metadata
        version, name = champion["champion_version"].value, champion["model_name"].value
        months = {
            m: {"rows": r["rows"], "auc": r["auc"], "compared_auc": r.get("compared_auc")}
            for m, r in latest_metadata_by_month(context.instance, dg.AssetKey([portfolio, PERFORMANCE])).items()
            if r["model_version"] == version
        }
        policy = load_monitoring_policy(monitoring_policy)
        roll_back, why = rollback_decision(months, policy)
        if not roll_back:
            return dg.SkipReason(f"{name}/{version}: {why}")
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        request = portfolios.named(portfolio).governance.sign_as_service(SignedRequest("rollback", name, None, SERVICE_IDENTITY, why, now, version))
        config = {"actor": SERVICE_IDENTITY, "reason": why, "from_version": version, "signed_at": now, "signature": request.signature}
        return dg.RunRequest(
            run_key=f"performance-rollback-{name}-{version}",
            run_config={"ops": {"roll_back_champion": {"config": config}}},
            tags={"trigger": "performance_rollback_sensor", "champion": f"{name}/{version}", "decision": why, "monitoring_policy": policy.label},
        )

    return sensor


def rollout_rollback_sensor(portfolio: str, rollback_job) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{portfolio}_rollout_rollback_sensor",
        job=rollback_job,
        minimum_interval_seconds=3600,
        default_status=dg.DefaultSensorStatus[automation_status()],
    )
    def sensor(context: dg.SensorEvaluationContext, portfolios: Portfolios):
        """Roll a rollout's canary cell back to the champion when the cell's estimated performance, or
        its realised performance once labels mature, breaks the rollout policy's floor or trails the
        champion on the same rows by more than its tolerance (riskcore.rollout.rollback_decision).

        Reads only Dagster's records (swap_set's cell figures of the months at the newest month's
        rollout step). One rollback per canary version and step (run key); the request names both, so
        the rollback job refuses if the ledger's rollout moved on since the tick (that version
        promoted, rolled back or advanced). Signed with the service identity's key."""
        import datetime as dt

        from riskcore.rollout import rollback_decision
        from riskcore.signatures import SignedRequest

        swaps = latest_metadata_by_month(context.instance, dg.AssetKey([portfolio, SWAP_SET]))
        newest = swaps[max(swaps)] if swaps else {}
        version, step = newest.get("canary_version"), newest.get("rollout_step")
        if not version:
            return dg.SkipReason("no canary cell in the newest swap set")
        step = int(step)
        governance = portfolios.named(portfolio).governance
        months = {m: r for m, r in swaps.items() if r.get("canary_version") == version and r.get("rollout_step") == step}
        roll_back, why = rollback_decision(months, governance.rollout_rules())
        name = portfolios.named(portfolio).registry.model_name
        if not roll_back:
            return dg.SkipReason(f"{name}/{version} at step {step}: {why}")
        now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        request = governance.sign_as_service(SignedRequest("rollback", name, None, SERVICE_IDENTITY, why, now, version, step))
        config = {"actor": SERVICE_IDENTITY, "reason": why, "from_version": version, "from_step": step, "signed_at": now, "signature": request.signature}
        return dg.RunRequest(
            run_key=f"rollout-rollback-{name}-{version}-step-{step}",
            run_config={"ops": {"roll_back_champion": {"config": config}}},
            tags={"trigger": "rollout_rollback_sensor", "canary": f"{name}/{version}", "rollout_step": str(step), "decision": why},
        )

    return sensor


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext, alerts: AlertWebhook):
    """Every failed run is logged and, when a webhook is configured, posted to it; the message is
    redacted first (PII patterns, credentials in URLs, values of secret environment variables)."""
    import os

    from riskcore.alerts import failure_alert

    run = context.dagster_run
    link = f"{alerts.ui_url.rstrip('/')}/runs/{run.run_id}" if alerts.ui_url else None
    steps = [f"{e.step_key}: {_user_error(e.event_specific_data.error)}" for e in context.get_step_failure_events() if e.event_specific_data.error]
    error = "; ".join(steps) or context.failure_event.message or ""
    payload = failure_alert(run.job_name, run.run_id, error, link, dict(os.environ))
    context.log.error(payload["text"])
    alerts.post(payload)


def _user_error(error) -> str:
    """The user code's exception, not Dagster's wrapper around it."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()
