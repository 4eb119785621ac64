"""A synthetic world on a test instance: real pipeline, real MLflow, small sizes, time moving forward."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from pipelines.prepare import SyntheticSettings, deliver_synthetic
from pipelines.sensors import latest_metadata_by_month
from resources.alerts import AlertWebhook
from resources.registry import CHALLENGER, CHAMPION
from riskcore.months import month_label, months_between
from tests.integration.portfolio_files import deployment, write_portfolio
from tests.signing import key_of

ROWS = 2000
TRAINING_MONTHS = months_between("2023-01", "2023-04")  # labels matured as of 2023-05 (one-month window)
APPROVER = "model.risk.officer@example.com"
LAST_MONTH = "2025-12"


def reorder_training_set(store, seed: int) -> None:
    """The same rows in another order: another training-set digest, so the next risk_model registers
    a new version (retraining on the same digest and code returns the version it made before)."""
    frame = store.read("training_set")
    store.write("training_set", frame.sample(frac=1, random_state=seed).reset_index(drop=True))


class World:
    """One world moving forward in time; `as_of` is the month the pipeline runs in.

    Its portfolio is `scenario_<name>`: its own assets, model and ledger subjects. By default the
    synthetic retail book (`scenario` from `start`); with `base` (a portfolio file) and `deliver`
    (landing folder, as-of month -> files written), any other source."""

    def __init__(
        self,
        root,
        mlflow_uri,
        instance,
        name: str,
        scenario: str = "none",
        start: str = "2024-06",
        rows: int = ROWS,
        base="retail_pd.yaml",
        deliver=None,
        policies: dict[str, str] | None = None,
    ):
        self.instance, self.root, self.mlflow_uri, self.base, self.policies = instance, root, mlflow_uri, base, policies
        self.name = f"scenario_{name}"
        settings = SyntheticSettings(seed=11, rows_per_month=rows, scenario=scenario, scenario_start=start)
        self.deliver = deliver or (lambda landing, as_of: deliver_synthetic(landing, months_between("2023-01", LAST_MONTH), as_of, 1, settings))
        self.cursors: dict[str, str | None] = {}
        self.alerts = AlertWebhook()  # where sensors post alerts; a test points it at a receiver (tests.integration.alerting)
        self.set_as_of("2023-05")

    def set_as_of(self, month: str) -> None:
        """Time moves on: the portfolio's evaluation month, and the files upstream has delivered by then."""
        self.as_of = month
        calendar = {"performance_window_months": 1, "out_of_time_months": 1, "evaluation_month": month}
        file = write_portfolio(self.root / "portfolios", self.name, self.base, calendar=calendar, policies=self.policies)
        resources = deployment(self.root, [file], self.mlflow_uri, key="scenario-test-key")
        self.resources = resources
        self.defs = build_definitions(resources)
        self.portfolio = resources["portfolios"].named(self.name)
        self.store, self.registry, self.governance = self.portfolio.store, self.portfolio.registry, self.portfolio.governance
        self.deliver(self.portfolio.landing.path, month)

    def key(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, asset])

    def job(self, job: str) -> str:
        return job_name(self.name, job)

    def run(self, job: str, month: str | None = None, assets=None, raise_on_error=True, **kwargs):
        # Dagster 1.13 leaves its current defs-state storage (a context variable) pointing at the last
        # instance entered, even after that instance is disposed and its temp dir deleted: loading these
        # definitions would then read a previous test's deleted instance. Use this world's own.
        from dagster._core.storage.defs_state.base import set_defs_state_storage

        with set_defs_state_storage(self.instance.defs_state_storage):
            return self.defs.resolve_job_def(self.job(job)).execute_in_process(
                instance=self.instance,
                partition_key=f"{month_label(month)}-01" if month else None,
                raise_on_error=raise_on_error,
                asset_selection=[self.key(a) for a in assets] if assets else None,
                **kwargs,
            )

    def train_baseline(self):
        for month in TRAINING_MONTHS:
            self.run("monthly_ingestion_job", month)
        self.run("model_training_job")
        return self.registry.by_alias(CHAMPION)

    def train_noisy_champion_and_clean_challenger(self):
        """A champion that learnt from labels of which a third were shuffled, and a challenger from
        the same rows, clean: a real gain for a staged rollout to prove (a plain retrain differs by noise)."""
        for month in TRAINING_MONTHS:
            self.run("monthly_ingestion_job", month)
        self.run("model_training_job", assets=["training_set"])
        clean = self.store.read("training_set")
        noisy = clean.copy()
        rows = noisy.sample(frac=0.35, random_state=1).index
        noisy.loc[rows, "defaulted"] = noisy.loc[rows, "defaulted"].sample(frac=1.0, random_state=2).to_numpy()
        self.store.write("training_set", noisy)
        self.run("model_training_job", assets=["risk_model", "model_evaluation", "champion_model"])  # bootstrap: the first version is champion
        champion = self.registry.by_alias(CHAMPION)
        self.store.write("training_set", clean)
        self.run("model_training_job", assets=["risk_model", "model_evaluation", "champion_model"])
        return champion, self.registry.by_alias(CHALLENGER)

    def governance_cli(self, *args: str, identity: str) -> subprocess.CompletedProcess:
        """`python -m pipelines.governance <args> --approver identity --key <its key>` in a child process, as
        `make canary|advance|rollback` run it: a production deployment of this world's portfolio, registry,
        ledger and Dagster instance, given as the environment variables an operator sets."""
        from pipelines.environment import LEDGER_KEY_VAR, ROLLOUT_KEY_VAR
        from resources.pii import PII_KEY_VAR

        key = self.root / "keys" / identity
        key.parent.mkdir(exist_ok=True)
        key.write_text(key_of(identity)[0])
        key.chmod(0o600)
        portfolios = self.resources["portfolios"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_"))}
        env.update(
            {
                "RISK_ENV": "production",
                "RISK_PORTFOLIOS": ",".join(portfolios.files),
                "RISK_LANDING_URL": portfolios.landing_root,
                "RISK_DATASETS_URL": portfolios.datasets_root,
                "MLFLOW_TRACKING_URI": portfolios.tracking_uri,
                "RISK_LEDGER_URL": portfolios.ledger_url,
                LEDGER_KEY_VAR: portfolios.ledger_key,
                ROLLOUT_KEY_VAR: portfolios.rollout_key,
                PII_KEY_VAR: "production-test-key-of-forty-characters!",
                "DAGSTER_HOME": self.instance.root_directory,
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            }
        )
        command = [sys.executable, "-W", "ignore", "-m", "pipelines.governance", *args, "--portfolio", self.name, "--approver", identity, "--key", str(key)]
        return subprocess.run(command, cwd=self.root, env=env, capture_output=True, text=True, timeout=600)

    def sensor(self, short_name: str):
        return next(s for s in self.defs.sensors if s.name == f"{self.name}_{short_name}")

    def tick(self, sensor):
        """One evaluation, the cursor carried over like the daemon does."""
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursors.get(sensor.name), resources={**self.resources, "alerts": self.alerts}
        ) as context:
            result = sensor(context)
            self.cursors[sensor.name] = context.cursor
        return result

    def monitor(self, months: list[str]) -> dict[str, object]:
        """The monthly cycle: ingest (when new) and score, report drift, stability and estimated
        performance, let the retraining sensor decide; month -> its decision."""
        decisions = {}
        for month in months:
            self.run("monthly_scoring_job", month, assets=None if month not in TRAINING_MONTHS else ["risk_scores"])
            self.run("monitoring_job", month)
            decisions[month] = self.tick(self.sensor("drift_retraining_sensor"))
        return decisions

    def drift(self, month: str) -> dict:
        return latest_metadata_by_month(self.instance, self.key("drift_report"))[month]


