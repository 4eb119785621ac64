"""Runs that a killed process left STARTED in the local instance, marked failed.

The local CLIs (`make run`, `make approve`/`rollback`, `make backfill`) execute runs in their own
process. Killed (SIGKILL, out of memory, a closed laptop), that process records nothing more: its
runs stay STARTED forever, in the UI and in the run queue's count of runs in progress. Dagster's
run monitoring watches run workers of a deployment's daemon; these have none. So every local CLI
calls `fail_interrupted_runs` first.
"""

from __future__ import annotations

import os
import sys

import dagster as dg

from riskcore.processes import ProcessId, pid_alive_since

# On every run a local CLI executes: the host, pid and start time of the process that runs it.
RUN_PROCESS_TAG = "risk/process"


def process_tags() -> dict[str, str]:
    """The tags that name this process on the runs it executes."""
    return {RUN_PROCESS_TAG: str(ProcessId.current())}


def _process_alive(instance: dg.DagsterInstance, run: dg.DagsterRun, local_storage: bool) -> tuple[bool | None, str]:
    """Whether the process that executes `run` still runs (None: cannot be told), and how it was named."""
    process = ProcessId.parse(run.tags.get(RUN_PROCESS_TAG, ""))
    if process is not None:
        return process.alive(), f"host {process.host}, pid {process.pid}"
    if not local_storage:  # runs of a shared instance may run on other hosts: their pids mean nothing here
        return None, ""
    # Untagged (launched by `make dev`, or by an older CLI): the pid its process reported first ("Executing
    # steps in process", "Started process for run"); a process started after that report merely reuses the pid.
    for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        pid = record.dagster_event.engine_event_data.metadata.get("pid") if record.dagster_event.engine_event_data else None
        if pid is not None and str(pid.value).isdigit():
            return pid_alive_since(int(pid.value), record.timestamp), f"pid {pid.value}"
    return None, ""  # not started far enough to say (a run worker still starting)


def fail_interrupted_runs(instance: dg.DagsterInstance, out=sys.stderr) -> list[str]:
    """Mark FAILURE every STARTING or STARTED run of `instance` whose process is gone; returns their ids.

    A run's process is named by its `risk/process` tag (host, pid and start time: a reused pid is not
    taken for it), else, on an instance with SQLite run storage (one host), by the pid its first engine
    event reported, started no later than that event. A run on another host, or one whose process
    cannot be named yet, is left alone."""
    from dagster._core.storage.runs import SqliteRunStorage

    local_storage = isinstance(instance.run_storage, SqliteRunStorage)
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])):
        alive, process = _process_alive(instance, run, local_storage)
        if alive is not False:
            continue
        instance.report_run_failed(
            run,
            f"Marked failed by {os.path.basename(sys.argv[0]) or 'python'} (pid {os.getpid()}): the process that executed this run ({process})"
            " is gone, killed or crashed mid-run, so nothing else recorded its end. Rerun it: writes are atomic and leftovers are removed.",
        )
        failed.append(run.run_id)
        print(f"run {run.run_id} ({run.job_name}) was {run.status.value} but its process ({process}) is gone: marked failed", file=out)
    return failed
