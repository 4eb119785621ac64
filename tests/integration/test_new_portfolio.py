"""A bank's own portfolio, added by writing files only: its contract (other column names, sentinel
values, capped features, no sensitive attribute), its policies and its portfolio file, in a temp
folder. Then the real pipeline ingests, trains, waits for an approval, promotes and scores it."""

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml

from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from pipelines.scaffold import PLACEHOLDER_ROLE, scaffold
from resources.registry import CHALLENGER, CHAMPION
from resources.storage import parquet_bytes
from riskcore.months import months_between
from riskcore.synthetic import applications_frame, generate_month, outcomes_frame
from tests.dagster_instance import instance_for_test
from tests.integration.portfolio_files import deployment
from tests.signing import IDENTITIES, approval_config, write_allowed_signers

NAME = "cards_pd"
MONTHS = months_between("2023-01", "2023-05")
APPROVER = "cards.risk.officer@example.com"
RENAMES = {
    "application_id": "card_ref",
    "application_date": "applied_on",
    "annual_income": "income_yearly",
    "credit_utilisation": "revolving_use",
    "delinquencies_2y": "late_24m",
    "inquiries_6m": "searches_6m",
    "loan_amount": "limit_requested",
    "employment_type": "work_status",
}
ROLES = {
    "card_ref": "id",
    "applied_on": "timestamp",
    "income_yearly": "feature",
    "revolving_use": "feature",
    "late_24m": "feature",
    "searches_6m": "feature",
    "limit_requested": "feature",
    "work_status": "feature",
}


def _month_files(landing, month: str):
    """The bank's files: its own column names, 96/98 sentinels in the delinquency count (about 3%)."""
    frame = generate_month(5, month, 2500)
    apps = applications_frame(frame)[list(RENAMES)].rename(columns=RENAMES)
    rng = np.random.default_rng(int(month.replace("-", "")))
    apps["late_24m"] = apps["late_24m"].astype("float64")
    apps.loc[rng.random(len(apps)) < 0.03, "late_24m"] = rng.choice([96.0, 98.0])
    outcomes = outcomes_frame(frame, month, 1).rename(columns={"application_id": "card_ref"})
    for kind, frame in (("applications", apps), ("outcomes", outcomes)):
        (landing / kind).mkdir(parents=True, exist_ok=True)
        (landing / kind / f"{month}.parquet").write_bytes(parquet_bytes(frame))
    return apps


@pytest.fixture(scope="module")
def cards(tmp_path_factory, mlflow_uri):
    root = tmp_path_factory.mktemp("cards")
    landing = root / "landing" / NAME
    for month in MONTHS:
        apps = _month_files(landing, month)
    sample = root / "sample.parquet"
    sample.write_bytes(parquet_bytes(apps))
    folder = root / "bank" / NAME
    portfolio_file, contract_file = scaffold(NAME, sample, folder)  # `make portfolio NAME=cards_pd SAMPLE=...`
    # What the bank's analyst then fills in: roles, rules, sentinels, caps, reasons; its own policies.
    contract = yaml.safe_load(contract_file.read_text())
    contract["owner"] = "cards-data@example.com"
    assert {f["name"] for f in contract["schema"]} == set(RENAMES.values()) and {f["role"] for f in contract["schema"]} == {PLACEHOLDER_ROLE}
    for field in contract["schema"]:
        field["role"] = ROLES[field["name"]]
        if field["role"] == "feature" and field["logicalType"] != "string":
            field["reason"] = {"code": f"C{len(field['name']):02d}{field['name'][:3].upper()}", "text": f"{field['name']} is unfavourable"}
        if field["name"] == "card_ref":
            field.update(required=True, unique=True)
        if field["name"] == "late_24m":
            field.update(missingValues=[96, 98], minimum=0, maximum=50, required=False)
        if field["name"] == "income_yearly":
            field.update(cap={"upper": 150000})
        if field["name"] == "revolving_use":
            field.update(cap={"upper": 1.2})
        if field["name"] == "work_status":
            field["reason"] = {"code": "C90", "text": "Employment status"}
    contract_file.write_text(yaml.safe_dump(contract, sort_keys=False))
    shipped = yaml.safe_load(portfolio_file.read_text())
    promotion = yaml.safe_load((folder / shipped["policies"]["promotion"]).resolve().read_text())
    promotion.update(policy_id="cards-promotion", version="1.0.0")
    promotion["approval"] = {"approvers": [APPROVER], "rollback": [APPROVER], "signature_max_age_hours": 1, "auto_approve": "never"}
    promotion["gates"]["min_auc"] = 0.6
    (folder / "cards_promotion.yaml").write_text(yaml.safe_dump(promotion, sort_keys=False))
    # the shipped outcomes and scores contracts serve as they are: they take the id column (card_ref) from the applications contract
    shipped["policies"]["promotion"] = "cards_promotion.yaml"
    shipped["allowed_signers"] = write_allowed_signers(folder / "allowed_signers", (*IDENTITIES, APPROVER))
    shipped.update(owner="cards-risk@example.com", calendar={"performance_window_months": 1, "out_of_time_months": 1, "evaluation_month": "2023-06"})
    portfolio_file.write_text(yaml.safe_dump(shipped, sort_keys=False))

    resources = deployment(root, [str(portfolio_file)], mlflow_uri, auto_approve=None)
    defs = build_definitions(resources)
    portfolio = resources["portfolios"].named(NAME)
    with instance_for_test() as instance:

        def run(job, month=None, **kwargs):
            return defs.resolve_job_def(job_name(NAME, job)).execute_in_process(instance=instance, partition_key=f"{month}-01" if month else None, **kwargs)

        ingested = [run("monthly_ingestion_job", m) for m in MONTHS]
        training = run("model_training_job", raise_on_error=False)
        yield dg.Definitions, run, portfolio, ingested, training, instance, defs


