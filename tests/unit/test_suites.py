"""A contract's GX suite (checks/suites.py), run for real by ContractValidator."""

import pandas as pd
import yaml

from checks.validation import ContractValidator
from riskcore.contract import load_contract


def test_a_rule_stated_twice_is_evaluated_once_and_every_rule_on_every_row(tmp_path):
    doc = {
        "id": "loans",
        "version": "1.0.0",
        "owner": "risk@example.com",
        "quality": {"rowCountMin": 1, "rowCountMax": 1000, "quarantineTolerance": 0.0},
        "schema": [
            # required (a row rule) and no nulls at all (a dataset rule): the same GX expectation
            {"name": "application_id", "logicalType": "string", "role": "id", "unique": True, "required": True, "maxNullShare": 0.0},
            {"name": "purpose", "logicalType": "string", "role": "attribute", "allowedValues": ["car", "home"]},
        ],
    }
    (tmp_path / "loans.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    contract = load_contract(tmp_path / "loans.yaml")
    frame = pd.DataFrame({"application_id": [f"A{i}" for i in range(300)], "purpose": ["car", "home", "car"] * 100})

    clean = ContractValidator().validate(frame, contract, batch="loans-2024-01")
    assert clean.success and clean.evaluated == 5  # schema, row count, unique, not null (once), allowed values

    frame.loc[299, ["application_id", "purpose"]] = [None, "boat"]  # the last row only
    report = ContractValidator().validate(frame, contract, batch="loans-2024-02")
    assert not report.success and report.evaluated == 5
    assert sorted(report.failed) == ["application_id:null share <= 0.0", "purpose:allowed values"]
    assert report.unexpected["purpose:allowed values"] == 1 and report.samples["purpose:allowed values"] == ["boat"]
