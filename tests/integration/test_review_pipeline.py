"""Human review on real pipeline runs: a scored month's referrals are queued, officers decide some
and an appeal (through the store functions the review page calls), and review_outcomes,
final_decisions, override_metrics and the regulatory report show it; a referral past the service
level fails the check and posts an alert to a real webhook.

The report of month m shows the reviews of m - 1 (its window closed when m was scored): published
right after scoring, before any of m's referrals is decided, it rebuilds to the same bytes once they
are, and they appear in the report of m + 1."""

import datetime as dt
import json

import pytest

from assets.review import enqueue_month
from pipelines.definitions import build_definitions
from resources.alerts import AlertWebhook
from riskcore.review_store import queue
from tests.dagster_instance import instance_for_test
from tests.integration.alerting import webhook_receiver
from tests.integration.worlds import World

COHORT, MONTH, NEXT = "2023-04", "2023-05", "2023-06"  # one-month performance window: the report of 2023-05 back-tests 2023-04
SCRIPT = "<script>alert(1)</script>"
A, B = "first.officer@example.com", "second.officer@example.com"


def _referrals(world: World, month: str) -> list:
    items, _ = world.portfolio.review_store().queue(month, per_page=10**6)
    return sorted((i for i in items if i.model_decision == "refer"), key=lambda i: i.application_id)


def _appeal(world: World, month: str):
    """An applicant the model declined appeals: the application joins the month's queue."""
    scores = world.store.read("risk_scores", month)
    declined = sorted(scores.loc[scores["decision"] == "decline", "application_id"].astype(str))[0]
    enqueue_month(world.portfolio, month, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), {declined})
    items, _ = world.portfolio.review_store().queue(month, per_page=10**6)
    return next(i for i in items if i.source == "appeal")


def _decide(world: World, item, officer: str, decision: str, reason: str, note: str = "") -> None:
    store = world.portfolio.review_store()
    if store.decide(item.id, officer, "password", decision, reason, note).needs_second_officer:  # four eyes above the policy's amount
        store.confirm(item.id, B if officer == A else A, "password")


def _materialized(result, asset: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def _report(world: World, month: str) -> dict:
    return json.loads(world.store.file("regulatory_report", month, "report.json").read_bytes())


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory, mlflow_uri):
    with instance_for_test() as instance:
        world = World(tmp_path_factory.mktemp("review"), mlflow_uri, instance, "review", rows=800)
        world.train_baseline()
        world.run("monthly_ingestion_job", MONTH)
        for month in (COHORT, MONTH):
            world.run("monthly_scoring_job", month, assets=["risk_scores"])
            world.queued = _materialized(world.run("review_job", month, assets=["review_queue"]), "review_queue")
        # COHORT's window: two referrals decided (no overrides) and an appeal approved (a high-side override), then closed
        approved, declined = _referrals(world, COHORT)[:2]
        appeal = _appeal(world, COHORT)
        _decide(world, approved, A, "approve", "R-A01", "verified payslips")
        _decide(world, declined, B, "decline", "D-A02")
        _decide(world, appeal, A, "approve", "R-A02", SCRIPT)
        world.run("review_job", COHORT)
        world.report = world.run("regulatory_report_job", MONTH)  # right after MONTH was scored: none of its referrals decided
        world.published = _report(world, MONTH)
        # MONTH's reviews land after its report was published
        first, second = _referrals(world, MONTH)[:2]
        month_appeal = _appeal(world, MONTH)
        _decide(world, first, A, "approve", "R-A01", SCRIPT)
        _decide(world, second, B, "decline", "D-A02")
        _decide(world, month_appeal, B, "approve", "R-A03")
        world.decided = {
            COHORT: {"approved": approved, "declined": declined, "appeal": appeal},
            MONTH: {"first": first, "second": second, "appeal": month_appeal},
        }
        world.results = world.run("review_job", MONTH)
        world.rebuild = world.run("regulatory_report_job", MONTH)
        world.set_as_of(NEXT)  # a month on: NEXT is scored and reported, MONTH's labels have matured
        world.run("monthly_scoring_job", NEXT)
        world.run("performance_job", MONTH, assets=["loan_outcomes"])
        world.next_report = world.run("regulatory_report_job", NEXT)
        yield world


def test_the_scored_months_referrals_are_queued_once(reviewed):
    scores = reviewed.store.read("risk_scores", MONTH)
    referred = set(scores.loc[scores["decision"] == "refer", "application_id"])
    items, total = reviewed.portfolio.review_store().queue(MONTH, per_page=10**6, waiting_only=False)
    assert referred and {i.application_id for i in items if i.source == "referred"} == referred and total == len(referred) + 1  # and the appeal
    assert reviewed.queued == {"added": len(referred), "queued": len(referred)}
    assert _materialized(reviewed.results, "review_queue") == {"added": 0, "queued": len(referred) + 1}  # the second run adds nothing


