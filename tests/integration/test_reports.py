"""Regulatory reports on the real pipeline: reproducible bytes, the month's own model version,
single-run backfills, and tampering or changed inputs named by the check."""

import io
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from assets.reporting import REPORT, report_subject, verify_files
from resources.registry import CHALLENGER, CHAMPION
from riskcore.charts import _label
from riskcore.drift import REFERENCE_PROFILE_ARTIFACT, REFERENCE_SAMPLE_ARTIFACT, ReferenceProfile
from riskcore.months import months_between
from riskcore.pii import TOKEN_PATTERN, find_pii
from tests.dagster_instance import instance_for_test
from tests.integration.worlds import APPROVER, TRAINING_MONTHS, World, reorder_training_set
from tests.signing import approval_config

MONTHS = months_between("2023-01", "2023-12")


def _reports(world: World, first: str, last: str):
    """One run over the range, as a single-run backfill from the UI or `make backfill` launches it."""
    return world.run(
        "regulatory_report_job",
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": f"{first}-01", "dagster/asset_partition_range_end": f"{last}-01"},
    )


def _check(result):
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


@pytest.fixture(scope="module")
def reported(tmp_path_factory, mlflow_uri):
    with instance_for_test() as instance:
        world = World(tmp_path_factory.mktemp("reports"), mlflow_uri, instance, "reports", rows=800)
        world.train_baseline()
        for month in MONTHS:
            if month not in TRAINING_MONTHS:
                world.run("monthly_ingestion_job", month)
            world.run("monthly_scoring_job", month, assets=["risk_scores"])
        world.monitoring = world.run("monitoring_job", "2023-03")
        world.run("monitoring_job", "2023-02", assets=["estimated_performance"])  # a month before: its AUC is realised by 2023-03's report
        world.set_as_of("2024-01")  # the year is over: every month's labels have matured (one-month window)
        for month in MONTHS:  # and 2023-02's realised AUC, which 2023-03's report reads as model_performance recorded it
            world.run("performance_job", month, assets=["loan_outcomes", *(["model_performance"] if month == "2023-02" else [])])
        world.first = _reports(world, MONTHS[0], MONTHS[-1])
        yield world


def test_a_single_run_backfill_builds_and_publishes_every_month(reported):
    assert reported.first.success and _check(reported.first).passed
    assert len(reported.instance.get_runs(filters=dg.RunsFilter(job_name=reported.job("regulatory_report_job")))) == 1
    assert reported.instance.get_materialized_partitions(reported.key(REPORT)) == {f"{m}-01" for m in MONTHS}
    published = reported.governance.ledger().entries(kind="report_published")
    assert sorted(e.payload["month"] for e in published) == MONTHS
    for month in MONTHS:
        doc = json.loads(reported.store.file(REPORT, month, "report.json").read_bytes())
        assert doc["report"]["month"] == month and doc["volumes"]["reconciled"]
        assert doc["volumes"]["accepted"] == reported.store.rows("applications", month) == doc["volumes"]["scored"]
        html = reported.store.file(REPORT, month, "report.html").read_text()
        assert f"{month}</h1>" in html and doc["lineage"]["input_files"][0]["sha256"] in html


def test_every_number_traces_to_the_data_and_the_model(reported):
    month = "2023-03"
    doc = json.loads(reported.store.file(REPORT, month, "report.json").read_bytes())
    scores = reported.store.read("risk_scores", month)
    assert doc["decisions"]["approve"]["count"] == int((scores["decision"] == "approve").sum())
    assert doc["lineage"]["scoring_dagster_run_ids"] == sorted(scores["dagster_run_id"].unique())
    assert doc["lineage"]["accepted_file_digests"] == sorted(reported.store.read("applications", month)["source_file_sha256"].unique())
    (model,) = doc["models"]
    assert model["label"] == f"{reported.registry.model_name}/{scores['model_version'].iloc[0]}"
    assert [t["kind"] for t in model["trail"]] == ["candidate_registered", "gate_results", "approval", "promotion"]
    assert "auc" in model["gates"]
    # the cohort whose labels matured by this month is back-tested (one-month window here)
    assert doc["backtest"]["available"] and doc["backtest"]["cohort"] == "2023-02"
    assert len(doc["backtest"]["pd_vs_realised_by_decile"]) == 10
    # the baseline learnt from 2023-01..2023-03: its back-test of 2023-02 is in-sample and says so; of 2023-07, out of sample
    version = str(scores["model_version"].iloc[0])
    assert doc["backtest"]["in_sample"] == {version: True} and "in-sample" in reported.store.file(REPORT, month, "report.html").read_text()
    later = json.loads(reported.store.file(REPORT, "2023-08", "report.json").read_bytes())["backtest"]
    assert later["cohort"] == "2023-07" and later["in_sample"] == {version: False}
    assert set(doc["fairness"]) == {"applicant_sex"} and doc["fairness"]["applicant_sex"]["threshold"] == 0.8
    drift = reported.store.read("drift_report", month).set_index("column")
    assert doc["stability"]["available"] and doc["stability"]["reference"] == model["label"]
    assert doc["stability"]["psi"]["annual_income"]["psi"] == round(float(drift.loc["annual_income", "psi"]), 6)
    assert not json.loads(reported.store.file(REPORT, "2023-04", "report.json").read_bytes())["stability"]["available"]


