"""Code version for lineage: the git commit the pipeline runs from."""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess
from pathlib import Path


@functools.cache
def code_version() -> str:
    """RISK_CODE_VERSION if set (images built without .git), else the git sha, '+dirty.<digest of the
    edits>' if edited: two different uncommitted edits are two code versions, so retraining after an
    edit registers a new version rather than returning the one the other code made."""
    if os.environ.get("RISK_CODE_VERSION"):
        return os.environ["RISK_CODE_VERSION"]
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
        edits = subprocess.run(["git", "diff", "HEAD", "--no-ext-diff", "--binary"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + (f"+dirty.{hashlib.sha256(edits).hexdigest()[:12]}" if edits else "")
