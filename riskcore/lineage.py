"""Code version for lineage: the git commit the pipeline runs from."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path


@functools.cache
def code_version() -> str:
    """RISK_CODE_VERSION if set (images built without .git), else the git sha, '+dirty' if edited."""
    if os.environ.get("RISK_CODE_VERSION"):
        return os.environ["RISK_CODE_VERSION"]
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")
