"""Drift of each month against the champion's training reference."""

import dagster as dg

from pipelines.partitions import monthly_partitions
from resources.registry import CHAMPION, ModelRegistry
from resources.source import LandingFolder
from resources.storage import DatasetStore
from riskcore.months import month_label


@dg.asset(
    partitions_def=monthly_partitions, group_name="monitoring", kinds={"parquet", "evidently"}, deps=["application_features", "champion_model"],
    check_specs=[dg.AssetCheckSpec("check_feature_drift_within_policy", asset="drift_report",
                                   description="PSI of every feature and of the score: WARN from 'investigate', ERROR from 'shift' (monitoring policy).")],
)
def drift_report(context: dg.AssetExecutionContext, landing: LandingFolder, store: DatasetStore, registry: ModelRegistry):
    """Full-data statistics from the reference profile (PSI, normed Wasserstein, Jensen-Shannon),
    and an Evidently report on a seeded sample for people, saved next to the data."""
    import json

    from riskcore.drift import ReferenceProfile, drift_statistics, load_monitoring_policy
    from riskcore.features import feature_specs, model_matrix

    month = month_label(context.partition_key)
    champion = registry.by_alias(CHAMPION)
    profile_text = registry.read_text(champion.run_id, "reference_profile.json") if champion else None
    if profile_text is None:
        raise ValueError(f"the champion {champion.label if champion else '(none)'} has no reference profile: train it with this code")
    policy = load_monitoring_policy()
    specs = feature_specs(landing.applications())
    features = model_matrix(store.read("application_features", month), specs)
    current = features.assign(pd=registry.load(champion.version).predict_pd(features))
    stats = drift_statistics(ReferenceProfile.from_json(profile_text), current, policy.distance_threshold)
    written = store.write("drift_report", stats, month)
    html = _evidently_html(profile_text, current, specs, policy.sample_rows, seed=int(month.replace("-", "")))
    report_path = store.path("drift_report", month).parent / "evidently.html"
    report_path.write_text(html)
    registry.log_text(champion.run_id, html, f"monitoring/drift_{month}.html")
    by_column = stats.set_index("column")
    features_only = by_column.drop(index="pd")
    yield dg.MaterializeResult(metadata={
        **written.metadata(),
        "model": champion.label,
        "policy": policy.label,
        "drift_share": float(features_only["drifted"].mean()),
        "score_psi": float(by_column.loc["pd", "psi"]),
        **{f"psi_{name}": float(value) for name, value in by_column["psi"].items()},
        "drifted_features": ", ".join(features_only.index[features_only["drifted"]]) or "none",
        "new_categories": json.dumps({k: v for k, v in by_column["new_categories"].items() if v}),
        "evidently_report": dg.MetadataValue.path(str(report_path)),
    })
    worst = float(by_column["psi"].max())
    severity = dg.AssetCheckSeverity.ERROR if worst >= policy.shift else dg.AssetCheckSeverity.WARN
    yield dg.AssetCheckResult(
        check_name="check_feature_drift_within_policy", passed=worst < policy.investigate, severity=severity,
        metadata={"worst_psi": worst, "investigate": {k: float(v) for k, v in by_column["psi"].items() if policy.investigate <= v < policy.shift},
                  "shift": {k: float(v) for k, v in by_column["psi"].items() if v >= policy.shift}},
    )


def _evidently_html(profile_text: str, current, specs, sample_rows: int, seed: int) -> str:
    """Evidently compares raw rows, so the reference side is rebuilt from the profile's quantiles
    (numeric) and shares (categorical): a faithful stand-in of the training window, no data reload."""
    import numpy as np
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from riskcore.drift import MISSING, ReferenceProfile

    profile = ReferenceProfile.from_json(profile_text)
    rng = np.random.default_rng(seed)
    n = min(sample_rows, len(current))
    sample = current.sample(n=n, random_state=seed).reset_index(drop=True)
    reference = {}
    for name, p in profile.numeric.items():
        values = np.interp(rng.random(n), np.linspace(0, 1, len(p.quantiles)), p.quantiles) if p.quantiles else np.full(n, np.nan)
        values[rng.random(n) < p.shares[-1]] = np.nan
        reference[name] = values
    for name, p in profile.categorical.items():
        categories, shares = zip(*sorted(p.shares.items()))
        drawn = rng.choice(np.array(categories, dtype=object), size=n, p=np.array(shares) / sum(shares))
        reference[name] = np.where(drawn == MISSING, None, drawn)
    numeric = [s.name for s in specs if s.kind == "numeric"] + ["pd"]
    categorical = [s.name for s in specs if s.kind == "categorical"]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = numeric + categorical
    snapshot = Report([DataDriftPreset()]).run(Dataset.from_pandas(sample[columns], data_definition=definition),
                                               Dataset.from_pandas(pd.DataFrame(reference)[columns], data_definition=definition))
    return snapshot.get_html_str(as_iframe=False)
