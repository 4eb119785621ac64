import datetime

import dagster as dg

# Application month. Open-ended: a new partition appears when a month completes.
monthly_partitions = dg.MonthlyPartitionsDefinition(start_date="2023-01-01")

# Scores and reports of the month just ended are due by noon on the 3rd (the cycle runs on the 2nd).
MONTHLY_BY_THE_3RD = dg.FreshnessPolicy.cron(deadline_cron="0 12 3 * *", lower_bound_delta=datetime.timedelta(days=2))
