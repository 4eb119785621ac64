"""Human review on real pipeline runs: a scored month's referrals are queued, officers decide some
(through the store function the review page calls), and review_outcomes, final_decisions,
override_metrics and the regulatory report show it; a referral past the service level fails the
check and posts an alert to a real webhook."""

import datetime as dt
import json

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from resources.alerts import AlertWebhook
from riskcore.review_store import queue
from tests.integration.alerting import webhook
from tests.integration.worlds import World

COHORT, MONTH = "2023-04", "2023-05"  # one-month performance window: the report of 2023-05 back-tests 2023-04
SCRIPT = "<script>alert(1)</script>"
A, B = "first.officer@example.com", "second.officer@example.com"


def _referrals(world: World, month: str) -> list:
    items, _ = world.portfolio.review_store().queue(month, per_page=10**6)
    return sorted((i for i in items if i.model_decision == "refer"), key=lambda i: i.application_id)


def _materialized(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory, mlflow_uri):
    with dg.instance_for_test() as instance:
        world = World(tmp_path_factory.mktemp("review"), mlflow_uri, instance, "review", rows=800)
        world.train_baseline()
        world.run("monthly_ingestion_job", MONTH)
        for month in (COHORT, MONTH):
            world.run("monthly_scoring_job", month, assets=["risk_scores"])
            world.queued = _materialized(world.run("review_job", month, assets=["review_queue"]), "review_queue")
        store = world.portfolio.review_store()
        cohort_referral = _referrals(world, COHORT)[0]
        store.decide(cohort_referral.id, A, "password", "approve", "R-A01", "verified payslips")
        first, second, *_ = _referrals(world, MONTH)
        store.decide(first.id, A, "password", "approve", "R-A01", SCRIPT)
        store.decide(second.id, B, "password", "decline", "D-A02")
        world.decided = {"cohort": cohort_referral, "high": first, "low": second}
        world.run("review_job", COHORT)
        world.results = world.run("review_job", MONTH)
        world.report = world.run("regulatory_report_job", MONTH)
        yield world


def test_the_scored_months_referrals_are_queued_once(reviewed):
    scores = reviewed.store.read("risk_scores", MONTH)
    referred = set(scores.loc[scores["decision"] == "refer", "application_id"])
    items, total = reviewed.portfolio.review_store().queue(MONTH, per_page=10**6, waiting_only=False)
    assert referred and {i.application_id for i in items} == referred and total == len(referred)
    assert reviewed.queued == {"added": len(referred), "queued": len(referred)}
    assert _materialized(reviewed.results, "review_queue") == {"added": 0, "queued": len(referred)}  # the second run adds nothing


def test_outcomes_final_decisions_and_metrics_show_the_officers_overrides(reviewed):
    high, low = reviewed.decided["high"], reviewed.decided["low"]
    outcomes = reviewed.store.read("review_outcomes", MONTH)
    assert list(outcomes["application_id"]) == [high.application_id, low.application_id]
    assert list(outcomes["officer"]) == [A, B] and list(outcomes["side"]) == ["high", "low"] and outcomes["complete"].all()
    ledger = {e.seq: e for e in reviewed.governance.ledger().entries(kind="override")}
    assert ledger[int(outcomes["ledger_seq"].iloc[0])].subject == f"{reviewed.name}/application/{high.application_id}"

    final = reviewed.store.read("final_decisions", MONTH).set_index("application_id")
    assert len(final) == reviewed.store.rows("risk_scores", MONTH)
    assert final.loc[high.application_id, ["final_decision", "decided_by", "side", "reason", "officer"]].tolist() == ["approve", "officer", "high", "R-A01", A]
    assert final.loc[low.application_id, ["final_decision", "side", "reason", "officer"]].tolist() == ["decline", "low", "D-A02", B]
    untouched = final.drop(index=[high.application_id, low.application_id])
    assert (untouched["final_decision"] == untouched["model_decision"]).all() and (untouched["decided_by"] == "model").all()

    metrics = json.loads(reviewed.store.file("override_metrics", MONTH, "override_metrics.json").read_text())
    assert (metrics["overrides"], metrics["high_side"], metrics["low_side"], metrics["reviewed"]) == (2, 1, 1, 2)
    assert metrics["by_officer"] == {A: {"overrides": 1, "share": 0.5}, B: {"overrides": 1, "share": 0.5}}
    assert set(metrics["by_reason"]) == {"R-A01", "D-A02"} and sum(s["overrides"] for s in metrics["by_segment"].values()) == 2
    checks = _checks(reviewed.results)
    assert checks["check_override_rate_within_band"].passed and checks["check_review_sla"].passed


def test_the_report_shows_the_overrides_and_escapes_the_note(reviewed):
    assert reviewed.report.success
    doc = json.loads(reviewed.store.file("regulatory_report", MONTH, "report.json").read_bytes())
    o = doc["overrides"]
    assert o["available"] and o["overrides"] == 2 and o["high_side"] == 1 and o["low_side"] == 1
    assert set(o["by_officer"]) == {A, B} and set(o["by_reason"]) == {"R-A01", "D-A02"}
    entries = {e["application_id"]: e for e in o["entries"]}
    assert set(entries) == {reviewed.decided["high"].application_id, reviewed.decided["low"].application_id}
    assert entries[reviewed.decided["high"].application_id]["note"] == SCRIPT and entries[reviewed.decided["low"].application_id]["officer"] == B
    (attribute,) = o["adverse_impact_ratio"]
    assert set(o["adverse_impact_ratio"][attribute]) >= {"model", "final"}
    # the cohort whose labels matured: its one overridden loan against its PD
    matured = o["matured_cohort"]
    assert matured["cohort"] == COHORT and matured["available"] and matured["by_side"]["high"]["rows"] == 1 and matured["by_side"]["low"]["rows"] == 0
    html = reviewed.store.file("regulatory_report", MONTH, "report.html").read_text()
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert A in html and "R-A01" in html


def test_a_referral_past_the_service_level_fails_the_check_and_alerts(reviewed):
    store = reviewed.portfolio.review_store()
    long_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=store.policy.sla_days + 2)).isoformat(timespec="seconds")
    with store.ledger.engine.begin() as connection:  # a week passes with the month's referrals still waiting
        connection.execute(queue.update().where(queue.c.portfolio == reviewed.name, queue.c.month == MONTH).values(queued_at=long_ago))
    waiting = len(store.queue(MONTH, per_page=10**6)[0])
    with webhook() as (url, received):
        defs = build_definitions({**reviewed.resources, "alerts": AlertWebhook(url=url)})
        result = defs.resolve_job_def(reviewed.job("review_job")).execute_in_process(
            instance=reviewed.instance, partition_key=f"{MONTH}-01", asset_selection=[reviewed.key("override_metrics")], raise_on_error=False
        )
    sla = _checks(result)["check_review_sla"]
    assert not sla.passed and sla.metadata["overdue"].value == waiting > 0
    (payload,) = received
    assert f"{waiting} referral(s)" in payload["text"] and MONTH in payload["text"] and reviewed.decided["high"].application_id not in payload["text"]
