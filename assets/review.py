"""Human review of referred decisions: the month's queue in the governance database, what officers
decided, the final decisions and the override metrics. The decisions themselves are made on the
review page (pipelines/review_app.py), never here; appeals are queued from its command line."""

import dagster as dg

from resources.alerts import AlertWebhook
from resources.partitions import monthly_partitions
from resources.portfolios import PortfolioResources, Portfolios
from riskcore.datasets import FEATURES, FINAL_DECISIONS, OVERRIDE_METRICS, REVIEW_OUTCOMES, REVIEW_QUEUE, SCORES
from riskcore.months import month_label


def enqueue_month(portfolio: PortfolioResources, month: str, queued_at: str, appealed: set[str] = frozenset()) -> tuple[int, int]:
    """The month's referrals (and the declined applications appealed) into the queue: (added, queued in all).
    Idempotent: an application already queued from the same source is left as it is."""
    from riskcore.review import queue_items

    store, policy = portfolio.store, portfolio.review_policy()
    rows = queue_items(
        portfolio.name, month, store.read(SCORES, month), store.read(FEATURES, month), portfolio.landing.applications().only("id"), policy, queued_at, appealed
    )
    review = portfolio.review_store()
    return review.enqueue(rows), review.queue(month, per_page=1, waiting_only=False)[1]


@dg.asset(partitions_def=monthly_partitions, group_name="review", kinds={"sql"}, deps=[SCORES, FEATURES])
def review_queue(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """The month's referred applications waiting for a credit officer (review tables beside the
    ledger); the time they were queued starts the service level's clock."""
    import datetime as dt

    month = month_label(context.partition_key)
    added, queued = enqueue_month(portfolios.of(context), month, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    return dg.MaterializeResult(metadata={"added": added, "queued": queued})


@dg.asset(partitions_def=monthly_partitions, group_name="review", kinds={"parquet"}, deps=[REVIEW_QUEUE])
def review_outcomes(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """Every decision officers made on the month's queue, read from the database, in the order made.
    The review server appends their ledger entries without registry credentials: once the chain
    verifies against the head anchored before them, the head is anchored again here, so deleting
    a decision's entry afterwards is named by `verify` like any other."""
    from riskcore.review import outcome_rows

    portfolio = portfolios.of(context)
    governance, registry = portfolio.governance, portfolio.registry
    trail, anchored = governance.verify(registry)
    if not trail.ok:
        raise ValueError(f"the governance ledger does not verify (anchored head {anchored or 'none'}): {trail.problem}; review decisions not gathered")
    outcomes = outcome_rows(portfolio.review_store().decisions(month_label(context.partition_key)), portfolio.review_policy())
    written = portfolio.store.write(REVIEW_OUTCOMES, outcomes, context.partition_key)
    return dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "complete": int(outcomes["complete"].sum()),
            "awaiting_second_officer": int((~outcomes["complete"]).sum()),
            "ledger_head_anchored": governance.anchor(registry),
        }
    )


@dg.asset(partitions_def=monthly_partitions, group_name="review", kinds={"parquet"}, deps=[SCORES, FEATURES, REVIEW_OUTCOMES])
def final_decisions(context: dg.AssetExecutionContext, portfolios: Portfolios) -> dg.MaterializeResult:
    """One row per scored application: the model's decision, or the officer's where a completed review changed it."""
    from riskcore.review import final_decisions as combine

    portfolio = portfolios.of(context)
    store, month = portfolio.store, month_label(context.partition_key)
    id_column, policy = portfolio.landing.applications().only("id"), portfolio.review_policy()
    features = store.read(FEATURES, month)
    segments = features[[id_column, policy.segment_feature]] if policy.segment_feature in features.columns else None
    final = combine(store.read(SCORES, month), store.read(REVIEW_OUTCOMES, month), id_column, policy, segments)
    written = store.write(FINAL_DECISIONS, final, month)
    rates = final["final_decision"].value_counts(normalize=True)
    return dg.MaterializeResult(
        metadata={
            **written.metadata(),
            "by_officer": int((final["decided_by"] == "officer").sum()),
            "overrides": int(final["side"].notna().sum()),
            **{f"final_{d}_rate": float(rates.get(d, 0.0)) for d in ("approve", "refer", "decline")},
        }
    )


@dg.asset(
    partitions_def=monthly_partitions,
    group_name="review",
    kinds={"json"},
    deps=[FINAL_DECISIONS],
    check_specs=[
        dg.AssetCheckSpec("check_override_rate_within_band", asset=OVERRIDE_METRICS, description="The month's override rate lies in the review policy's band."),
        dg.AssetCheckSpec(
            "check_review_sla",
            asset=OVERRIDE_METRICS,
            description="No referral of the month waits for a person longer than the review policy's sla_days; a breach posts an alert.",
        ),
    ],
)
def override_metrics(context: dg.AssetExecutionContext, portfolios: Portfolios, alerts: AlertWebhook):
    """Override rates by side, reason, officer and segment, and the referral decisions apart
    (riskcore.review.override_metrics), kept as JSON beside the final decisions; the service-level
    check reads the queue as it is now. Both checks name the review policy they judged with."""
    import datetime as dt
    import json

    from resources.storage import atomic_write_bytes
    from riskcore.alerts import review_sla_alert
    from riskcore.review import overdue, records
    from riskcore.review import override_metrics as measure

    portfolio = portfolios.of(context)
    month, policy = month_label(context.partition_key), portfolio.review_policy()
    columns = ["model_decision", "final_decision", "segment", "reason", "officer"]
    metrics = measure(records(portfolio.store.read(FINAL_DECISIONS, month, columns=columns)), policy)
    path = portfolio.store.file(OVERRIDE_METRICS, month, "override_metrics.json")
    atomic_write_bytes(path, (json.dumps(metrics, sort_keys=True, indent=2) + "\n").encode())
    yield dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            **{k: metrics[k] for k in ("applications", "reviewed", "overrides", "override_rate", "high_side_rate", "low_side_rate")},
            "by_reason": dg.MetadataValue.json(metrics["by_reason"]),
            "by_officer": dg.MetadataValue.json(metrics["by_officer"]),
            "referral_decisions": dg.MetadataValue.json(metrics["referral_decisions"]),
            "review_policy": policy.label,
        }
    )
    yield dg.AssetCheckResult(
        check_name="check_override_rate_within_band",
        passed=metrics["within_band"],
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "override_rate": metrics["override_rate"],
            "overrides": metrics["overrides"],
            "band": str(metrics["override_rate_band"]),
            "referrals_count_as_overrides": metrics["referrals_count_as_overrides"],
            "review_policy": metrics["review_policy"],
        },
    )
    waiting, _ = portfolio.review_store().queue(month, per_page=10**9)
    late = overdue(waiting, policy, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    if late:
        oldest = min(i.queued_at for i in late)
        link = f"{alerts.ui_url.rstrip('/')}/runs/{context.run_id}" if alerts.ui_url else None
        posted = alerts.post(review_sla_alert(portfolio.name, month, len(late), oldest, policy.sla_days, link))
        context.log.warning(f"{len(late)} referrals of {month} wait longer than {policy.sla_days} days (alert {'posted' if posted else 'logged only'})")
    yield dg.AssetCheckResult(
        check_name="check_review_sla",
        passed=not late,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "waiting": len(waiting),
            "overdue": len(late),
            "sla_days": policy.sla_days,
            "oldest_overdue": min((i.queued_at for i in late), default=""),
            "review_policy": policy.label,
        },
    )
