"""The model registry's loads against a real MLflow registry (SQLite file, artifacts on disk)."""

import numpy as np
import pandas as pd

from resources.registry import ModelRegistry
from riskcore.model import PDScorecard


def _register(registry: ModelRegistry, seed: int):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=400), "c": rng.choice(["a", "b"], 400)})
    model = PDScorecard(numeric=("x",), categorical=("c",)).fit(X, (rng.random(400) < 0.1 + 0.2 * (X["x"] > 0)).astype(int))
    registered = registry.register(
        model, X.head(20), params={}, metrics={}, tags={}, dataset=X.assign(y=0), dataset_digest=f"d{seed}", dataset_source="memory", run_name="t", target="y"
    )
    return registered.version, model, X


def test_a_version_is_loaded_once_per_process_and_is_that_version(tmp_path):
    registry = ModelRegistry(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "artifacts"))
    (first, first_model, X), (second, second_model, _) = _register(registry, 1), _register(registry, 2)

    loaded = registry.load(first)
    assert registry.load(first) is loaded  # the second load of a version reads nothing again
    np.testing.assert_allclose(loaded.predict_pd(X), first_model.predict_pd(X))
    other = registry.load(second)
    assert other is not loaded
    np.testing.assert_allclose(other.predict_pd(X), second_model.predict_pd(X))
    # another registry holding a version of the same name and number is another model
    elsewhere = ModelRegistry(tracking_uri=f"sqlite:///{tmp_path}/other.db", artifact_location=str(tmp_path / "other-artifacts"))
    _, third_model, _ = _register(elsewhere, 3)
    np.testing.assert_allclose(elsewhere.load(first).predict_pd(X), third_model.predict_pd(X))
