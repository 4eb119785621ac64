"""Caps: valid but extreme values are clipped when features are built, counted, and versioned."""

import pytest
import yaml

from checks import contract_path
from riskcore.contract import load_contract
from riskcore.features import build_features, clipped_by_caps, feature_set_version
from riskcore.ingestion import LandedFile, conform
from riskcore.synthetic import applications_frame, generate_month

SHIPPED = load_contract(contract_path("loan_applications.yaml"))


def _capped(tmp_path, caps: dict[str, dict], derived_caps: dict[str, dict] | None = None):
    """The shipped applications contract with these caps added."""
    doc = yaml.safe_load(contract_path("loan_applications.yaml").read_text())
    for entry in doc["schema"]:
        if entry["name"] in caps:
            entry["cap"] = caps[entry["name"]]
    for entry in doc["derivedFeatures"]:
        if entry["name"] in (derived_caps or {}):
            entry["cap"] = derived_caps[entry["name"]]
    path = tmp_path / "loan_applications.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_contract(path)


@pytest.fixture(scope="module")
def applications():
    frame = applications_frame(generate_month(42, "2023-01", 500))
    frame.loc[0, "annual_income"] = 4_000_000.0  # valid (maximum 5,000,000) but extreme
    frame.loc[1, "annual_income"] = 6_000_000.0  # breaks the row rule: quarantined, not capped
    accepted, quarantined = conform(LandedFile("m", "", 0, frame), SHIPPED, "2023-01")
    assert quarantined["quarantine_reasons"].tolist() == ["annual_income:maximum 5000000"]
    return accepted


def test_caps_clip_and_every_clip_is_counted(tmp_path, applications):
    contract = _capped(tmp_path, {"annual_income": {"lower": 20000, "upper": 250000}}, {"loan_to_income": {"upper": 1.5}})
    features = build_features(applications, contract, "2023-01")
    income, ratio = applications["annual_income"], applications["loan_to_income"]

    assert features["annual_income"].between(20000, 250000).all()
    assert features.loc[0, "annual_income"] == 250000  # the extreme valid row is kept, clipped
    assert features["loan_to_income"].max() <= 1.5
    untouched = income.between(20000, 250000)
    assert (features.loc[untouched, "annual_income"] == income[untouched]).all()
    assert features["credit_utilisation"].isna().sum() == applications["credit_utilisation"].isna().sum()
    assert clipped_by_caps(applications, contract) == {
        "annual_income": {"lower": int((income < 20000).sum()), "upper": int((income > 250000).sum())},
        "loan_to_income": {"upper": int((ratio > 1.5).sum())},
    }
    assert clipped_by_caps(applications, contract)["annual_income"]["upper"] >= 1


def test_missing_values_are_not_clipped(tmp_path, applications):
    contract = _capped(tmp_path, {"credit_utilisation": {"lower": 0.1, "upper": 1.2}})
    features = build_features(applications, contract, "2023-01")
    missing = applications["credit_utilisation"].isna()
    assert missing.any() and features.loc[missing, "credit_utilisation"].isna().all()
    assert features.loc[~missing, "credit_utilisation"].between(0.1, 1.2).all()


def test_without_caps_nothing_is_clipped(applications):
    assert clipped_by_caps(applications, SHIPPED) == {}
    features = build_features(applications, SHIPPED, "2023-01")
    assert (features["annual_income"] == applications["annual_income"]).all()


def test_a_cap_is_part_of_the_feature_set_version(tmp_path):
    versions = {
        "shipped": feature_set_version(SHIPPED),
        "upper 250k": feature_set_version(_capped(tmp_path, {"annual_income": {"upper": 250000}})),
        "upper 300k": feature_set_version(_capped(tmp_path, {"annual_income": {"upper": 300000}})),
        "lower 0, upper 250k": feature_set_version(_capped(tmp_path, {"annual_income": {"lower": 0, "upper": 250000}})),
        "derived capped": feature_set_version(_capped(tmp_path, {}, {"loan_to_income": {"upper": 1.5}})),
    }
    assert len(set(versions.values())) == len(versions), versions
    assert feature_set_version(_capped(tmp_path, {})) == versions["shipped"]  # same features, same version
