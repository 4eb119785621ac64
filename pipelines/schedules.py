import dagster as dg

from pipelines.jobs import monthly_scoring_job

# On the 2nd of each month, ingest and score the month that just completed.
monthly_scoring_schedule = dg.build_schedule_from_partitioned_job(
    monthly_scoring_job, name="monthly_scoring_schedule", day_of_month=2, hour_of_day=6
)
