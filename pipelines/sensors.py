import dagster as dg

from pipelines.jobs import model_training_job

# Evaluates the assets' automation conditions (application_features: eager, gated by every
# upstream blocking check). Running by default: it only ever acts on the newest month.
feature_automation_sensor = dg.AutomationConditionSensorDefinition(
    "feature_automation_sensor",
    target=dg.AssetSelection.assets("application_features"),
    default_status=dg.DefaultSensorStatus.RUNNING,
)


@dg.sensor(job=model_training_job, minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.STOPPED)
def drift_retraining_sensor(context: dg.SensorEvaluationContext):
    """Launch retraining when drift persists (monitoring policy: persistence, cooldown).

    Reads only Dagster's records of drift_report (no data, no Evidently): runs in milliseconds.
    The cursor keeps the last launch, the run key makes a launch per month happen once, and
    every decision, launch or skip, says why."""
    import json

    from riskcore.drift import load_monitoring_policy, retraining_decision
    from riskcore.months import month_label

    shares: dict[str, float] = {}
    for record in context.instance.fetch_materializations(dg.AssetKey("drift_report"), limit=240).records:  # newest first
        month = month_label(record.partition_key)
        if month not in shares:
            shares[month] = float(record.asset_materialization.metadata["drift_share"].value)
    state = json.loads(context.cursor or "{}")
    policy = load_monitoring_policy()
    month, why = retraining_decision(shares, state.get("last_launch"), policy)
    if month is None:
        return dg.SkipReason(why)
    context.update_cursor(json.dumps({"last_launch": month}))
    return dg.RunRequest(run_key=f"drift-retraining-{month}", tags={"trigger": "drift_retraining_sensor", "drift_month": month,
                                                                       "decision": why, "monitoring_policy": policy.label})
