import dagster as dg

from pipelines.environment import automation_status, monitoring_cron
from pipelines.jobs import monthly_cycle_job, performance_job
from resources.source import ScoringCalendar

# On the 2nd of each month: ingest, score, monitor and report the month that just completed.
monthly_cycle_schedule = dg.build_schedule_from_partitioned_job(
    monthly_cycle_job, name="monthly_cycle_schedule", day_of_month=2, hour_of_day=6,
    description="Ingest, score, monitor and report the month that just completed.",
    default_status=dg.DefaultScheduleStatus[automation_status()],
)


@dg.schedule(job=performance_job, cron_schedule=monitoring_cron(), execution_timezone="UTC",
             default_status=dg.DefaultScheduleStatus[automation_status()])
def daily_monitoring_schedule(context: dg.ScheduleEvaluationContext, calendar: ScoringCalendar):
    """Every day, load the labels of the cohort that matured as of last month and measure the model
    that scored it (the rollback sensor reads the result); the run key makes it once per cohort."""
    from riskcore.months import add_months, month_label

    as_of = calendar.as_of_on(context.scheduled_execution_time.date())
    cohort = month_label(add_months(as_of, -calendar.performance_window_months))
    return dg.RunRequest(run_key=f"performance-{cohort}", partition_key=f"{cohort}-01", tags={"trigger": "daily_monitoring_schedule"})
