"""Each side of a benchmark in its own process, so its peak memory is its own."""

import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_mb() -> float:
    """VmHWM, this process's own peak (ru_maxrss would include the parent's, inherited at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(figures: dict) -> int:
    """In the child: print the side's figures, peak memory added, as the last line."""
    print(json.dumps({**figures, "peak_mb": peak_mb()}))
    return 0


def run_child(module: str, *args: str) -> dict:
    """In the parent: run `python -m module args...` and read the figures it reported."""
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", module, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
