import dagster as dg

# Application month. Open-ended: a new partition appears when a month completes.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date="2023-01-01")
