"""A wrong contract fails at load, naming the file, the key path and what was expected."""

import copy
import re

import pytest
import yaml

from checks import CONTRACTS_DIR, contract_path
from riskcore.contract import DEFAULT_MISSING_VALUES, Cap, ContractError, load_contract

REASON = {"code": "R01", "text": "A reason"}
BASE = {
    "id": "loans",
    "version": "1.0.0",
    "owner": "risk@example.com",
    "schema": [
        {"name": "application_id", "logicalType": "string", "role": "id"},  # 0
        {"name": "full_name", "logicalType": "string", "role": "pii"},  # 1
        {"name": "date_of_birth", "logicalType": "date", "role": "pii"},  # 2
        {"name": "application_date", "logicalType": "date", "role": "timestamp"},  # 3
        {"name": "applicant_sex", "logicalType": "string", "role": "sensitive"},  # 4
        {"name": "annual_income", "logicalType": "number", "role": "feature", "minimum": 0, "maximum": 5000000, "reason": REASON},  # 5
        {"name": "delinquencies_2y", "logicalType": "integer", "role": "feature", "minimum": 0, "maximum": 50, "reason": REASON},  # 6
        {"name": "home_ownership", "logicalType": "string", "role": "feature", "reason": REASON},  # 7
        {"name": "loan_amount", "logicalType": "number", "role": "feature", "reason": REASON},  # 8
        {"name": "defaulted", "logicalType": "integer", "role": "target"},  # 9
    ],
    "derivedFeatures": [
        {"name": "loan_to_income", "expression": "loan_amount / annual_income", "reason": REASON},  # 0
        {"name": "applicant_age_years", "function": "years_between", "args": ["date_of_birth", "application_date"], "reason": REASON},  # 1
    ],
}