HEAVY_TAILS = Path(__file__).parent / "portfolios" / "heavy_tails.yaml"


def heavy_tail_files(rows: int, seed: int, change=None):
    """A `deliver` for the heavy_tails portfolio: every month to LAST_MONTH drawn by the drift
    bench's `draw` (the same columns, the same generator), outcomes from a logistic of four of them.
    `change(month)` gives `draw`'s changed column, shift and scale for a month ({} when unchanged)."""

    def deliver(landing: str, as_of: str) -> None:
        import numpy as np
        import pandas as pd

        from bench.drift_false_alarms import draw
        from resources.storage import atomic_write_bytes, parquet_bytes, resolve_path
        from riskcore.months import add_months, month_index

        root = resolve_path(landing, {})
        for month in months_between("2023-01", LAST_MONTH):
            if (root / "applications" / f"{month}.parquet").exists():
                continue
            rng = np.random.default_rng([seed, month_index(month)])
            frame = draw(rng, rows, **(change(month) if change else {}))
            logit = (
                -2.0
                - 0.04 * (frame["normal"] - 40.0)
                + 0.4 * frame["poisson"]
                + 0.8 * (frame["sentinel"] == 999.0)
                - 0.3 * np.log10(frame["pareto"] / 20_000.0)
            )
            defaulted = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
            ids = [f"HT-{month}-{i:06d}" for i in range(rows)]
            start = pd.Timestamp(f"{month}-01")
            applications = frame.assign(application_id=ids, application_date=start + pd.to_timedelta(np.arange(rows) % 28, unit="D"))
            outcomes = pd.DataFrame({"application_id": ids, "observed_date": pd.Timestamp(add_months(month, 1)), "defaulted": defaulted})
            atomic_write_bytes(root / "applications" / f"{month}.parquet", parquet_bytes(applications))
            atomic_write_bytes(root / "outcomes" / f"{month}.parquet", parquet_bytes(outcomes))

    return deliver


def german_credit_files(archive_dir: str, rows: int, seed: int, months: int = 24):
    """A `deliver` for a German credit portfolio: its rows bootstrapped into `months` stationary months from 2023-01."""
    from pipelines.prepare import deliver_german_credit

    return lambda landing, as_of: deliver_german_credit(landing, archive_dir, resample=(months, rows, seed, 1))
