import dagster as dg

from pipelines.environment import automation_status, monitoring_cron
from resources.portfolios import Portfolios
from riskcore.datasets import FINAL_DECISIONS, OVERRIDE_METRICS, PERFORMANCE, REVIEW_OUTCOMES

IN_FLIGHT = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def monthly_cycle_schedule(portfolio: str, cycle_job) -> dg.ScheduleDefinition:
    """On the 2nd of each month: ingest, score, monitor and report the month that just completed."""
    return dg.build_schedule_from_partitioned_job(
        cycle_job,
        name=f"{portfolio}_monthly_cycle_schedule",
        day_of_month=2,
        hour_of_day=6,
        description="Ingest, score, monitor and report the month that just completed.",
        default_status=dg.DefaultScheduleStatus[automation_status()],
    )


def daily_monitoring_schedule(portfolio: str, performance_job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{portfolio}_daily_monitoring_schedule",
        job=performance_job,
        cron_schedule=monitoring_cron(),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus[automation_status()],
    )
    def schedule(context: dg.ScheduleEvaluationContext, portfolios: Portfolios):
        """Every day, measure the cohort whose labels matured as of last month, until it is measured:
        a day whose run failed (the outcomes file came late) is tried again the next day. A schedule's
        run key only dedupes within one tick, so the instance's records decide what is done."""
        from riskcore.months import add_months, month_label

        calendar = portfolios.named(portfolio).calendar
        as_of = calendar.as_of_on(context.scheduled_execution_time.date())
        cohort = month_label(add_months(as_of, -calendar.performance_window_months))
        partition = f"{cohort}-01"
        measured = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey([portfolio, PERFORMANCE]), asset_partitions=[partition]), limit=1
        ).records
        if measured:
            return dg.SkipReason(f"{cohort} was measured by run {measured[0].run_id}")
        run_key = f"{portfolio}-performance-{cohort}"
        in_flight = context.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}, statuses=IN_FLIGHT), limit=1)
        if in_flight:
            return dg.SkipReason(f"{cohort} is being measured by run {in_flight[0].run_id}")
        return dg.RunRequest(run_key=run_key, partition_key=partition, tags={"trigger": "daily_monitoring_schedule"})

    return schedule


def daily_review_schedule(portfolio: str, review_job) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{portfolio}_daily_review_schedule",
        job=review_job,
        cron_schedule=monitoring_cron(),
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus[automation_status()],
    )
    def schedule(context: dg.ScheduleEvaluationContext, portfolios: Portfolios):
        """Every day, the last scored month's review outcomes, final decisions and override metrics:
        what officers decided since yesterday is counted, and referrals past the service level alert
        (the queue itself is filled by the monthly cycle)."""
        from riskcore.months import month_label

        month = month_label(portfolios.named(portfolio).calendar.as_of_on(context.scheduled_execution_time.date()))
        day = context.scheduled_execution_time.date().isoformat()
        return dg.RunRequest(
            run_key=f"{portfolio}-review-{month}-{day}",
            partition_key=f"{month}-01",
            asset_selection=[dg.AssetKey([portfolio, name]) for name in (REVIEW_OUTCOMES, FINAL_DECISIONS, OVERRIDE_METRICS)],
            tags={"trigger": "daily_review_schedule"},
        )

    return schedule
