"""MLflow as the model registry: runs, registered versions and aliases.

Uses explicit tracking/registry URIs on every call and MlflowClient where it can; the
fluent API is confined to the one `log_model` call, inside a run it opens and closes itself.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from resources.storage import absolute_sqlite_url
from riskcore.datasets import TRAINING_SET

CHAMPION, CHALLENGER, PREVIOUS_CHAMPION = "champion", "challenger", "previous_champion"
CANARY = "canary"  # the challenger deciding a rollout's canary cell, while one runs (the ledger says which)
# A candidate trained from the same training set (its SHA-256), features, contract and code is the same
# candidate: registering it again returns the version that exists (a rerun after a killed run).
IDENTITY_TAGS = ("training_set_sha256", "code_version", "feature_set_version", "contract_version", "training_sample")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"


class ModelRegistry(dg.ConfigurableResource):
    """Local: a SQLite registry with artifacts on disk. Production: an MLflow server (EnvVar URI)."""

    tracking_uri: str
    artifact_location: str | None = None  # for a new experiment; None lets the server decide
    experiment_name: str = "retail-pd"
    model_name: str = "retail_pd"

    def _uri(self) -> str:
        return absolute_sqlite_url(self.tracking_uri)

    def client(self):
        from mlflow import MlflowClient

        uri = self._uri()
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def _experiment_id(self, client) -> str:
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.artifact_location:
            location = self.artifact_location if "://" in self.artifact_location else Path(self.artifact_location).resolve().as_uri()
        return client.create_experiment(self.experiment_name, artifact_location=location)

    def register(
        self, model, sample, *, params: dict, metrics: dict, tags: dict, dataset, dataset_digest: str, dataset_source: str, run_name: str, target: str
    ) -> RegisteredModel:
        """Log a trained model with its lineage, register it, and point `challenger` at it.

        Idempotent: if a version with the same identity tags (IDENTITY_TAGS) exists, that version is
        the candidate: nothing is logged, its missing tags are filled in, and `challenger` points at it."""
        existing = self.find_version(tags)
        if existing is not None:
            have = self.version_tags(existing.version)
            self.tag_version(existing.version, {k: v for k, v in tags.items() if k not in have})  # its own lineage (run ids) stays
            self.set_alias(CHALLENGER, existing.version)
            return existing
        import mlflow
        import mlflow.sklearn
        from mlflow.models import infer_signature

        from riskcore.model import SERIALISATION_TRUSTED_TYPES

        client = self.client()
        experiment_id = self._experiment_id(client)
        mlflow.set_tracking_uri(self._uri())
        mlflow.set_registry_uri(self._uri())
        import numpy
        import pandas
        import sklearn

        requirements = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pandas.__version__}", f"numpy=={numpy.__version__}", "pyyaml"]
        signature = infer_signature(sample, model.predict_proba(sample))
        import riskcore

        riskcore_dir = str(Path(riskcore.__file__).parent)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run:
            client.log_batch(
                run.info.run_id,
                metrics=[mlflow.entities.Metric(k, float(v), 0, 0) for k, v in metrics.items()],
                params=[mlflow.entities.Param(k, str(v)) for k, v in params.items()],
            )
            with warnings.catch_warnings():
                # MLflow hints about integer columns and two equivalent local-source readers: both moot here.
                warnings.simplefilter("ignore", UserWarning)
                source = mlflow.data.from_pandas(dataset, source=dataset_source, targets=target, name=TRAINING_SET, digest=dataset_digest[:20])
            mlflow.log_input(source, context="training")
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=signature,
                pip_requirements=requirements,
                code_paths=[riskcore_dir],
                pyfunc_predict_fn="predict_proba",
                serialization_format="skops",
                skops_trusted_types=SERIALISATION_TRUSTED_TYPES,
                registered_model_name=self.model_name,
            )
        version = str(info.registered_model_version)
        for key, value in tags.items():
            client.set_model_version_tag(self.model_name, version, key, value)
        client.set_registered_model_alias(self.model_name, CHALLENGER, version)
        return RegisteredModel(self.model_name, version, run.info.run_id)

    def find_version(self, tags: dict) -> RegisteredModel | None:
        """The registered version whose identity tags equal those in `tags` (None without a training-set digest
        and code version to compare). Read from the version's tags, or from its run's where a process killed
        between registration and tagging left the version without them."""
        identity = {k: str(tags[k]) for k in IDENTITY_TAGS if k in tags}
        if not {"training_set_sha256", "code_version"} <= set(identity):
            return None
        from mlflow.exceptions import MlflowException

        client = self.client()
        for mv in sorted(client.search_model_versions(f"name = '{self.model_name}'"), key=lambda v: int(v.version)):
            if mv.status != "READY":
                continue
            try:
                recorded = mv.tags if set(identity) <= set(mv.tags) else client.get_run(mv.run_id).data.tags
            except MlflowException:  # its run was deleted
                continue
            if all(recorded.get(k) == v for k, v in identity.items()):
                return RegisteredModel(self.model_name, str(mv.version), mv.run_id)
        return None

    def by_alias(self, alias: str) -> RegisteredModel | None:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client().get_model_version_by_alias(self.model_name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise
        return RegisteredModel(self.model_name, str(mv.version), mv.run_id)

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        client = self.client()
        for key, value in tags.items():
            client.set_model_version_tag(self.model_name, version, key, value)

    def version_tags(self, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(self.model_name, version).tags)

    def log_text(self, run_id: str, text: str, name: str) -> str:
        """A text artifact of the run (the model card); returns its artifact URI."""
        client = self.client()
        client.log_text(run_id, text, name)
        return f"{client.get_run(run_id).info.artifact_uri}/{name}"

    def log_bytes(self, run_id: str, data: bytes, name: str) -> str:
        """A binary artifact of the run (the reference sample, Parquet); returns its artifact URI."""
        import tempfile

        client = self.client()
        folder, _, file_name = name.rpartition("/")
        with tempfile.TemporaryDirectory() as staging:
            path = Path(staging) / file_name
            path.write_bytes(data)
            client.log_artifact(run_id, str(path), folder or None)
        return f"{client.get_run(run_id).info.artifact_uri}/{name}"

    def read_bytes(self, run_id: str, name: str) -> bytes | None:
        """An artifact of the run, or None when the run has none of that name."""
        import os
        import tempfile

        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # as in load()

        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory() as folder:
            try:
                return Path(self.client().download_artifacts(run_id, name, folder)).read_bytes()
            except (MlflowException, OSError):
                return None

    def read_text(self, run_id: str, name: str) -> str | None:
        data = self.read_bytes(run_id, name)
        return None if data is None else data.decode()

    def set_model_tag(self, key: str, value: str) -> bool:
        """A tag on the registered model (not a version); False when the model is not registered yet."""
        from mlflow.exceptions import MlflowException

        try:
            self.client().set_registered_model_tag(self.model_name, key, value)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return False
            raise
        return True

    def model_tag(self, key: str) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_registered_model(self.model_name).tags.get(key)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def set_alias(self, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(self.model_name, alias, version)

    def delete_alias(self, alias: str) -> None:
        """Remove `alias` (nothing to do when it is not set)."""
        if self.by_alias(alias) is not None:
            self.client().delete_registered_model_alias(self.model_name, alias)

    def load(self, version: str):
        """The model object of a registered version (not an alias: it could move mid-run)."""
        mv = self.client().get_model_version(self.model_name, version)
        return _loaded_model(self._uri(), self.model_name, str(mv.version), mv.run_id, mv.source)

    def training_window(self, version: str) -> str | None:
        """`first..last` training month of a version (None for versions registered before it was recorded)."""
        run_id = self.client().get_model_version(self.model_name, version).run_id
        return self.client().get_run(run_id).data.tags.get("train_months")

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client().get_run(run_id).data.metrics)


@functools.lru_cache(maxsize=8)
def _loaded_model(uri: str, name: str, version: str, run_id: str, source: str):
    """A registered version's model, loaded once per process: a version's run and artifacts do not
    change once registered, so (registry, name, version, run, source) names one model. A month's
    runs load the champion three times (scoring, drift, stability), each download and skops load
    about 0.3 s. Callers only predict with it; none changes it."""
    import os

    # A progress bar per load fills run logs and terminals with nothing a reviewer needs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    import mlflow.sklearn

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.sklearn.load_model(f"models:/{name}/{version}")