def test_referral_decisions_are_not_overrides_an_appeal_approved_is(reviewed):
    decided = reviewed.decided[MONTH]
    first, second, appeal = decided["first"].application_id, decided["second"].application_id, decided["appeal"].application_id
    outcomes = reviewed.store.read("review_outcomes", MONTH)
    assert list(outcomes["application_id"]) == [first, second, appeal] and outcomes["complete"].all()
    assert list(outcomes["side"]) == [None, None, "high"]
    kinds = {
        e.payload["application_token"]: e.kind
        for e in reviewed.governance.ledger().entries()
        if "application_token" in e.payload and e.payload["month"] == MONTH
    }
    assert kinds == {first: "referral_decision", second: "referral_decision", appeal: "override"}
    # the review server appends without registry credentials: review_outcomes anchored the head holding these entries
    last = max(e.seq for e in reviewed.governance.ledger().entries() if e.payload.get("application_token") in kinds and e.payload.get("month") == MONTH)
    assert int(_materialized(reviewed.results, "review_outcomes")["ledger_head_anchored"].split(":")[0]) >= last

    final = reviewed.store.read("final_decisions", MONTH).set_index("application_id")
    assert len(final) == reviewed.store.rows("risk_scores", MONTH)
    assert final.loc[first, ["model_decision", "final_decision", "decided_by", "reason", "officer"]].tolist() == ["refer", "approve", "officer", "R-A01", A]
    assert final.loc[second, ["final_decision", "officer"]].tolist() == ["decline", B] and final[["side"]].loc[[first, second]].isna().all().all()
    assert final.loc[appeal, ["model_decision", "final_decision", "side", "reason", "officer"]].tolist() == ["decline", "approve", "high", "R-A03", B]
    untouched = final.drop(index=[first, second, appeal])
    assert (untouched["final_decision"] == untouched["model_decision"]).all() and (untouched["decided_by"] == "model").all()

    metrics = json.loads(reviewed.store.file("override_metrics", MONTH, "override_metrics.json").read_text())
    assert (metrics["overrides"], metrics["high_side"], metrics["low_side"], metrics["reviewed"]) == (1, 1, 0, 3)
    assert (
        metrics["override_rate"] == 1 / len(final) and metrics["by_officer"] == {B: {"overrides": 1, "share": 1.0}} and set(metrics["by_reason"]) == {"R-A03"}
    )
    referrals = metrics["referral_decisions"]
    assert (referrals["decided"], referrals["approved"], referrals["approve_rate"]) == (2, 1, 0.5)
    assert referrals["by_officer"] == {A: {"decided": 1, "approved": 1, "approve_rate": 1.0}, B: {"decided": 1, "approved": 0, "approve_rate": 0.0}}
    checks = _checks(reviewed.results)
    assert checks["check_override_rate_within_band"].passed and checks["check_review_sla"].passed
    for check in checks.values():  # each names the policy it judged with
        assert check.metadata["review_policy"].value == "credit-decision-review@1.0.0"


def test_the_report_shows_the_closed_months_overrides_and_referral_decisions_and_escapes_the_note(reviewed):
    assert reviewed.report.success
    o, decided = reviewed.published["overrides"], reviewed.decided[COHORT]
    assert o["month"] == COHORT and o["available"] and (o["overrides"], o["high_side"], o["low_side"]) == (1, 1, 0)
    assert set(o["by_officer"]) == {A} and set(o["by_reason"]) == {"R-A02"}
    assert (o["referral_decisions"]["decided"], o["referral_decisions"]["approved"]) == (2, 1) and set(o["referral_decisions"]["by_officer"]) == {A, B}
    (entry,) = o["entries"]
    assert entry["application_id"] == decided["appeal"].application_id and entry["note"] == SCRIPT and (entry["from"], entry["to"]) == ("decline", "approve")
    (attribute,) = o["adverse_impact_ratio"]
    assert set(o["adverse_impact_ratio"][attribute]) >= {"model", "final"}
    # the cohort whose labels matured: its one overridden loan against its PD (its referral decisions are not overrides)
    matured = o["matured_cohort"]
    assert matured["cohort"] == COHORT and matured["available"] and matured["by_side"]["high"]["rows"] == 1 and matured["by_side"]["all"]["rows"] == 1
    html = reviewed.store.file("regulatory_report", MONTH, "report.html").read_text()
    assert f"reviews of {COHORT}</h2>" in html
    assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert A in html and "R-A02" in html


def test_reviews_recorded_after_a_report_is_published_leave_its_rebuild_unchanged_and_appear_next_month(reviewed):
    assert (
        _materialized(reviewed.rebuild, "regulatory_report")["statuses"] == {MONTH: "reproduced"}
        and _checks(reviewed.rebuild)["check_report_matches_published"].passed
    )
    assert _report(reviewed, MONTH) == reviewed.published
    assert reviewed.next_report.success and _checks(reviewed.next_report)["check_report_matches_published"].passed
    o, decided = _report(reviewed, NEXT)["overrides"], reviewed.decided[MONTH]
    assert o["month"] == MONTH and o["overrides"] == 1 and [e["application_id"] for e in o["entries"]] == [decided["appeal"].application_id]
    assert o["referral_decisions"]["decided"] == 2 and o["by_officer"] == {B: {"overrides": 1, "share": 1.0}}


def test_a_referral_past_the_service_level_fails_the_check_and_alerts(reviewed):
    store = reviewed.portfolio.review_store()
    long_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=store.policy.sla_days + 2)).isoformat(timespec="seconds")
    with store.ledger.engine.begin() as connection:  # a week passes with the month's referrals still waiting
        connection.execute(queue.update().where(queue.c.portfolio == reviewed.name, queue.c.month == MONTH).values(queued_at=long_ago))
    waiting = len(store.queue(MONTH, per_page=10**6)[0])
    with webhook_receiver() as (url, received):
        defs = build_definitions({**reviewed.resources, "alerts": AlertWebhook(url=url)})
        result = defs.resolve_job_def(reviewed.job("review_job")).execute_in_process(
            instance=reviewed.instance, partition_key=f"{MONTH}-01", asset_selection=[reviewed.key("override_metrics")], raise_on_error=False
        )
    sla = _checks(result)["check_review_sla"]
    assert not sla.passed and sla.metadata["overdue"].value == waiting > 0
    (payload,) = received
    assert (
        f"{waiting} referral(s)" in payload["text"]
        and MONTH in payload["text"]
        and all(i.application_id not in payload["text"] for i in reviewed.decided[MONTH].values())
    )
