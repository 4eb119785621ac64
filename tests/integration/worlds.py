"""A synthetic world on a test instance: real pipeline, real MLflow, small sizes, time moving forward."""

import dagster as dg

from pipelines.definitions import build_definitions
from pipelines.sensors import latest_metadata_by_month
from resources.governance import Governance
from resources.pii import PiiTokeniser
from resources.registry import CHAMPION, ModelRegistry
from resources.source import ScoringCalendar, SyntheticLandingFolder
from resources.storage import DatasetStore
from resources.validation import ContractValidator
from riskcore.months import months_between

ROWS = 2000
TRAINING_MONTHS = months_between("2023-01", "2023-04")  # labels matured as of 2023-05 (one-month window)
APPROVER = "model.risk.officer@example.com"


class World:
    """One synthetic world moving forward in time; `as_of` is the month the pipeline runs in."""

    def __init__(self, root, mlflow_uri, instance, name: str, scenario: str = "none", start: str = "2024-06", rows: int = ROWS):
        uri, artifacts = mlflow_uri
        self.instance, self.scenario, self.start, self.root, self.rows = instance, scenario, start, root, rows
        self.registry = ModelRegistry(tracking_uri=uri, artifact_location=artifacts, experiment_name=f"scenario-{name}", model_name=f"scenario_{name}")
        self.store = DatasetStore(base_path=str(root / "datasets"))
        self.governance = Governance(ledger_url=f"sqlite:///{root}/ledger.db", auto_approve="bootstrap")
        self.cursors: dict[str, str | None] = {}
        self.set_as_of("2023-05")

    def set_as_of(self, month: str) -> None:
        calendar = ScoringCalendar(as_of_month=month, performance_window_months=1, out_of_time_months=1)
        self.defs = build_definitions({
            "calendar": calendar,
            "landing": SyntheticLandingFolder(path=str(self.root / "landing"), calendar=calendar, rows_per_month=self.rows, seed=11,
                                              scenario=self.scenario, scenario_start=self.start),
            "store": self.store, "registry": self.registry, "governance": self.governance,
            "tokeniser": PiiTokeniser(key="scenario-test-key"),
            "validator": ContractValidator(data_docs_dir=str(self.root / "gx_data_docs")),
        })

    def run(self, job: str, month: str | None = None, assets=None, raise_on_error=True, **kwargs):
        return self.defs.resolve_job_def(job).execute_in_process(
            instance=self.instance, partition_key=f"{month}-01" if month else None, raise_on_error=raise_on_error,
            asset_selection=[dg.AssetKey(a) for a in assets] if assets else None, **kwargs)

    def train_baseline(self):
        for month in TRAINING_MONTHS:
            self.run("monthly_ingestion_job", month)
        self.run("model_training_job")
        return self.registry.by_alias(CHAMPION)

    def tick(self, sensor):
        """One evaluation, the cursor carried over like the daemon does."""
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor.name))
        result = sensor(context)
        self.cursors[sensor.name] = context.cursor
        return result

    def drift(self, month: str) -> dict:
        return latest_metadata_by_month(self.instance, "drift_report")[month]
