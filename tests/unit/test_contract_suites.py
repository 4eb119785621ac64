"""GX gets only what a contract's rules read (checks.suites.rule_view), and still every row of it."""

import numpy as np
import pandas as pd
import pytest

from checks import contract_path
from checks.validation import ContractValidator
from riskcore.contract import load_contract

ROWS = 3000


def _scores() -> pd.DataFrame:
    """A month of scores as `score` makes them: text of few values as categories."""
    rng = np.random.default_rng(3)
    pd_ = rng.uniform(0.01, 0.4, ROWS)
    decision = pd.Categorical(np.where(pd_ < 0.1, "approve", np.where(pd_ < 0.2, "refer", "decline")))
    constant = {
        "policy_version": "retail-loan-decision@1.0.0",
        "model_name": "retail_pd",
        "model_version": "3",
        "model_run_id": "0" * 32,
        "feature_set_version": "fs-0123456789ab",
        "code_version": "abc123",
        "dagster_run_id": "run-1",
        "source_file_sha256": "f" * 64,
        "contract_version": "loan_applications@1.2.0",
    }
    frame = pd.DataFrame(
        {
            "application_id": [f"APP-{i:06d}" for i in range(ROWS)],
            "pd": pd_,
            "score_points": rng.integers(300, 800, ROWS),
            "decision": decision,
            **{f"reason_{kind}_{i}": pd.Categorical(rng.choice(["R01", "R02", None], ROWS)) for i in range(1, 5) for kind in ("code", "text")},
            **{k: pd.Categorical.from_codes(np.zeros(ROWS, dtype="int8"), categories=[v]) for k, v in constant.items()},
            "cell": pd.Categorical(["champion"] * ROWS),
            "rollout_step": 0,
            "canary_share": 0.0,
            "champion_pd": pd_,
            "champion_decision": decision,
        }
    )
    return frame


def _broken(frame: pd.DataFrame, column: str, value) -> pd.DataFrame:
    """One row of `column` set to `value` (a new category if need be)."""
    broken = frame.copy()
    if isinstance(broken[column].dtype, pd.CategoricalDtype) and value is not None:
        broken[column] = broken[column].cat.add_categories([value])
    broken.loc[ROWS // 2, column] = value
    return broken


@pytest.fixture(scope="module")
def contract():
    return load_contract(contract_path("risk_scores.yaml"), source=load_contract(contract_path("loan_applications.yaml")))


def test_a_month_of_scores_passes_its_contract(contract):
    report = ContractValidator().validate(_scores(), contract, batch="clean")
    assert report.success, report.failed


@pytest.mark.parametrize(
    "column, value, rule",
    [
        ("source_file_sha256", "not-a-digest", "pattern"),  # a pattern on a categorical: one row of 3,000
        ("model_run_id", None, "required"),  # read only for null-ness: a null mask
        ("decision", "maybe", "allowed values"),
        ("pd", 1.5, "range [0, 1]"),
        ("application_id", "APP-000001", "unique"),
    ],
)
def test_one_bad_row_in_any_rule_read_column_fails_its_rule(contract, column, value, rule):
    report = ContractValidator().validate(_broken(_scores(), column, value), contract, batch="broken")
    assert not report.success
    assert f"{column}:{rule}" in report.failed and report.unexpected[f"{column}:{rule}"] in (1, 2)  # unique: both rows


def test_a_column_no_rule_reads_is_still_in_the_schema(contract):
    report = ContractValidator().validate(_scores().drop(columns=["reason_text_4"]), contract, batch="narrow")
    assert report.failed == ["table:schema"]
