"""Runs a killed local process left STARTED are marked failed; a run whose process runs, or cannot be asked, is not."""

import subprocess
import sys

import dagster as dg
from dagster._core.events import EngineEventData

from pipelines.local_runs import RUN_PROCESS_TAG, fail_interrupted_runs, process_tags
from riskcore.processes import ProcessId


def _gone_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(process.stdout)


def test_started_runs_whose_process_is_gone_are_marked_failed_and_no_others(tmp_path):
    me, gone = ProcessId.current(), _gone_pid()
    with dg.DagsterInstance.local_temp(str(tmp_path)) as instance:

        def run(name: str, tags: dict | None = None, reported_pid: int | None = None, status=dg.DagsterRunStatus.STARTED) -> str:
            added = instance.add_run(dg.DagsterRun(job_name=name, status=status, tags=tags or {}))
            if reported_pid is not None:  # as the in-process executor and a run worker report theirs
                instance.report_engine_event(f"Executing steps in process (pid: {reported_pid})", added, EngineEventData.in_process(reported_pid))
            return added.run_id

        runs = {
            "killed": run("killed", {RUN_PROCESS_TAG: str(ProcessId(me.host, gone, 1234))}),
            "pid_reused": run("pid_reused", {RUN_PROCESS_TAG: str(ProcessId(me.host, me.pid, me.started + 1))}),
            "untagged_killed": run("untagged_killed", reported_pid=gone),
            "running_here": run("running_here", process_tags()),
            "untagged_running": run("untagged_running", reported_pid=me.pid),
            "other_host": run("other_host", {RUN_PROCESS_TAG: str(ProcessId("another-host", gone, 1234))}),
            "not_started_far_enough": run("not_started_far_enough", status=dg.DagsterRunStatus.STARTING),
            "finished": run("finished", {RUN_PROCESS_TAG: str(ProcessId(me.host, gone, 1234))}, status=dg.DagsterRunStatus.SUCCESS),
        }
        failed = fail_interrupted_runs(instance, out=sys.stdout)
        assert sorted(failed) == sorted(runs[k] for k in ("killed", "pid_reused", "untagged_killed"))
        statuses = {name: instance.get_run_by_id(run_id).status for name, run_id in runs.items()}
        assert {n for n, s in statuses.items() if s == dg.DagsterRunStatus.FAILURE} == {"killed", "pid_reused", "untagged_killed"}
        assert statuses["finished"] == dg.DagsterRunStatus.SUCCESS and statuses["not_started_far_enough"] == dg.DagsterRunStatus.STARTING
        (failure,) = instance.all_logs(runs["killed"], of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"(host {me.host}, pid {gone}) is gone" in failure.dagster_event.message
        assert fail_interrupted_runs(instance) == []  # once
