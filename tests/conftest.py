import json
from collections import defaultdict
from pathlib import Path

import pytest

# Seconds each test module took in a recorded run (`make test ARGS=--store-durations`). Modules are
# handed to the xdist workers longest first, so the run does not end on one worker finishing a long
# module (the container build) that started last; a module not recorded yet counts as the longest.
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true", help=f"record each module's seconds in {DURATIONS.name}")


def pytest_collection_modifyitems(config, items):
    recorded = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    longest = max(recorded.values(), default=0.0) + 1
    items.sort(key=lambda item: -recorded.get(item.nodeid.split("::")[0], longest))  # stable: a module's own order is kept


_seconds: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    _seconds[report.nodeid.split("::")[0]] += report.duration


def pytest_sessionfinish(session):
    """The modules this run measured replace their old figures; the others keep theirs."""
    if session.config.getoption("--store-durations") and not hasattr(session.config, "workerinput"):
        recorded = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
        recorded |= {module: round(seconds, 1) for module, seconds in _seconds.items()}
        written = DURATIONS.with_suffix(".tmp")
        written.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
        written.replace(DURATIONS)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """A real MLflow registry in a temp SQLite file, migrated once (concurrent migrations fail)."""
    root = tmp_path_factory.mktemp("mlflow")
    return f"sqlite:///{root}/mlflow.db", str(root / "artifacts")
