"""Data contracts (YAML files in contracts/) and the asset checks that enforce them."""

from pathlib import Path

CONTRACTS_DIR = Path(__file__).parent / "contracts"


def contract_path(name: str) -> Path:
    """A contract by file name (shipped here) or by path (a deployment's own contract)."""
    candidate = Path(name)
    return candidate if candidate.is_file() else CONTRACTS_DIR / name