def test_the_new_portfolio_is_its_own_part_of_the_graph(cards):
    _, _, _, _, _, _, defs = cards
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert f"{NAME}/risk_scores" in keys and all(k.startswith(f"{NAME}/") for k in keys)
    assert graph.get(dg.AssetKey([NAME, "risk_scores"])).group_name == f"{NAME}_scoring"
    assert graph.get(dg.AssetKey([NAME, "risk_model"])).owners == ["cards-risk@example.com"]  # the portfolio's owner
    assert graph.get(dg.AssetKey([NAME, "applications"])).owners == ["cards-data@example.com"]  # its contract's owner


def test_sentinels_become_missing_and_caps_are_recorded(cards):
    _, _, portfolio, ingested, _, _, _ = cards
    applications = next(e for e in ingested[0].get_asset_materialization_events() if e.asset_key == dg.AssetKey([NAME, "applications"]))
    markers = applications.event_specific_data.materialization.metadata["missing_markers"].value
    assert sum(markers["late_24m"].values()) > 0  # 96 and 98 read as missing, not as 96 delinquencies
    accepted = portfolio.store.read("applications", MONTHS[0])
    assert accepted["late_24m"].max() <= 50 and accepted["late_24m"].isna().sum() == sum(markers["late_24m"].values())
    features = next(e for e in ingested[0].get_asset_materialization_events() if e.asset_key == dg.AssetKey([NAME, "application_features"]))
    clipped = features.event_specific_data.materialization.metadata["clipped_by_caps"].value
    assert clipped["income_yearly"]["upper"] > 0
    assert portfolio.store.read("application_features", MONTHS[0])["income_yearly"].max() <= 150000


def test_it_trains_waits_for_its_own_approver_then_promotes_and_scores(cards):
    _, run, portfolio, ingested, training, instance, _ = cards
    assert all(r.success for r in ingested)
    registry = portfolio.registry
    challenger = registry.by_alias(CHALLENGER)
    assert challenger is not None and challenger.name == NAME and registry.by_alias(CHAMPION) is None
    tags = registry.version_tags(challenger.version)
    assert tags["gate.adverse_impact_ratio"].split(" ")[1] == "pass" and "no sensitive attribute declared" in tags["gate.adverse_impact_ratio"]
    assert tags["gates_policy"] == "cards-promotion@1.0.0" and tags["gates_passed"] == "true", tags
    refused = run(
        "promotion_job",
        run_config=approval_config(NAME, challenger.version, "model.risk.officer@example.com", "not a cards approver"),
        raise_on_error=False,
    )
    assert not refused.success and registry.by_alias(CHAMPION) is None
    run("promotion_job", run_config=approval_config(NAME, challenger.version, APPROVER, "gates pass"))
    assert registry.by_alias(CHAMPION).version == challenger.version
    scored = run("monthly_scoring_job", MONTHS[-1], asset_selection=[dg.AssetKey([NAME, "risk_scores"])])
    assert scored.success and all(e.passed for e in scored.get_asset_check_evaluations())
    scores = portfolio.store.read("risk_scores", MONTHS[-1])
    assert len(scores) == portfolio.store.rows("applications", MONTHS[-1]) and (scores["model_name"] == NAME).all()
    assert set(scores["reason_code_1"].dropna()) <= {f"C{len(c):02d}{c[:3].upper()}" for c in ROLES if ROLES[c] == "feature"} | {"C90"}
    assert pd.Series(portfolio.governance.ledger().entries(subject=challenger.label)).map(lambda e: e.kind).tolist()[-2:] == ["approval", "promotion"]
