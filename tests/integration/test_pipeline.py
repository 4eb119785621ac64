"""The whole graph materialised on a temp instance, real MLflow registry, real Parquet."""

import types

import dagster as dg
import pandas as pd
import pytest

from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from pipelines.prepare import SyntheticSettings, deliver_synthetic
from resources.registry import CHALLENGER, CHAMPION
from riskcore.months import months_between
from tests.dagster_instance import instance_for_test
from tests.integration.alerting import alert_posted_for
from tests.integration.portfolio_files import deployment, write_portfolio
from tests.integration.worlds import reorder_training_set
from tests.signing import approval_config, rollback_config

MONTHS = months_between("2023-01", "2023-05")
SCORED = MONTHS[-3:]
LINEAGE = [
    "model_name",
    "model_version",
    "model_run_id",
    "feature_set_version",
    "policy_version",
    "code_version",
    "dagster_run_id",
    "source_file_sha256",
    "contract_version",
]
PORTFOLIO = "pipeline_pd"
# A one-month performance window as of 2023-06 makes all five months matured.
CALENDAR = {"performance_window_months": 1, "out_of_time_months": 1, "evaluation_month": "2023-06"}


def _resources(root, mlflow_uri, **changes):
    return deployment(root, [write_portfolio(root / "portfolios", PORTFOLIO, calendar=CALENDAR, **changes)], mlflow_uri)


def _key(asset: str) -> dg.AssetKey:
    return dg.AssetKey([PORTFOLIO, asset])


def _run(defs, job, instance, partition=None, assets=None, raise_on_error=True):
    return defs.resolve_job_def(job_name(PORTFOLIO, job)).execute_in_process(
        instance=instance,
        partition_key=f"{partition}-01" if partition else None,
        asset_selection=[_key(a) for a in assets] if assets else None,
        raise_on_error=raise_on_error,
    )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, mlflow_uri):
    root = tmp_path_factory.mktemp("pipeline")
    resources = _resources(root, mlflow_uri)
    portfolio = resources["portfolios"].named(PORTFOLIO)
    deliver_synthetic(portfolio.landing.path, MONTHS, "2023-06", 1, SyntheticSettings(seed=3, rows_per_month=3000))
    defs = build_definitions(resources)
    with instance_for_test() as instance:
        results = [_run(defs, "monthly_ingestion_job", instance, m) for m in MONTHS]
        results.append(_run(defs, "model_training_job", instance))
        results += [_run(defs, "monthly_scoring_job", instance, m, assets=["risk_scores"]) for m in SCORED]
        yield types.SimpleNamespace(
            defs=defs,
            instance=instance,
            results=results,
            root=root,
            resources=resources,
            portfolio=portfolio,
            store=portfolio.store,
            registry=portfolio.registry,
            governance=portfolio.governance,
            landing=portfolio.landing,
        )


def test_every_run_succeeds_and_every_check_passes(pipeline):
    assert all(r.success for r in pipeline.results)
    evaluations = [e for r in pipeline.results for e in r.get_asset_check_evaluations()]
    # per ingested month: contract, tolerance, reconciliation, features contract, no PII in features;
    # per scored month: every application scored, scores contract, no PII in scores, scored by the governed champion;
    # the training run: the governance ledger is intact
    assert len(evaluations) == 5 * len(MONTHS) + 4 * len(SCORED) + 1
    assert all(e.passed for e in evaluations)


def test_partitions_are_recorded_in_the_instance(pipeline):
    materialised = pipeline.instance.get_materialized_partitions(_key("risk_scores"))
    assert materialised == {f"{m}-01" for m in SCORED}
    assert pipeline.instance.get_materialized_partitions(_key("application_features")) == {f"{m}-01" for m in MONTHS}