def test_the_report_draws_its_own_figures(reported):
    month = "2023-03"
    doc = json.loads(reported.store.file(REPORT, month, "report.json").read_bytes())
    html = reported.store.file(REPORT, month, "report.html").read_text()
    # four charts, each right after its table: calibration by decile (back-test), AUC over the months, PSI per column (stability), score bands (pack)
    starts = [i for i in range(len(html)) if html.startswith("<svg", i)]
    calibration, auc, psi, bands = (html[start : html.index("</svg>", start)] for start in starts)
    assert len(starts) == 4 and html.index("Back-test") < html.index(calibration) < html.index(auc) < html.index("Stability") < html.index(psi) < html.index(
        bands
    )
    # the AUC estimated when each month was scored (with its bounds), realised where its labels matured by this month
    history = doc["performance_over_time"]["months"]
    assert [r["month"] for r in history] == ["2023-02", month] and history[-1]["realised_auc"] is None  # 2023-03's labels matured after its report
    assert abs(history[0]["realised_auc"] - doc["backtest"]["auc"]) < 1e-6  # 2023-02 is the back-tested cohort
    assert all(f"{r['month']}: estimated {_label(r['estimated_auc'])}, realised {_label(r['realised_auc'])}" in auc for r in history)
    assert all(
        f"{r['band']}: reference {_label(r['reference_share'])}, this month {_label(r['current_share'])}" in bands for r in doc["score_band_stability"]["bands"]
    )
    assert "<script" not in html and "href" not in html
    for row in doc["backtest"]["pd_vs_realised_by_decile"]:
        assert f"decile {row['decile']}: expected {_label(row['mean_pd'])}, observed {_label(row['default_rate'])}" in calibration
    # the policy's lines are in the JSON, as the drift of the month was read with them
    assert doc["stability"]["psi_thresholds"] == {"investigate": 0.1, "shift": 0.25}
    assert "investigate line at 0.1; shift line at 0.25" in psi
    assert all(f"{column}: {_label(x['psi'])}" in psi for column, x in doc["stability"]["psi"].items())


def test_the_evidently_report_compares_real_training_rows_without_identifiers(reported):
    champion = reported.registry.by_alias(CHAMPION)
    sample = pd.read_parquet(io.BytesIO(reported.registry.read_bytes(champion.run_id, REFERENCE_SAMPLE_ARTIFACT)))
    profile = ReferenceProfile.from_json(reported.registry.read_text(champion.run_id, REFERENCE_PROFILE_ARTIFACT))
    assert sorted(sample.columns) == sorted([*profile.numeric, *profile.categorical])  # the monitored columns, nothing else
    assert len(sample) == min(reported.portfolio.monitoring_policy().sample_rows, profile.rows)
    counts = sample["inquiries_6m"].dropna()
    assert len(counts) and (counts == counts.round()).all()  # a count stays a count
    contract = reported.portfolio.landing.applications()
    pii = contract.columns("pii")
    assert not set(sample.columns) & {*contract.columns("id"), *pii, *(f"{c}_token" for c in pii)}
    clear = set()
    for month in TRAINING_MONTHS:
        raw = pd.read_parquet(reported.portfolio.landing.applications_file(month).path)
        clear |= {str(v) for c in pii for v in raw[c].dropna()} | {str(v) for v in raw[contract.only("id")]}
    text = sample.select_dtypes(exclude="number").astype(str)
    assert find_pii(sample, clear) == {} and not text.apply(lambda c: c.str.match(TOKEN_PATTERN)).any().any()
    # the month's drift report ran Evidently on them
    assert reported.drift("2023-03")["evidently_reference"] == f"{len(sample)} training rows kept with {champion.label}"
    assert reported.store.file("drift_report", "2023-03", "evidently.html").exists()


def test_a_rebuild_gives_the_same_bytes(reported):
    month = "2023-06"
    before = {n: reported.store.file(REPORT, month, n).read_bytes() for n in ("report.json", "report.html")}
    again = reported.run("regulatory_report_job", month)
    assert _check(again).passed
    assert again.get_asset_materialization_events()[0].event_specific_data.materialization.metadata["statuses"].value == {month: "reproduced"}
    assert {n: reported.store.file(REPORT, month, n).read_bytes() for n in before} == before


