"""The code location loads fast because heavy libraries stay out of it, and `dg` accepts it."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sklearn", "mlflow", "evidently", "great_expectations", "scipy", "numpy", "pandas", "pyarrow", "sqlalchemy")


def test_loading_definitions_imports_no_heavy_library():
    code = "import sys, json, pipelines.definitions; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_dg_check_defs_passes():
    dg = Path(sys.executable).parent / "dg"
    out = subprocess.run([str(dg), "check", "defs"], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All definitions loaded successfully" in out.stdout + out.stderr


def test_production_environment_needs_its_secrets_from_the_environment():
    code = "import pipelines.definitions"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "MLFLOW_"))}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True, env={**env, "RISK_ENV": "production"})
    assert out.returncode == 0, out.stderr  # loads: EnvVars resolve at run time, not at load
    bad = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**env, "RISK_ENV": "staging"})
    assert bad.returncode != 0 and "RISK_ENV='staging'" in bad.stderr


def test_production_runs_its_calendar_and_a_laptop_does_not():
    """Schedules and the retraining/rollback sensors start with a production deployment; locally
    they wait for someone to turn them on. The monitoring time is the operator's to move."""
    code = (
        "import json, pipelines.definitions as d; print(json.dumps({**{s.name: s.default_status.value for s in d.defs.schedules},"
        " **{s.name: s.default_status.value for s in d.defs.sensors}, 'cron': d.defs.get_schedule_def('retail_pd_daily_monitoring_schedule').cron_schedule}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "MLFLOW_"))}

    def statuses(**extra):
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, capture_output=True, text=True, env={**env, **extra})
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    automation = [
        f"retail_pd_{name}"
        for name in ("monthly_cycle_schedule", "daily_monitoring_schedule", "daily_review_schedule", "drift_retraining_sensor", "performance_rollback_sensor")
    ]
    production = statuses(RISK_ENV="production", RISK_MONITORING_CRON="30 5 * * *")
    local = statuses()
    assert {production[name] for name in automation} == {"RUNNING"} and production["cron"] == "30 5 * * *"
    assert {local[name] for name in automation} == {"STOPPED"} and local["cron"] == "0 7 * * *"
    assert production["run_failure_alert_sensor"] == local["run_failure_alert_sensor"] == "RUNNING"
    bad = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**env, "RISK_MONITORING_CRON": "every day"})
    assert bad.returncode != 0 and "RISK_MONITORING_CRON='every day'" in bad.stderr