def test_champion_is_registered_with_lineage(pipeline):
    registry = pipeline.registry
    champion = registry.by_alias(CHAMPION)
    assert champion is not None and champion == registry.by_alias(CHALLENGER)
    client = registry.client()
    run = client.get_run(champion.run_id)
    for tag in ("dagster_run_id", "code_version", "feature_set_version", "contract_version", "training_set_sha256"):
        assert run.data.tags.get(tag), tag
    assert run.data.metrics["oot_auc"] > 0.65
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["training_set"]
    version = client.get_model_version(registry.model_name, champion.version)
    assert version.tags["feature_set_version"].startswith("fs-")
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(f"models:/{registry.model_name}/{champion.version}")
    assert model.metadata.signature is not None
    features = pipeline.store.read("application_features", SCORED[0]).head(5)
    proba = model.predict(features[[i.name for i in model.metadata.signature.inputs.inputs]])
    assert proba.shape == (5, 2)


def test_one_score_per_accepted_application_with_lineage(pipeline):
    champion = pipeline.registry.by_alias(CHAMPION)
    for month in SCORED:
        scores = pipeline.store.read("risk_scores", month)
        applications = pipeline.store.read("applications", month)
        assert len(scores) == len(applications) > 0
        assert set(scores["application_id"]) == set(applications["application_id"])
        assert scores[LINEAGE].notna().all().all()
        assert (scores["model_version"] == champion.version).all()
        assert scores["decision"].isin(["approve", "refer", "decline"]).all()
        assert scores["pd"].between(0, 1).all()
        declined = scores[scores["decision"] == "decline"]
        assert declined["reason_code_1"].notna().all()  # adverse action always has a reason


def test_no_clear_pii_leaves_ingestion(pipeline):
    landing = pipeline.landing
    month = SCORED[0]
    raw = pd.read_parquet(landing.applications_file(month).path)
    clear = set()
    for column in landing.applications().columns("pii"):
        clear |= set(raw[column].astype(str))
    for dataset in ("applications", "quarantined_applications", "application_features", "risk_scores"):
        frame = pipeline.store.read(dataset, month).astype(str)
        assert not frame.isin(clear).any().any(), f"clear PII in {dataset}"
    for result in pipeline.results:
        for event in result.get_asset_materialization_events():
            text = str(event.event_specific_data.materialization.metadata)
            assert not any(value in text for value in list(clear)[:2000])


def test_gates_are_recorded_on_the_version_and_in_the_ledger(pipeline):
    champion = pipeline.registry.by_alias(CHAMPION)
    tags = pipeline.registry.version_tags(champion.version)
    verdicts = {}
    for gate in ("auc", "ks", "calibration_jeffreys", "score_psi_train_vs_oot", "adverse_impact_ratio", "signature_matches_feature_store"):
        value, verdict, threshold = tags[f"gate.{gate}"].split(" ", 2)
        assert verdict in ("pass", "FAIL") and threshold.startswith("(")
        verdicts[gate] = verdict == "pass"
    assert verdicts["signature_matches_feature_store"] and verdicts["auc"]
    assert tags["gates_passed"] == str(all(verdicts.values())).lower()
    assert tags["gates_policy"].startswith("pd-model-promotion@")
    ledger = pipeline.governance.ledger()
    assert [e.kind for e in ledger.entries(subject=champion.label)] == ["candidate_registered", "gate_results", "approval", "promotion"]
    gate_entry = ledger.entries(kind="gate_results", subject=champion.label)[0]
    assert {name: g["passed"] for name, g in gate_entry.payload["gates"].items()} == verdicts
    assert ledger.verify().ok and ledger.verify().authenticated  # HMAC-chained with the deployment's ledger key


def test_retraining_on_the_same_data_and_code_returns_the_same_version(pipeline):
    before = pipeline.registry.by_alias(CHAMPION)
    registered = len(pipeline.governance.ledger().entries(kind="candidate_registered"))
    versions = len(pipeline.registry.client().search_model_versions(f"name = '{PORTFOLIO}'"))
    _run(pipeline.defs, "model_training_job", pipeline.instance)
    assert len(pipeline.registry.client().search_model_versions(f"name = '{PORTFOLIO}'")) == versions
    assert len(pipeline.governance.ledger().entries(kind="candidate_registered")) == registered
    assert pipeline.registry.by_alias(CHAMPION) == before


