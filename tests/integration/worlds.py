"""A synthetic world on a test instance: real pipeline, real MLflow, small sizes, time moving forward."""

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from pipelines.prepare import SyntheticSettings, deliver_synthetic
from pipelines.sensors import latest_metadata_by_month
from resources.registry import CHAMPION
from riskcore.months import month_label, months_between
from tests.integration.portfolio_files import deployment, write_portfolio

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
    """One synthetic world moving forward in time; `as_of` is the month the pipeline runs in.

    Its portfolio is `scenario_<name>`: its own assets, model and ledger subjects."""

    def __init__(
        self, root, mlflow_uri, instance, name: str, scenario: str = "none", start: str = "2024-06", rows: int = ROWS, policies: dict[str, str] | None = None
    ):
        self.instance, self.root, self.mlflow_uri, self.policies = instance, root, mlflow_uri, policies
        self.name = f"scenario_{name}"
        self.settings = SyntheticSettings(seed=11, rows_per_month=rows, scenario=scenario, scenario_start=start)
        self.cursors: dict[str, str | None] = {}
        self.set_as_of("2023-05")

    def set_as_of(self, month: str) -> None:
        """Time moves on: the portfolio's evaluation month, and the files upstream has delivered by then."""
        self.as_of = month
        calendar = {"performance_window_months": 1, "out_of_time_months": 1, "evaluation_month": month}
        file = write_portfolio(self.root / "portfolios", self.name, calendar=calendar, policies=self.policies)
        resources = deployment(self.root, [file], self.mlflow_uri, key="scenario-test-key")
        self.resources = resources
        self.defs = build_definitions(resources)
        self.portfolio = resources["portfolios"].named(self.name)
        self.store, self.registry, self.governance = self.portfolio.store, self.portfolio.registry, self.portfolio.governance
        deliver_synthetic(self.portfolio.landing.path, months_between("2023-01", LAST_MONTH), month, 1, self.settings)

    def key(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, asset])

    def job(self, job: str) -> str:
        return job_name(self.name, job)

    def run(self, job: str, month: str | None = None, assets=None, raise_on_error=True, **kwargs):
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

    def sensor(self, short_name: str):
        return next(s for s in self.defs.sensors if s.name == f"{self.name}_{short_name}")

    def tick(self, sensor):
        """One evaluation, the cursor carried over like the daemon does."""
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor.name), resources=self.resources)
        result = sensor(context)
        self.cursors[sensor.name] = context.cursor
        return result

    def drift(self, month: str) -> dict:
        return latest_metadata_by_month(self.instance, self.key("drift_report"))[month]
