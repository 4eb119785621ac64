"""`make run` end to end on a small world, then one report rebuilt from CI's command line
(`dagster asset materialize`) on an ephemeral instance: the same bytes as the published report."""

import os
import subprocess
import sys

from riskcore.months import months_between

MONTHS = months_between("2023-01", "2023-05")


def _env(root, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_HOME"))}
    return {**env, "RISK_DATA_DIR": str(root / "data"), "RISK_ROWS_PER_MONTH": "800", "RISK_AS_OF": "2023-05",
            "RISK_PERFORMANCE_WINDOW_MONTHS": "1", "RISK_OUT_OF_TIME_MONTHS": "1", **extra}


def test_make_run_then_a_report_from_the_command_line_is_byte_identical(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    run = subprocess.run([sys.executable, "-m", "pipelines.run", "--start", MONTHS[0], "--end", MONTHS[-1]],
                         env=_env(tmp_path, DAGSTER_HOME=str(home)), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "champion model: retail_pd version 1" in run.stdout and "regulatory reports (1 run)" in run.stdout
    assert "chain intact" in run.stdout
    report = tmp_path / "data" / "datasets" / "regulatory_report" / "month=2023-05"
    published = {n: (report / n).read_bytes() for n in ("report.json", "report.html")}
    # CI: DAGSTER_HOME unset, so the CLI uses an ephemeral instance; the blocking check fails the command on any difference
    cli = subprocess.run([os.path.join(os.path.dirname(sys.executable), "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
                          "--select", "regulatory_report", "--partition", "2023-05-01"], env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert "RUN_SUCCESS" in cli.stderr + cli.stdout
    assert {n: (report / n).read_bytes() for n in published} == published
    assert not list(report.glob("rebuild-*"))
