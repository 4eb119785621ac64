"""The names of the datasets (and of the assets that write them): defined once, used everywhere."""

RAW_APPLICATIONS = "raw_applications"
APPLICATIONS = "applications"
QUARANTINED = "quarantined_applications"
FEATURES = "application_features"
OUTCOMES = "loan_outcomes"
TRAINING_SET = "training_set"
RISK_MODEL = "risk_model"
MODEL_EVALUATION = "model_evaluation"
CHAMPION_MODEL = "champion_model"
SCORES = "risk_scores"
CHALLENGER_SCORES = "challenger_scores"  # the challenger's shadow scores of every application: never a decision
SWAP_SET = "swap_set"  # champion decision x challenger decision, with volumes, expected bad rates, fairness
DRIFT = "drift_report"
STABILITY = "stability_pack"
ESTIMATED = "estimated_performance"
PERFORMANCE = "model_performance"
REALISED = "realised"  # model_performance's table beside its calibration: the month's realised figures, one row
REPORT = "regulatory_report"
REVIEW_QUEUE = "review_queue"  # rows in the governance database's review tables, not a file
REVIEW_OUTCOMES = "review_outcomes"
FINAL_DECISIONS = "final_decisions"
OVERRIDE_METRICS = "override_metrics"