def test_a_new_candidate_is_judged_against_the_champion_and_does_not_replace_it(pipeline):
    before = pipeline.registry.by_alias(CHAMPION)
    reorder_training_set(pipeline.store, seed=1)
    result = _run(pipeline.defs, "model_training_job", pipeline.instance, assets=["risk_model", "model_evaluation", "champion_model"])
    assert pipeline.registry.by_alias(CHAMPION) == before
    challenger = pipeline.registry.by_alias(CHALLENGER)
    assert int(challenger.version) == int(before.version) + 1
    evaluation = next(e for e in result.get_asset_materialization_events() if e.asset_key == _key("model_evaluation"))
    metadata = evaluation.event_specific_data.materialization.metadata
    assert metadata["compared_with"].value == before.label
    assert metadata["gates"].value["auc_vs_champion"]["passed"]  # same rows, same code: the same AUC
    gate_entries = pipeline.governance.ledger().entries(kind="gate_results", subject=challenger.label)
    assert gate_entries[-1].payload["compared_with"] == before.label


def test_rescoring_gives_the_same_decisions(pipeline):
    month = SCORED[-1]
    first = pipeline.store.read("risk_scores", month)
    _run(pipeline.defs, "monthly_scoring_job", pipeline.instance, month, assets=["risk_scores"])
    second = pipeline.store.read("risk_scores", month)
    stable = [c for c in first.columns if c != "dagster_run_id"]
    pd.testing.assert_frame_equal(first[stable], second[stable])


def test_a_file_that_breaks_the_contract_blocks_its_month(pipeline, tmp_path, mlflow_uri):
    """Real-data door: a landing folder with a CSV missing a column. Nothing lost, nothing built on it."""
    synthetic = pipeline.landing
    month = "2023-02"
    raw = pd.read_parquet(synthetic.applications_file(month).path).drop(columns=["annual_income"])
    landing = tmp_path / "landing" / PORTFOLIO
    for kind in ("applications", "outcomes"):
        (landing / kind).mkdir(parents=True)
    raw.to_csv(landing / "applications" / f"{month}.csv", index=False)
    pd.read_parquet(synthetic.outcomes_file(month).path).to_csv(landing / "outcomes" / f"{month}.csv", index=False)
    resources = _resources(tmp_path, mlflow_uri)
    store = resources["portfolios"].named(PORTFOLIO).store
    defs = build_definitions(resources)
    with instance_for_test() as instance:
        result = _run(defs, "monthly_ingestion_job", instance, month, raise_on_error=False)
        assert not result.success
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        contract = checks["check_applications_contract"]
        assert not contract.passed
        assert contract.metadata["failed_rules"].value == "annual_income:required column present"
        assert "2023-02.csv" in contract.metadata["observed"].value["error"]
        assert checks["check_received_equals_accepted_plus_quarantined"].passed  # every row quarantined, none lost
        assert store.rows("quarantined_applications", month) == len(raw)
        assert not instance.get_materialized_partitions(_key("application_features"))
        assert not store.path("application_features", month).exists()


def test_a_landing_folder_never_mixes_two_synthetic_worlds(pipeline):
    shocked = SyntheticSettings(seed=3, rows_per_month=3000, scenario="economic_shock")
    with pytest.raises(ValueError, match="already holds synthetic files made with"):
        deliver_synthetic(pipeline.landing.path, MONTHS, "2023-06", 1, shocked)


