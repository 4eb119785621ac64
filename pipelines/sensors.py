import dagster as dg

# Evaluates the assets' automation conditions (application_features: eager, gated by every
# upstream blocking check). Running by default: it only ever acts on the newest month.
feature_automation_sensor = dg.AutomationConditionSensorDefinition(
    "feature_automation_sensor",
    target=dg.AssetSelection.assets("application_features"),
    default_status=dg.DefaultSensorStatus.RUNNING,
)
