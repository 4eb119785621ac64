"""The bad-input corpus: each bad file ends as quarantine with reasons, or as a blocked month
whose failed check names the file, column and rule. Real Dagster runs, real GX, real Parquet.
"""

import datetime as dt

import pandas as pd
import pytest

from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from riskcore.synthetic import applications_frame, generate_month
from tests.dagster_instance import instance_for_test
from tests.integration.portfolio_files import deployment, write_portfolio

MONTH = "2023-03"
ROWS = 300  # tolerance 2%: up to 6 quarantined rows pass


@pytest.fixture(scope="module")
def base():
    return applications_frame(generate_month(9, MONTH, ROWS))


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as instance:
        yield instance


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False, date_format="%Y-%m-%d").encode()


def _ingest(tmp_path, instance, data: bytes, suffix: str = "csv"):
    folder = tmp_path / "landing" / "corpus_pd" / "applications"
    folder.mkdir(parents=True)
    (folder / f"{MONTH}.{suffix}").write_bytes(data)
    # Labels of 2023-03 are not matured as of 2023-04: no outcome file is needed.
    file = write_portfolio(tmp_path / "portfolios", "corpus_pd", calendar={"evaluation_month": "2023-04"})
    resources = deployment(tmp_path, [file], key="corpus-key", docs=False, auto_approve=None)
    store = resources["portfolios"].named("corpus_pd").store
    result = (
        build_definitions(resources)
        .resolve_job_def(job_name("corpus_pd", "monthly_ingestion_job"))
        .execute_in_process(instance=instance, partition_key=f"{MONTH}-01", raise_on_error=False)
    )
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return result, checks, store


def _quarantined(tmp_path, instance, base, mutate, reasons: dict[str, int]):
    """The run succeeds, every check passes, and exactly these rules quarantined these many rows."""
    frame = base.copy()
    mutate(frame)
    result, checks, store = _ingest(tmp_path, instance, _csv(frame))
    assert result.success, {n: c.metadata.get("failed_rules") for n, c in checks.items() if not c.passed}
    assert all(c.passed for c in checks.values())
    assert checks["check_quarantine_within_tolerance"].metadata["reasons"].value == reasons
    assert store.rows("applications", MONTH) + store.rows("quarantined_applications", MONTH) == ROWS
    assert store.path("application_features", MONTH).exists()
    return store


def _blocked(tmp_path, instance, data: bytes, failed_rule: str, received: int, check: str = "check_applications_contract", suffix="csv"):
    """The run fails on a blocking check naming the rule; nothing downstream is built; counts reconcile."""
    result, checks, store = _ingest(tmp_path, instance, data, suffix)
    assert not result.success
    assert not checks[check].passed
    assert failed_rule in str(checks[check].metadata.get("failed_rules", checks[check].metadata.get("reasons")).value)
    assert checks[check].metadata["source_file"].value == f"{MONTH}.{suffix}"  # the error names the file
    reconcile = checks["check_received_equals_accepted_plus_quarantined"]
    assert reconcile.passed and reconcile.metadata["received"].value == received
    assert not store.path("application_features", MONTH).exists()
    return checks


# --- file-level problems: blocked, the error names file and rule --------------------------------


def test_missing_column(tmp_path, instance, base):
    checks = _blocked(tmp_path, instance, _csv(base.drop(columns=["annual_income"])), "annual_income:required column present", ROWS)
    assert f"{MONTH}.csv" in checks["check_applications_contract"].metadata["observed"].value["error"]


def test_unexpected_column(tmp_path, instance, base):
    _blocked(tmp_path, instance, _csv(base.assign(favourite_colour="red")), "favourite_colour:no undeclared columns", ROWS)


def test_empty_file(tmp_path, instance):
    checks = _blocked(tmp_path, instance, b"", "file:non-empty file", 0)
    assert f"{MONTH}.csv" in checks["check_applications_contract"].metadata["observed"].value["file"]


def test_header_only_file(tmp_path, instance, base):
    _blocked(tmp_path, instance, _csv(base.head(0)), "table:row count", 0)


def test_malformed_csv_line(tmp_path, instance, base):
    lines = _csv(base).decode().splitlines()
    lines[5] += ",an extra field"
    _blocked(tmp_path, instance, "\n".join(lines).encode(), "file:well-formed CSV", 0)


def test_wrong_text_encoding(tmp_path, instance, base):
    frame = base.copy()
    frame.loc[0, "full_name"] = "José Núñez"
    _blocked(tmp_path, instance, frame.to_csv(index=False, date_format="%Y-%m-%d").encode("latin-1"), "file:encoding utf-8", 0)