def test_contract_checks_report_rules_and_link_their_data_docs(pipeline):
    from pathlib import Path
    from urllib.parse import quote

    evaluations = [e for r in pipeline.results for e in r.get_asset_check_evaluations()]
    contract = next(e for e in evaluations if e.check_name == "check_applications_contract")
    assert contract.metadata["contract_version"].value.startswith("loan_applications@1.2.0+")
    assert contract.metadata["expectations_evaluated"].value >= 10
    assert contract.metadata["expectations_failed"].value == 0
    # Each month's check links its own page in the one shared site, and the site's index lists it.
    docs = pipeline.root / "gx_data_docs"
    index = (docs / "index.html").read_text()
    for month, run in zip(MONTHS, pipeline.results):
        (check,) = [e for e in run.get_asset_check_evaluations() if e.check_name == "check_applications_contract"]
        page = Path(check.metadata["data_docs"].value)
        batch = f"{PORTFOLIO}-loan_applications-{month}"
        assert page.is_file() and page.is_relative_to(docs / "validations") and batch in page.parts
        assert batch in page.read_text() and quote(page.relative_to(docs).as_posix()) in index
    scores = next(e for e in evaluations if e.check_name == "check_scores_contract")
    assert scores.metadata["expectations_evaluated"].value >= 20  # row rules too: scores have no quarantine


def test_every_evaluated_version_has_a_model_card_with_its_gates_and_approvals(pipeline):
    champion = pipeline.registry.by_alias(CHAMPION)
    card = pipeline.registry.read_text(champion.run_id, "model_card.md")
    assert card.startswith(f"# Model card: {champion.label}")
    for section in (
        "## Purpose and limits",
        "## Data and lineage",
        "## Features",
        "## Discrimination",
        "## Calibration",
        "## Stability and fairness",
        "## Promotion gates",
        "## Approvals and history",
        "## Known limitations",
    ):
        assert section in card
    assert "| calibration_jeffreys |" in card and "jeffreys_lower" in card and "| all |" in card  # per-grade lights and the portfolio row
    assert "| adverse_impact_ratio |" in card and "`applicant_sex`" in card and "fs-" in card
    assert "approved by auto-approval (bootstrap" in card  # the promotion appended to the card
    assert pipeline.registry.version_tags(champion.version)["model_card"].endswith("model_card.md")


