"""`make run` killed with SIGKILL, during ingestion and then during scoring, and run again (a small
world, the real pipeline in subprocesses): no temp file is left, the datasets are those of a run
that was never interrupted, the rerun registers no second candidate (one version, one MLflow run,
one `candidate_registered` entry), and the killed runs are FAILURE in the instance, not STARTED."""

import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from pipelines.jobs import job_name
from pipelines.local_runs import RUN_PROCESS_TAG

ROOT = Path(__file__).resolve().parents[2]
# As small as a run gets: two months, both matured as of 2023-03 (one-month window): 2023-01 trains, 2023-02 is out of time.
# Monitoring and reports are left out: they add runs, not interruptions of another kind.
COMMAND = ("-m", "pipelines.run", "--prepare", "synthetic", "--start", "2023-01", "--end", "2023-02", "--only", "ingestion,training,scoring")
# Differ between two worlds by construction: the Dagster run and the MLflow run that scored a row.
RUN_IDS = ["dagster_run_id", "model_run_id"]


def _start(root: Path, name: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_"))}
    env.update(
        RISK_DATA_DIR=str(root / "data"),
        DAGSTER_HOME=str(root / "dagster_home"),
        RISK_ROWS_PER_MONTH="800",
        RISK_AS_OF="2023-03",
        RISK_PERFORMANCE_WINDOW_MONTHS="1",
        RISK_OUT_OF_TIME_MONTHS="1",
        RISK_CODE_VERSION="interruption-test",  # the same code in every process, whatever the working tree holds
        PYTHONPATH=str(ROOT),
    )
    (root / "dagster_home").mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.out", "w") as out, open(root / f"{name}.err", "w") as err:
        return subprocess.Popen([sys.executable, "-W", "ignore", *COMMAND], cwd=root, env=env, stdout=out, stderr=err)


def _finish(process: subprocess.Popen, root: Path, name: str) -> str:
    assert process.wait(timeout=900) == 0, (root / f"{name}.err").read_text()[-3000:]
    return (root / f"{name}.out").read_text()


def _kill_when(process: subprocess.Popen, root: Path, name: str, happened, what: str) -> None:
    """SIGKILL the run as soon as `happened()`: nothing in it gets to clean up or record its end."""
    deadline = time.monotonic() + 600
    while not happened():
        assert process.poll() is None, f"{name} ended before {what}: {(root / f'{name}.err').read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"{name}: no {what} within 600 s"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)  # reaped: its pid is gone, not a zombie


def _datasets(root: Path) -> dict[str, bytes]:
    folder = root / "data" / "datasets" / "retail_pd"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def _leave_a_killed_writers_temp_file(root: Path) -> Path:
    """A writer killed between its write and its rename, as SIGKILL leaves one: a real process, killed for real."""
    target = root / "data" / "datasets" / "retail_pd" / "applications" / "month=2023-02" / "part-0.parquet"
    code = (
        "import os, signal, sys\n"
        "from resources.storage import temp_path\n"
        "os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)\n"
        "handle = open(temp_path(sys.argv[1]), 'wb'); handle.write(b'PAR1 half a file'); handle.flush()\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    writer = subprocess.run([sys.executable, "-c", code, str(target)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert writer.returncode == -signal.SIGKILL, writer.stderr
    (leftover,) = target.parent.glob("part-0.parquet.tmp-*")
    return leftover


def test_a_run_killed_during_ingestion_then_during_scoring_reruns_to_the_uninterrupted_result(tmp_path):
    reference_root, root = tmp_path / "uninterrupted", tmp_path / "interrupted"
    reference = _start(reference_root, "reference")  # alongside: the same command, same seed, never interrupted

    # 1. killed during ingestion: once the first month's accepted applications are written, before its features
    first = _start(root, "first")
    applications = root / "data" / "datasets" / "retail_pd" / "applications" / "month=2023-01"
    _kill_when(first, root, "first", lambda: applications.is_dir() and any(applications.iterdir()), "ingestion of 2023-01")
    leftover = _leave_a_killed_writers_temp_file(root)

    # 2. run again, killed during scoring: once the run scoring the second month has started
    second = _start(root, "second")
    instance = dg.DagsterInstance.from_config(str(root / "dagster_home"))
    scoring = job_name("retail_pd", "monthly_scoring_job")
    started = dg.RunsFilter(job_name=scoring, statuses=[dg.DagsterRunStatus.STARTED], tags={"dagster/partition": "2023-02-01"})
    _kill_when(second, root, "second", lambda: bool(instance.get_runs(filters=started)), "scoring of 2023-02")
    assert not leftover.exists()  # the next write into its folder removed it
    assert "marked failed" in (root / "second.err").read_text()

    # 3. run again, to the end
    third = _start(root, "third")
    stdout = _finish(third, root, "third")
    assert "champion model: retail_pd version 1" in stdout, stdout
    assert "marked failed" in (root / "third.err").read_text()
    _finish(reference, reference_root, "reference")

    # no temp file anywhere: datasets, landing files, registry, Data Docs
    assert not [p for p in (root / "data").rglob("*") if ".tmp-" in p.name]

    # the datasets are the uninterrupted run's: byte for byte, scores but for the ids of the runs that made them
    got, expected = _datasets(root), _datasets(reference_root)
    assert sorted(got) == sorted(expected) and len(got) == 2 * 5 + 1  # 5 datasets a month, and the training set
    for name in got:
        if name.startswith("risk_scores/"):
            frames = [pd.read_parquet(io.BytesIO(data)).drop(columns=RUN_IDS) for data in (got[name], expected[name])]
            pd.testing.assert_frame_equal(*frames)
        else:
            assert hashlib.sha256(got[name]).hexdigest() == hashlib.sha256(expected[name]).hexdigest(), name

    # one candidate: the rerun's training found the version the killed run had registered
    from mlflow import MlflowClient

    uri = f"sqlite:///{root}/data/mlflow/mlflow.db"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    (version,) = client.search_model_versions("name = 'retail_pd'")
    assert [r.info.run_id for r in client.search_runs([e.experiment_id for e in client.search_experiments()])] == [version.run_id]
    # and the same governance trail as the uninterrupted run: one registration, one evaluation, one promotion
    trails = []
    for world in (root, reference_root):
        with sqlite3.connect(world / "data" / "governance" / "ledger.db") as ledger:
            trails.append(ledger.execute("select kind, subject from governance_ledger order by seq").fetchall())
    assert trails[0] == trails[1] and trails[0].count(("candidate_registered", "retail_pd/1")) == 1

    # the two killed runs are FAILURE, saying why; nothing is left STARTED
    runs = instance.get_runs()
    assert not [r.run_id for r in runs if r.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING)]
    failed = [r for r in runs if r.status == dg.DagsterRunStatus.FAILURE]
    assert sorted((r.job_name, r.tags["dagster/partition"]) for r in failed) == [
        (job_name("retail_pd", "monthly_ingestion_job"), "2023-01-01"),
        (scoring, "2023-02-01"),
    ]
    for run in failed:
        assert run.tags[RUN_PROCESS_TAG].split("-")[-2] in {str(first.pid), str(second.pid)}
        (failure,) = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert "is gone, killed or crashed mid-run" in failure.dagster_event.message
    instance.dispose()