def test_unreadable_parquet(tmp_path, instance):
    _blocked(tmp_path, instance, b"PAR1 this is not parquet", "file:readable parquet", 0, suffix="parquet")


# --- dataset-level problems: blocked by the contract ----------------------------------------------


def test_income_reported_per_month(tmp_path, instance, base):
    frame = base.assign(annual_income=(base["annual_income"] / 12).round())
    _blocked(tmp_path, instance, _csv(frame), "annual_income:median in [15000, 250000]", ROWS)


def test_column_entirely_null(tmp_path, instance, base):
    _blocked(tmp_path, instance, _csv(base.assign(employment_years=None)), "employment_years:null share <= 0.2", ROWS)


def test_missing_value_burst(tmp_path, instance, base):
    frame = base.copy()
    frame.loc[frame.index[: int(ROWS * 0.4)], "credit_utilisation"] = None
    _blocked(tmp_path, instance, _csv(frame), "credit_utilisation:null share <= 0.15", ROWS)


def test_duplicate_ids_are_quarantined_and_block_the_month(tmp_path, instance, base):
    frame = base.copy()
    frame.loc[1, "application_id"] = frame.loc[0, "application_id"]
    checks = _blocked(tmp_path, instance, _csv(frame), "application_id:unique", ROWS)
    assert checks["check_quarantine_within_tolerance"].metadata["reasons"].value == {"application_id:unique": 2}


def test_wrong_type_in_a_whole_column(tmp_path, instance, base):
    checks = _blocked(
        tmp_path, instance, _csv(base.assign(annual_income="fifty thousand")), "annual_income:type number", ROWS, check="check_quarantine_within_tolerance"
    )
    assert not checks["check_applications_contract"].passed


def test_too_many_bad_rows(tmp_path, instance, base):
    frame = base.copy()
    frame.loc[frame.index[:15], "channel"] = "fax"  # 5% > the 2% tolerance
    _blocked(tmp_path, instance, _csv(frame), "channel:allowed values", ROWS, check="check_quarantine_within_tolerance")


# --- row-level problems: quarantined with reasons, the month goes on -----------------------------


def test_wrong_type_in_one_row(tmp_path, instance, base):
    def mutate(frame):
        frame["annual_income"] = frame["annual_income"].astype(object)
        frame.loc[0, "annual_income"] = "fifty thousand"

    _quarantined(tmp_path, instance, base, mutate, {"annual_income:type number": 1})


def test_nulls_in_a_required_field(tmp_path, instance, base):
    def mutate(frame):
        frame.loc[[3, 4, 5], "loan_amount"] = None

    _quarantined(tmp_path, instance, base, mutate, {"loan_amount:required": 3})


def test_out_of_range_values(tmp_path, instance, base):
    def mutate(frame):
        frame.loc[[7, 8], "credit_utilisation"] = 7.5

    _quarantined(tmp_path, instance, base, mutate, {"credit_utilisation:maximum 2": 2})


def test_negative_amounts(tmp_path, instance, base):
    def mutate(frame):
        frame.loc[[10, 11], "loan_amount"] = -5000.0

    _quarantined(tmp_path, instance, base, mutate, {"loan_amount:minimum 500": 2})


def test_unknown_category(tmp_path, instance, base):
    def mutate(frame):
        frame.loc[[12, 13], "employment_type"] = "astronaut"

    _quarantined(tmp_path, instance, base, mutate, {"employment_type:allowed values": 2})


def test_application_dates_in_the_future(tmp_path, instance, base):
    future = pd.Timestamp(dt.date.today() + dt.timedelta(days=400))

    def mutate(frame):
        frame.loc[[14, 15], "application_date"] = future

    _quarantined(tmp_path, instance, base, mutate, {"application_date:not in future": 2, "application_date:in partition month": 2})


def test_pii_in_a_free_text_column(tmp_path, instance, base):
    def mutate(frame):
        frame.loc[20, "employer_name"] = "ACME, ask for 900-12-3456"
        frame.loc[21, "employer_name"] = "mail me: jane.doe@example.com"

    store = _quarantined(tmp_path, instance, base, mutate, {"employer_name:no ssn in free text": 1, "employer_name:no email in free text": 1})
    quarantine = store.read("quarantined_applications", MONTH).astype(str)
    assert not quarantine.apply(lambda c: c.str.contains("900-12-3456|jane.doe", regex=True)).any().any()
    assert "employer_name_token" in quarantine.columns