def test_promotion_and_rollback_jobs_route_the_next_scoring(pipeline, tmp_path):
    """The Dagster jobs (the UI's way; `make approve`/`make rollback` run the same jobs) move the
    champion, and the next scoring uses whichever version the alias names."""
    import yaml

    from riskcore.promotion import DEFAULT_PROMOTION_POLICY

    # The weak model of the small test data may miss the calibration gate: in a copy of the policy, no miscalibration is material.
    policy = yaml.safe_load(DEFAULT_PROMOTION_POLICY.read_text())
    policy["gates"]["calibration_tolerance"] = 1e9
    policy["version"] += "-relaxed-for-test"
    relaxed = tmp_path / "promotion.yaml"
    relaxed.write_text(yaml.safe_dump(policy))
    # The same portfolio (same datasets, model and ledger) under the relaxed policy.
    folder = tmp_path / "relaxed"
    file = write_portfolio(folder, PORTFOLIO, calendar=CALENDAR, policies={**pipeline.portfolio.spec.policies, "promotion": str(relaxed)})
    # A new resource, not model_copy: Dagster runs a resource from the config it was built with.
    portfolios = type(pipeline.resources["portfolios"])(**{**pipeline.resources["portfolios"].model_dump(), "files": [file]})
    defs = build_definitions({**pipeline.resources, "portfolios": portfolios})
    governance = portfolios.named(PORTFOLIO).governance
    registry, month = pipeline.registry, SCORED[0]
    reorder_training_set(pipeline.store, seed=2)
    _run(defs, "model_training_job", pipeline.instance, assets=["risk_model", "model_evaluation", "champion_model"])
    before, candidate = registry.by_alias(CHAMPION), registry.by_alias(CHALLENGER)
    assert registry.version_tags(candidate.version)["gates_passed"] == "true"

    refused = defs.resolve_job_def(job_name(PORTFOLIO, "promotion_job")).execute_in_process(
        approval_config(PORTFOLIO, candidate.version, "mallory@example.com", "x"),
        instance=pipeline.instance,
        raise_on_error=False,
    )
    assert not refused.success and registry.by_alias(CHAMPION) == before

    approved = defs.resolve_job_def(job_name(PORTFOLIO, "promotion_job")).execute_in_process(
        approval_config(PORTFOLIO, candidate.version, "head.of.credit.risk@example.com", "gates pass <script>alert(1)</script>"),
        instance=pipeline.instance,
    )
    assert approved.success and registry.by_alias(CHAMPION).version == candidate.version
    card = registry.read_text(candidate.run_id, "model_card.md")  # what a person typed is escaped, never live markup
    assert "gates pass &lt;script&gt;alert(1)&lt;/script&gt;" in card and "<script>" not in card
    _run(defs, "monthly_scoring_job", pipeline.instance, month, assets=["risk_scores"])
    assert set(pipeline.store.read("risk_scores", month)["model_version"]) == {candidate.version}

    rolled = defs.resolve_job_def(job_name(PORTFOLIO, "rollback_job")).execute_in_process(
        rollback_config(PORTFOLIO, "head.of.credit.risk@example.com", "test rollback"), instance=pipeline.instance
    )
    assert rolled.success and registry.by_alias(CHAMPION).version == before.version
    _run(defs, "monthly_scoring_job", pipeline.instance, month, assets=["risk_scores"])
    assert set(pipeline.store.read("risk_scores", month)["model_version"]) == {before.version}
    kinds = [e.kind for e in governance.ledger().entries()][-3:]
    assert kinds == ["approval", "promotion", "rollback"] and governance.verify(registry)[0].ok

    # An insider with MLflow credentials only moves the alias behind the ledger's back: scoring refuses and alerts.
    registry.client().set_registered_model_alias(PORTFOLIO, CHAMPION, candidate.version)
    scores_before = pipeline.store.read("risk_scores", month)
    moved = _run(defs, "monthly_scoring_job", pipeline.instance, month, assets=["risk_scores"], raise_on_error=False)
    assert not moved.success
    failure = next(e for e in moved.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "the alias was moved outside governance; scoring refused" in str(failure.event_specific_data.error)
    assert pipeline.store.read("risk_scores", month).equals(scores_before)  # nothing scored by the ungoverned version
    posted = alert_posted_for(moved, pipeline.instance)
    assert f"the registry's `champion` is {PORTFOLIO}/{candidate.version}, but the ledger's last promotion or rollback" in posted["text"]
    registry.set_alias(CHAMPION, before.version)  # put back where the ledger says: scoring resumes
    _run(defs, "monthly_scoring_job", pipeline.instance, month, assets=["risk_scores"])


def test_drift_report_against_the_champions_reference(pipeline):
    from pathlib import Path

    month = SCORED[-1]
    result = _run(pipeline.defs, "monitoring_job", pipeline.instance, month)
    assert result.success
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == _key("drift_report")]
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["drifted_features"].value == "none" and metadata["drift_share"].value == 0.0  # scenario none
    assert 0 <= metadata["score_psi"].value < 0.1 and "psi_annual_income" in metadata
    report = Path(metadata["evidently_report"].value)
    assert report.is_file() and "annual_income" in report.read_text()
    stats = pipeline.store.read("drift_report", month)
    contract = pipeline.landing.applications()
    # every feature, the PD, the decision and the sensitive attributes
    assert sorted(stats["column"]) == sorted([f.name for f in contract.features] + ["pd", "decision", *pipeline.portfolio.spec.sensitive_attributes])
    assert "psi_decision" in metadata and "psi_applicant_sex" in metadata
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["check_feature_drift_within_policy"].passed
    assert checks["check_estimated_performance_within_policy"].passed  # the same month's estimate, from its scores (scenario none: no warning)