def _write(tmp_path, doc, name="loans.yaml"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def _load(tmp_path, mutate):
    doc = copy.deepcopy(BASE)
    mutate(doc)
    return load_contract(_write(tmp_path, doc))


def _set(path: str, value):
    """A mutation setting `schema.5.cap` (or deleting it, for value None) in the document."""

    def mutate(doc):
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if value is None:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return mutate


def test_a_good_contract_loads_with_markers_and_caps(tmp_path):
    def mutate(doc):
        doc["missingValues"] = ["", "-", "N/A"]
        doc["schema"][6]["missingValues"] = [96, 98.0, "not stated"]
        doc["schema"][5]["cap"] = {"upper": 250000}
        doc["derivedFeatures"][0]["cap"] = {"lower": 0, "upper": 10}

    contract = _load(tmp_path, mutate)
    assert contract.missing_values == ("", "-", "N/A")
    assert contract.field("delinquencies_2y").missing_values == (96, 98.0, "not stated")
    assert contract.field("annual_income").cap == Cap(None, 250000)
    assert contract.derived[0].cap == Cap(0, 10)
    # A named function may reduce PII to a feature (age from date of birth).
    assert contract.derived[1].args == ("date_of_birth", "application_date")


def test_without_missing_values_the_default_tokens_apply_and_include_dash(tmp_path):
    contract = _load(tmp_path, lambda doc: None)
    assert contract.missing_values == DEFAULT_MISSING_VALUES
    assert {"", "NA", "N/A", "null", "-"} <= set(contract.missing_values)


@pytest.mark.parametrize("name", sorted(p.name for p in CONTRACTS_DIR.glob("*.yaml")))
def test_every_shipped_contract_loads(name):
    source = load_contract(contract_path("loan_applications.yaml"))
    assert load_contract(contract_path(name), source=source).id == name.removesuffix(".yaml")


@pytest.mark.parametrize("name", ["loan_applications.yaml", "german_credit_applications.yaml"])
def test_shipped_application_contracts_declare_dash_as_missing(name):
    assert {"", "N/A", "NA", "-", "null"} <= set(load_contract(contract_path(name)).missing_values)


BAD = {
    # missing required keys
    "no id": (_set("id", None), "id: required key missing"),
    "no version": (_set("version", None), "version: required key missing"),
    "no owner": (_set("owner", None), "owner: required key missing"),
    "no schema": (_set("schema", None), "schema: required key missing"),
    "column without name": (_set("schema.3.name", None), "schema[3].name: required key missing"),
    "column without type": (_set("schema.3.logicalType", None), "schema[3].logicalType: required key missing; expected one of string, integer, number, date"),
    "column without role": (_set("schema.3.role", None), "schema[3].role: required key missing; expected one of id, timestamp"),
    "reason without text": (_set("schema.5.reason", {"code": "R01"}), "schema[5].reason.text: required key missing"),
    # unknown role and type
    "unknown role": (_set("schema.5.role", "feeture"), "schema[5].role: 'feeture' is not one of id, timestamp, pii, sensitive, feature, target, attribute"),
    "unknown type": (_set("schema.5.logicalType", "float"), "schema[5].logicalType: 'float' is not one of string, integer, number, date"),
    # a feature that is also PII (or sensitive)
    "pii declared again as a feature": (
        lambda doc: doc["schema"].append({"name": "full_name", "logicalType": "string", "role": "feature", "reason": REASON}),
        "schema[10].name: 'full_name' is declared twice (role pii at schema[1], feature here): a column cannot be both PII and a feature",
    ),
    "column declared twice": (
        lambda doc: doc["schema"].append({"name": "loan_amount", "logicalType": "number", "role": "attribute"}),
        "schema[10].name: 'loan_amount' is declared twice (role feature at schema[8], attribute here)",
    ),
    "pii with a reason code": (_set("schema.1.reason", REASON), "schema[1].reason: column 'full_name' has role pii, which is never a model feature"),
    "sensitive with a reason code": (_set("schema.4.reason", REASON), "schema[4].reason: column 'applicant_sex' has role sensitive"),
    "derived expression reads pii": (
        _set("derivedFeatures.0.expression", "loan_amount / full_name"),
        "derivedFeatures[0].expression: derived feature 'loan_to_income' reads 'full_name' (role pii): a pii column must not become a model feature",
    ),
    "derived function reads a sensitive column": (
        _set("derivedFeatures.1.args", ["date_of_birth", "applicant_sex"]),
        "derivedFeatures[1].args[1]: derived feature 'applicant_age_years' reads 'applicant_sex' (role sensitive)",
    ),
    "derived expression reads the target": (
        _set("derivedFeatures.0.expression", "defaulted * 2"),
        "derivedFeatures[0].expression: derived feature 'loan_to_income' reads 'defaulted' (role target)",
    ),
    "derived feature named like a pii column": (
        _set("derivedFeatures.0.name", "full_name"),
        "derivedFeatures[0].name: 'full_name' is already a column or derived feature",
    ),
    # ranges
    "minimum above maximum": (_set("schema.6.minimum", 60), "schema[6].minimum: 60 is greater than maximum 50 (column 'delinquencies_2y')"),
    "minimum not a number": (_set("schema.6.minimum", "zero"), "schema[6].minimum: expected a number, got 'zero'"),
    "minimum on a string column": (_set("schema.7.minimum", 0), "schema[7].minimum: applies to integer or number columns; 'home_ownership' is string"),
    # missing-value markers of the wrong type
    "contract markers not a list": (_set("missingValues", "N/A"), "missingValues: expected a list of text tokens, got 'N/A'"),
    "number among contract markers": (_set("missingValues", ["", 96]), "missingValues[1]: expected a text token (quoted), got 96"),
    "quoted sentinel on a numeric column": (
        _set("schema.6.missingValues", [96, "98"]),
        "schema[6].missingValues[1]: '98' is a quoted number but the column is integer: write it unquoted",
    ),
    "boolean sentinel": (_set("schema.6.missingValues", [True]), "schema[6].missingValues[0]: expected a number (or a text token), got True"),
    "number on a string column": (
        _set("schema.7.missingValues", [96]),
        "schema[7].missingValues[0]: expected a text token on a string column (quote it), got 96",
    ),
    "unquoted date marker": (_set("schema.2.missingValues", ["1900-01-01", 19000101]), "schema[2].missingValues[1]: expected a text token on a date column"),
    # bad caps
    "cap on a string feature": (_set("schema.7.cap", {"upper": 3}), "schema[7].cap: a cap applies to integer or number columns; 'home_ownership' is string"),
    "cap on the target": (_set("schema.9.cap", {"upper": 1}), "schema[9].cap: a cap applies to features only"),
    "cap lower above upper": (_set("schema.5.cap", {"lower": 100, "upper": 10}), "schema[5].cap: lower 100 is greater than upper 10"),
    "cap with an unknown key": (_set("schema.5.cap", {"max": 10}), "schema[5].cap: expected keys lower and/or upper, got ['max']"),
    "empty cap": (_set("schema.5.cap", {}), "schema[5].cap: expected keys lower and/or upper, got []"),
    "cap bound not a number": (_set("schema.5.cap", {"upper": "250k"}), "schema[5].cap.upper: expected a number, got '250k'"),
    "cap outside the valid range": (_set("schema.6.cap", {"lower": 60}), "schema[6].cap.lower: 60 is above maximum 50"),
    "cap on a derived feature, lower above upper": (
        _set("derivedFeatures.0.cap", {"lower": 5, "upper": 1}),
        "derivedFeatures[0].cap: lower 5 is greater than upper 1",
    ),
    # derived features that reference unknown columns
    "expression reads an unknown column": (
        _set("derivedFeatures.0.expression", "loan_amount / annual_incme"),
        "derivedFeatures[0].expression: derived feature 'loan_to_income' references 'annual_incme', which is not a declared column",
    ),
    "function reads an unknown column": (
        _set("derivedFeatures.1.args", ["birth_date", "application_date"]),
        "derivedFeatures[1].args[0]: derived feature 'applicant_age_years' references 'birth_date'",
    ),
    "expression reads a string column": (
        _set("derivedFeatures.0.expression", "loan_amount / home_ownership"),
        "derivedFeatures[0].expression: 'home_ownership' is string",
    ),
    "unknown derivation function": (
        _set("derivedFeatures.1.function", "years_betwen"),
        "derivedFeatures[1].function: 'years_betwen' is not one of years_between",
    ),
    "both expression and function": (
        _set("derivedFeatures.0.function", "years_between"),
        "derivedFeatures[0]: derived feature 'loan_to_income' needs exactly one of expression/function",
    ),
    "tolerance above one": (_set("quality", {"quarantineTolerance": 2}), "quality.quarantineTolerance: expected a share between 0 and 1, got 2"),
}


@pytest.mark.parametrize("mutate, message", BAD.values(), ids=BAD.keys())
def test_a_wrong_contract_names_file_key_and_expectation(tmp_path, mutate, message):
    with pytest.raises(ContractError, match="^" + re.escape(f"loans.yaml: {message}")) as error:
        _load(tmp_path, mutate)
    assert isinstance(error.value, ValueError) and error.value.file == "loans.yaml"


def test_a_file_that_is_not_a_contract_names_the_file(tmp_path):
    with pytest.raises(ContractError, match=r"^broken.yaml: \(document\): not valid YAML"):
        load_contract(_write(tmp_path, "id: [unclosed\n", "broken.yaml"))
    with pytest.raises(ContractError, match=r"^list.yaml: \(document\): expected a mapping of contract keys"):
        load_contract(_write(tmp_path, "- a\n- b\n", "list.yaml"))
    with pytest.raises(ContractError, match=r"^features.yaml: schemaFrom: declared, but no source contract was given"):
        load_contract(_write(tmp_path, {"id": "f", "version": "1", "owner": "o", "schemaFrom": {"roles": ["feature"]}}, "features.yaml"))
