"""Code location load time with 1, 2 and 10 portfolios, against the floor of `import dagster`.

Each figure is the median of 3 fresh interpreters (what the UI, the daemon and every sensor tick pay).
    python -m bench.definitions_load
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "pipelines" / "portfolios"


def _seconds(code: str, env: dict) -> float:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env=env, check=True, capture_output=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def _portfolios(folder: Path, count: int) -> str:
    files = []
    for i in range(count):
        doc = yaml.safe_load((SHIPPED / "retail_pd.yaml").read_text())
        for section in ("contracts", "policies"):
            doc[section] = {k: str((SHIPPED / v).resolve()) for k, v in doc[section].items()}
        doc.update(name=f"book_{i:02d}", locations={"landing": f"book_{i:02d}", "datasets": f"book_{i:02d}"})
        path = folder / f"book_{i:02d}.yaml"
        path.write_text(yaml.safe_dump(doc))
        files.append(str(path))
    return ",".join(files)


def main() -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_")}
    floor = _seconds("import dagster", env)
    print(f"floor: import dagster {floor:.2f} s")
    with tempfile.TemporaryDirectory() as folder:
        for count in (1, 2, 10):
            seconds = _seconds("import pipelines.definitions", {**env, "RISK_PORTFOLIOS": _portfolios(Path(folder), count)})
            print(f"{count:2d} portfolio(s): {seconds:.2f} s  ({seconds / floor:.2f}x the floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