def test_a_tampered_published_report_is_detected(reported):
    month = "2023-07"
    path = reported.store.file(REPORT, month, "report.html")
    original = path.read_bytes()
    path.write_bytes(original.replace(b"approve", b"approve ", 1))
    try:
        record = reported.governance.ledger().entries(kind="report_published", subject=report_subject(reported.name, month))[-1].payload
        assert verify_files(reported.store, month, record) == ["report.html"]
        check = _check(reported.run("regulatory_report_job", month, raise_on_error=False))
        assert not check.passed
        assert check.metadata["problems"].value[month]["status"] == "published files altered"
    finally:
        path.write_bytes(original)


def test_an_older_month_keeps_its_model_after_a_new_champion_and_a_rescore_is_named(reported):
    old = reported.registry.by_alias(CHAMPION)
    reorder_training_set(reported.store, seed=1)
    reported.run("model_training_job", assets=["risk_model", "model_evaluation"])
    new = reported.registry.by_alias(CHALLENGER)
    reported.run(
        "promotion_job",
        run_config=approval_config(reported.name, new.version, APPROVER, "same rows in another order, retrained"),
    )
    assert reported.registry.by_alias(CHAMPION).version == new.version != old.version
    # the old month's report still names the version that scored it
    assert _check(_reports(reported, "2023-05", "2023-05")).passed
    doc = json.loads(reported.store.file(REPORT, "2023-05", "report.json").read_bytes())
    assert [m["label"] for m in doc["models"]] == [old.label]
    # a month scored again by the new champion no longer matches its published report: the check says what changed
    reported.run("monthly_scoring_job", "2023-12", assets=["risk_scores"])
    check = _check(_reports(reported, "2023-12", "2023-12"))
    assert not check.passed
    problem = check.metadata["problems"].value["2023-12"]
    assert problem["status"] == "rebuild differs from the published report"
    assert {"models", "lineage"} <= set(problem["changed_sections"]) and "volumes" not in problem["changed_sections"]
    rebuilt = json.loads(reported.store.file(REPORT, "2023-12", f"rebuild-{problem['digest'][:12]}.json").read_bytes())
    assert [m["label"] for m in rebuilt["models"]] == [new.label]
    published = json.loads(reported.store.file(REPORT, "2023-12", "report.json").read_bytes())
    assert [m["label"] for m in published["models"]] == [old.label]  # the published report is never overwritten


def test_the_stability_pack_materialises_passes_on_stationary_data_and_the_report_shows_it(reported):
    month = "2023-03"  # monitoring_job ran it: scored by the baseline, cohort 2023-02 matured (one-month window)
    checks = {e.check_name: e for e in reported.monitoring.get_asset_check_evaluations() if e.asset_key == reported.key("stability_pack")}
    assert checks["check_stability_within_policy"].passed and checks["check_grade_calibration"].passed, checks
    pack = reported.store.read("stability_pack", month)
    features = [f.name for f in reported.portfolio.landing.applications().features]
    assert sorted(pack["feature"].unique()) == sorted(features)
    assert (pack.groupby("feature")["current_share"].sum().round(9) == 1).all()
    drift = reported.store.read("drift_report", month).set_index("column")["psi"]
    csi = pack.groupby("feature")["csi"].sum()
    assert np.allclose(csi, drift.loc[csi.index])  # the CSI is the drift PSI of the feature, on the same bins
    gains = reported.store.read_table("stability_pack", month, "gains")
    assert gains["rows"].sum() == len(reported.store.read("risk_scores", "2023-02"))
    doc = json.loads(reported.store.file(REPORT, month, "report.json").read_bytes())
    assert doc["characteristic_analysis"]["available"] and {f["feature"] for f in doc["characteristic_analysis"]["features"]} == set(features)
    chart = doc["score_band_stability"]["bands"]
    assert [b["band"] for b in chart] == [b["points"] for b in doc["score_distribution"]["bands"]]
    assert [b["current_rows"] for b in chart] == [b["count"] for b in doc["score_distribution"]["bands"]]
    assert doc["gains"]["cohort"] == doc["grade_calibration"]["cohort"] == "2023-02" and doc["gains"]["ks"] == round(float(gains["ks"].max()), 6)
    assert doc["grade_calibration"]["grades"][-1]["grade"] == "all"
    html = reported.store.file(REPORT, month, "report.html").read_text()
    for title in ("Characteristic analysis", "Score-band stability", "Gains table by score band", "Calibration by score band"):
        assert title in html
    later = json.loads(reported.store.file(REPORT, "2023-04", "report.json").read_bytes())  # no pack for 2023-04: said, not invented
    assert not later["characteristic_analysis"]["available"] and "no stability pack" in later["characteristic_analysis"]["note"]
    assert later["gains"]["available"]  # the back-tested cohort's tables come from the report's own inputs
