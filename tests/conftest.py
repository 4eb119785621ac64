import pytest


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """A real MLflow registry in a temp SQLite file, migrated once (concurrent migrations fail)."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root}/mlflow.db", str(root / "artifacts")
