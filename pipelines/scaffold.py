"""`make portfolio NAME=cards_pd SAMPLE=landing/2024-01.csv`: a new portfolio from a sample file.

Writes `<dir>/<name>.yaml` (the portfolio file, pointing at the shipped policies and the shared
outcomes, features and scores contracts) and `<dir>/<name>_applications.yaml` (a contract
skeleton: every column of the sample with its inferred type and `role: TODO`). Fill in the roles
(exactly one id and one timestamp; pii, sensitive, feature or attribute for the rest), then add
the portfolio to RISK_PORTFOLIOS. No Python is touched; loading tells you what is still wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from pipelines.environment import PORTFOLIOS_DIR

PLACEHOLDER_ROLE = "TODO"


def infer_fields(sample_path: Path) -> list[dict]:
    """Each column of the sample with a type from its values; the role is for a person to decide."""
    import pandas as pd

    from riskcore.ingestion import read_landing_bytes

    frame = read_landing_bytes(sample_path.name, sample_path.read_bytes()).frame
    fields = []
    for column in frame.columns:
        values = frame[column].dropna()
        numeric = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_datetime64_any_dtype(values) else values.iloc[:0]
        if pd.api.types.is_datetime64_any_dtype(values):
            kind = "date"
        elif len(values) and numeric.notna().all() and len(numeric) == len(values):
            kind = "integer" if (numeric == numeric.round()).all() else "number"
        elif len(values) and pd.to_datetime(values, errors="coerce", format="mixed").notna().all():
            kind = "date"
        else:
            kind = "string"
        fields.append({"name": str(column), "logicalType": kind, "role": PLACEHOLDER_ROLE, "required": bool(values.size == len(frame))})
    return fields


def scaffold(name: str, sample: Path, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    portfolio_file, contract_file = folder / f"{name}.yaml", folder / f"{name}_applications.yaml"
    for target in (portfolio_file, contract_file):
        if target.exists():
            raise FileExistsError(f"{target} exists: choose another NAME or DIR")
    contract = {
        "kind": "DataContract",
        "apiVersion": "v3.0.2",
        "id": f"{name}_applications",
        "version": "0.1.0",
        "status": "draft",
        "owner": "TODO@example.com",
        "description": f"Applications of {name}, inferred from {sample.name}: set each column's role.",
        "schema": infer_fields(sample),
        "quality": {"rowCountMin": 1, "quarantineTolerance": 0.02},
    }
    shipped = yaml.safe_load((PORTFOLIOS_DIR / "retail_pd.yaml").read_text())

    def relative(path: str) -> str:
        return os.path.relpath((PORTFOLIOS_DIR / path).resolve(), folder.resolve())

    portfolio = {
        "name": name,
        "owner": "TODO@example.com",
        "description": f"{name}: describe the book, its default definition and its limits.",
        "contracts": {"applications": contract_file.name, **{k: relative(v) for k, v in shipped["contracts"].items() if k != "applications"}},
        "policies": {k: relative(v) for k, v in shipped["policies"].items()},
        "calendar": {"performance_window_months": 12, "out_of_time_months": 3, "evaluation_month": "last_complete"},
        "locations": {"landing": name, "datasets": name},
        "sensitive_attributes": [],
        # who may sign approvals and rollbacks: the shipped (empty) list until the book's own keys are listed
        "allowed_signers": "${RISK_ALLOWED_SIGNERS:-" + relative("allowed_signers") + "}",
    }
    contract_file.write_text(
        f"# Contract skeleton made by `make portfolio` from {sample.name}: replace every role: {PLACEHOLDER_ROLE}.\n"
        + yaml.safe_dump(contract, sort_keys=False)
    )
    portfolio_file.write_text(f"# Portfolio {name}, made by `make portfolio`. Paths are relative to this file.\n" + yaml.safe_dump(portfolio, sort_keys=False))
    return portfolio_file, contract_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", required=True, help="portfolio name: lower case, digits and _ (asset key prefix, model name)")
    parser.add_argument("--sample", required=True, type=Path, help="a landing file of the portfolio (.csv or .parquet)")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: portfolios/<name>)")
    args = parser.parse_args(argv)
    from riskcore.portfolio import NAME_PATTERN

    if not NAME_PATTERN.match(args.name):
        parser.error(f"--name {args.name!r}: lower-case letters, digits and _, starting with a letter")
    portfolio_file, contract_file = scaffold(args.name, args.sample, args.dir or Path("portfolios") / args.name)
    print(
        f"wrote {portfolio_file} and {contract_file}\nnext: set every `role: {PLACEHOLDER_ROLE}` in {contract_file.name}, then "
        f"RISK_PORTFOLIOS={portfolio_file} make check"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
