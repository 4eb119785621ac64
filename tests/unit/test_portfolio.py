"""Portfolio files: the shipped ones load; wrong ones fail at load naming the file and the key."""

from pathlib import Path

import pytest
import yaml

from riskcore.portfolio import PortfolioError, load_portfolio, load_portfolios

SHIPPED = Path(__file__).resolve().parents[2] / "pipelines" / "portfolios"


def _write(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load((SHIPPED / "retail_pd.yaml").read_text())
    for section in ("contracts", "policies"):
        doc[section] = {k: str((SHIPPED / v).resolve()) for k, v in doc[section].items()}
    change(doc)
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_shipped_portfolios_load_with_their_own_names_contracts_and_calendars():
    retail, german = load_portfolios([SHIPPED / "retail_pd.yaml", SHIPPED / "german_credit.yaml"])
    assert (retail.name, german.name) == ("retail_pd", "german_credit")
    assert retail.contract("applications").id == "loan_applications" and german.contract("applications").id == "german_credit_applications"
    assert german.calendar.out_of_time_months == 6 and german.sensitive_attributes == ("personal_status_and_sex", "foreign_worker")


def test_environment_variables_fill_values_with_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("RISK_AS_OF", "2024-03")
    assert load_portfolio(SHIPPED / "retail_pd.yaml").calendar.evaluation_month == "2024-03"
    monkeypatch.delenv("RISK_AS_OF")
    assert load_portfolio(SHIPPED / "retail_pd.yaml").calendar.evaluation_month is None  # last_complete: a live deployment
    path = _write(tmp_path, lambda d: d.update(owner="${NOBODY_SET_THIS}"))
    with pytest.raises(PortfolioError, match=r"book.yaml: owner: environment variable NOBODY_SET_THIS is not set"):
        load_portfolio(path)


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (lambda d: d.pop("owner"), "owner", "required key missing"),
        (lambda d: d.pop("contracts"), "contracts", "required key missing"),
        (lambda d: d["contracts"].pop("outcomes"), "contracts.outcomes", "required key missing"),
        (lambda d: d["policies"].update(promotion="no-such-policy.yaml"), "policies.promotion", "no such file: no-such-policy.yaml"),
        (lambda d: d["policies"].update(approval="x.yaml"), "policies.approval", "unknown policy kind"),
        (lambda d: d.update(name="Retail PD"), "name", "lower-case letters"),
        (lambda d: d.update(calender={}), "calender", "unknown key"),
        (lambda d: d["calendar"].update(out_of_time_months=0), "calendar.out_of_time_months", "whole number of months >= 1"),
        (lambda d: d["calendar"].update(evaluation_month="soon"), "calendar.evaluation_month", "last_complete or a month YYYY-MM"),
        (lambda d: d.update(sensitive_attributes=["annual_income"]), "sensitive_attributes[0]", "not a column with role sensitive"),
        (lambda d: d.update(sensitive_attributes="applicant_sex"), "sensitive_attributes", "expected a list"),
    ],
)
def test_a_wrong_portfolio_file_names_the_file_and_the_key(tmp_path, change, key, expected):
    path = _write(tmp_path, change)
    with pytest.raises(PortfolioError) as raised:
        load_portfolio(path)
    assert raised.value.key == key and expected in raised.value.problem and str(path) in str(raised.value)


def test_a_wrong_contract_named_by_a_portfolio_fails_its_load(tmp_path):
    contract = yaml.safe_load((SHIPPED / "../../checks/contracts/loan_applications.yaml").resolve().read_text())
    contract["schema"][3]["role"] = "feeture"
    bad = tmp_path / "applications.yaml"
    bad.write_text(yaml.safe_dump(contract))
    path = _write(tmp_path, lambda d: d["contracts"].update(applications=str(bad)))
    with pytest.raises(ValueError, match=r"applications.yaml: schema\[3\].role: 'feeture' is not one of"):
        load_portfolio(path)


def test_two_portfolios_cannot_share_a_name(tmp_path):
    with pytest.raises(PortfolioError, match="is also the name of"):
        load_portfolios([SHIPPED / "retail_pd.yaml", _write(tmp_path, lambda d: None)])
