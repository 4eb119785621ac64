"""`make backfill FROM=2023-01 TO=2024-12`: regulatory reports over a range of months.

Locally (default): one run over the whole range in this process, on the instance in
$DAGSTER_HOME (the asset's single-run backfill policy), or `--per-partition`, one run a month.
With `--remote URL` it launches a partition backfill into a running deployment through
Dagster's GraphQL API instead (the daemon runs it; the UI shows it under Backfills).
"""

import argparse
import json
import sys
import time
import urllib.request

import dagster as dg

from pipelines.jobs import job_name
from riskcore.datasets import REPORT
from riskcore.months import month_label, months_between

JOB, ASSET, LOCATION = "regulatory_report_job", REPORT, "risk_scoring"
# Step events still go to the instance (and the UI); the terminal shows warnings and the summary.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on PartitionSetNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""

STATUS = """
query Status($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status numPartitions runs(limit: 1000) { runId status } }
    ... on PythonError { message }
  }
}
"""


def graphql(url: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"{url.rstrip('/')}/graphql", data=json.dumps({"query": query, "variables": variables}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error from {url}: {body['errors'][0].get('message')}")
    return body["data"]


def launch_remote(url: str, portfolio: str, months: list[str]) -> str:
    """An asset backfill of the range: the daemon runs it as the asset's policy says (one run)."""
    params = {
        "partitionNames": [f"{m}-01" for m in months],
        "assetSelection": [{"path": [portfolio, ASSET]}],
        "tags": [{"key": "trigger", "value": "make backfill"}],
        "title": f"{portfolio} {ASSET} {months[0]}..{months[-1]}",
    }
    result = graphql(url, LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"{url} refused the backfill: {result['__typename']}: {result.get('message')}")
    return result["backfillId"]


def launch_remote_per_partition(url: str, portfolio: str, months: list[str]) -> list[str]:
    """One queued run a month. (A partition backfill would still honour the asset's single-run
    policy and make one run of the range.)"""
    from urllib.parse import urlparse

    from dagster_graphql import DagsterGraphQLClient

    address = urlparse(url)
    client = DagsterGraphQLClient(address.hostname, port_number=address.port, use_https=address.scheme == "https")
    return [
        client.submit_job_execution(
            job_name(portfolio, JOB), repository_location_name=LOCATION, tags={"dagster/partition": f"{m}-01", "trigger": "make backfill"}
        )
        for m in months
    ]


def wait_remote(url: str, backfill_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        backfill = graphql(url, STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if backfill["__typename"] != "PartitionBackfill":
            raise RuntimeError(backfill.get("message"))
        if backfill["status"] not in ("REQUESTED",) or time.monotonic() > deadline:
            return backfill
        time.sleep(2)


def run_local(
    defs: dg.Definitions, instance: dg.DagsterInstance, portfolio: str, months: list[str], per_partition: bool, tags: dict[str, str]
) -> list[dg.ExecuteInProcessResult]:
    """In this process, on `instance`: the runs are the UI's like any other."""
    job = defs.resolve_job_def(job_name(portfolio, JOB))
    if per_partition:
        return [job.execute_in_process(QUIET, instance=instance, partition_key=f"{m}-01", tags=tags, raise_on_error=False) for m in months]
    range_tags = {"dagster/asset_partition_range_start": f"{months[0]}-01", "dagster/asset_partition_range_end": f"{months[-1]}-01"}
    return [job.execute_in_process(QUIET, instance=instance, tags={**tags, **range_tags}, raise_on_error=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--from", dest="first", required=True, help="first month, YYYY-MM")
    parser.add_argument("--to", dest="last", required=True, help="last month, YYYY-MM")
    parser.add_argument("--per-partition", action="store_true", help="one run per month instead of one run for the range")
    parser.add_argument("--remote", metavar="URL", help="launch into the deployment whose webserver is at URL (e.g. http://127.0.0.1:3000)")
    parser.add_argument("--wait", type=float, default=0, help="with --remote: seconds to wait for the backfill to finish")
    parser.add_argument("--portfolio", default="retail_pd", help="the portfolio whose reports are built")
    args = parser.parse_args(argv)
    months = months_between(month_label(args.first), month_label(args.last))
    tags = {"trigger": "make backfill"}
    started = time.perf_counter()
    if args.remote and args.per_partition:
        run_ids = launch_remote_per_partition(args.remote, args.portfolio, months)
        print(f"launched {len(run_ids)} runs of {job_name(args.portfolio, JOB)}, one a month: {args.remote.rstrip('/')}/runs")
        return 0
    if args.remote:
        backfill_id = launch_remote(args.remote, args.portfolio, months)
        print(f"launched backfill {backfill_id} of {ASSET} over {len(months)} months: {args.remote.rstrip('/')}/runs/b/{backfill_id}")
        if args.wait:
            backfill = wait_remote(args.remote, backfill_id, args.wait)
            failed = [r["runId"] for r in backfill["runs"] if r["status"] != "SUCCESS"]
            print(
                f"backfill {backfill_id}: {backfill['status']}, {len(backfill['runs'])} run(s)" + (f", not successful: {', '.join(failed)}" if failed else "")
            )
            # An asset backfill counts a partition done once materialised, even if a blocking check then failed its run.
            return 0 if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS") and not failed else 1
        return 0
    from pipelines.definitions import defs
    from pipelines.local_runs import fail_interrupted_runs

    fail_interrupted_runs(dg.DagsterInstance.get())
    results = run_local(defs, dg.DagsterInstance.get(), args.portfolio, months, args.per_partition, tags)
    failed = [r.run_id for r in results if not r.success]
    checks = [e for r in results for e in r.get_asset_check_evaluations()]
    problems = {m: p for e in checks if not e.passed for m, p in e.metadata["problems"].value.items()}
    print(f"{ASSET}: {len(months)} months ({months[0]}..{months[-1]}) in {len(results)} run(s), {time.perf_counter() - started:.1f} s")
    for month, problem in sorted(problems.items()):
        print(
            f"  {month}: {problem['status']}"
            + (f" ({', '.join(problem.get('changed_sections', problem.get('files', [])))})" if problem.get("changed_sections") or problem.get("files") else "")
        )
    from pipelines.environment import configured_portfolio

    store = configured_portfolio(args.portfolio).store
    print(f"reports: {store.file(ASSET, months[-1], 'report.html')} (and report.json), one folder a month")
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
