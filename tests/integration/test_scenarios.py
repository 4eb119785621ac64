"""Drift and performance scenarios on the real pipeline at small sizes.

Each world is a synthetic source with its own landing folder, datasets, ledger and registered
model, on a test instance. Months are ingested, scored and monitored one by one, and after each the
sensors are evaluated with build_sensor_context, as the daemon would evaluate them.
"""

import dagster as dg
import pytest

from resources.registry import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION
from riskcore.months import add_months, month_label, months_between
from tests.dagster_instance import instance_for_test
from tests.integration.worlds import APPROVER, World
from tests.signing import approval_config


@pytest.fixture
def world(tmp_path, mlflow_uri, request):
    with instance_for_test() as instance:
        yield lambda scenario="none", start="2024-06": World(tmp_path, mlflow_uri, instance, f"{request.node.name[5:40]}", scenario, start)


def test_no_drift_over_24_months_launches_no_retraining(world):
    stable = world("none")
    stable.train_baseline()
    months = months_between("2023-01", "2024-12")
    decisions = stable.monitor(months)
    assert len(decisions) == 24
    launched = {m: d for m, d in decisions.items() if isinstance(d, dg.RunRequest)}
    assert not launched, launched
    assert all(stable.drift(m)["drift_share"] < 0.1 for m in months)
    # the ledger: one decision per month, a skip with its reason, taken by the sensor under the policy
    decided = stable.governance.ledger().entries(kind="retraining_decision")
    assert [e.payload["month"] for e in decided] == months and {e.payload["decision"] for e in decided} == {"skip"}
    assert all(e.payload["reason"] == decisions[e.payload["month"]].skip_message and e.actor == "drift_retraining_sensor" for e in decided)
    assert decided[-1].payload["drift_shares"] == {m: stable.drift(m)["drift_share"] for m in ("2024-11", "2024-12")}
    stable.tick(stable.sensor("drift_retraining_sensor"))  # a re-evaluation of the same month records nothing new
    assert len(stable.governance.ledger().entries(kind="retraining_decision")) == 24
    verified, _ = stable.governance.verify(stable.registry)  # `make verify-ledger`: the chain holds the head anchored in the registry
    assert verified.ok and verified.entries == len(stable.governance.ledger().entries())


def test_an_economic_shock_launches_retraining_once_it_persists_and_not_inside_the_cooldown(world):
    shock = "2023-08"
    shocked = world("economic_shock", start=shock)
    before = shocked.train_baseline()
    decisions = shocked.monitor(months_between("2023-05", "2023-09"))
    # flagged at X, not before
    assert shocked.drift("2023-07")["drift_share"] < 0.1 <= shocked.drift(shock)["drift_share"]
    assert {"annual_income", "credit_utilisation"} <= set(shocked.drift(shock)["drifted_features"].split(", "))
    assert not any(isinstance(d, dg.RunRequest) for m, d in decisions.items() if m <= shock)
    assert "did not persist" in decisions[shock].skip_message
    # launched at X + N - 1 (N = 2)
    request = decisions["2023-09"]
    assert isinstance(request, dg.RunRequest) and request.run_key == "drift-retraining-2023-09"
    assert request.tags["decision"] == "drift persisted 2 months (2023-08, 2023-09)"
    decided = {e.payload["month"]: e.payload for e in shocked.governance.ledger().entries(kind="retraining_decision")}
    assert decided["2023-09"]["decision"] == "launch" and decided["2023-09"]["reason"] == request.tags["decision"]
    assert decided[shock]["decision"] == "skip" and decisions[shock].skip_message.startswith(decided[shock]["reason"])
    # the shock month's estimated default rate warned: alerted and recorded beside the decision, never acted on by itself
    assert decided[shock]["early_warning"] and decided[shock]["early_warning"] in decisions[shock].skip_message
    # the launched run: a candidate, judged by the gates, left for approval (the champion stays)
    shocked.set_as_of("2023-10")
    for month in months_between("2023-05", "2023-09"):  # labels matured since ingestion: loaded as the monthly cycle does
        shocked.run("performance_job", month, assets=["loan_outcomes"])
    run = shocked.run("model_training_job", tags=request.tags)
    challenger = shocked.registry.by_alias(CHALLENGER)
    assert challenger.version != before.version and shocked.registry.by_alias(CHAMPION) == before
    registered = shocked.governance.ledger().entries(kind="candidate_registered", subject=challenger.label)
    assert registered[0].payload["dagster_run_id"] == run.run_id
    # the shock goes on inside the cooldown: nothing more is launched
    later = shocked.monitor(["2023-10", "2023-11"])
    assert all(shocked.drift(m)["drift_share"] >= 0.1 for m in later)
    assert all(isinstance(d, dg.SkipReason) and d.skip_message.startswith("cooldown") for d in later.values())
    # ...and once the cooldown has passed, persistent drift launches again
    assert shocked.tick(shocked.sensor("drift_retraining_sensor")).skip_message.startswith("cooldown")
    again = shocked.monitor(["2023-12"])["2023-12"]
    assert isinstance(again, dg.RunRequest) and again.run_key == "drift-retraining-2023-12"


def test_a_new_segment_is_named_in_the_drift_report(world):
    segment = world("new_segment", start="2023-06")
    segment.train_baseline()
    segment.monitor(["2023-05", "2023-06"])
    assert segment.drift("2023-05")["new_categories"] == "{}"
    report = segment.drift("2023-06")
    assert report["new_categories"] == '{"channel": "partner_api"}'
    assert "channel" in report["drifted_features"].split(", ")
    assert report["psi_channel"] > 0.25
    html = (segment.store.path("drift_report", "2023-06").parent / "evidently.html").read_text()
    assert "partner_api" in html


def test_a_data_fault_is_blocked_by_the_contract_and_launches_no_retraining(world):
    faulty = world("data_fault", start="2023-06")
    faulty.train_baseline()
    faulty.monitor(["2023-05"])
    for month in ("2023-06", "2023-07"):
        ingestion = faulty.run("monthly_ingestion_job", month, raise_on_error=False)
        failed = {e.check_name: e for e in ingestion.get_asset_check_evaluations() if not e.passed}
        assert "check_applications_contract" in failed, month
        assert "annual_income" in failed["check_applications_contract"].metadata["failed_rules"].value
        monitoring = faulty.run("monitoring_job", month, raise_on_error=False)
        assert not monitoring.success  # no features were built from blocked data, so no drift either
        decision = faulty.tick(faulty.sensor("drift_retraining_sensor"))
        assert isinstance(decision, dg.SkipReason), decision
    assert {p[:7] for p in faulty.instance.get_materialized_partitions(faulty.key("drift_report"))} == {"2023-05"}
    assert not faulty.instance.get_materialized_partitions(faulty.key("application_features")) & {"2023-06-01", "2023-07-01"}


def test_a_weak_champion_is_rolled_back_once_its_labels_mature(world):
    weak_world = world("none")
    good = weak_world.train_baseline()
    # A candidate trained on shuffled labels, its failed gates overridden, forced to champion.
    weak_world.run("model_training_job", assets=["training_set"])
    frame = weak_world.store.read("training_set")
    frame["defaulted"] = frame["defaulted"].sample(frac=1.0, random_state=0).to_numpy()
    weak_world.store.write("training_set", frame)
    weak_world.run("model_training_job", assets=["risk_model", "model_evaluation"])
    weak = weak_world.registry.by_alias(CHALLENGER)
    assert weak_world.registry.version_tags(weak.version)["gates_passed"] == "false"
    weak_world.registry.tag_version(weak.version, {"gates_passed": "true"})
    weak_world.run(
        "promotion_job",
        run_config=approval_config(weak_world.name, weak.version, APPROVER, "forced for the scenario"),
    )
    assert weak_world.registry.by_alias(CHAMPION).version == weak.version

    scored = ["2023-05", "2023-06"]
    for month in scored:
        weak_world.run("monthly_scoring_job", month)  # ingest and score
    assert isinstance(weak_world.tick(weak_world.sensor("performance_rollback_sensor")), dg.SkipReason)  # labels not matured yet
    for month in scored:  # nothing is measured before the labels mature
        early = weak_world.run("performance_job", month)
        assert weak_world.key("model_performance") not in {e.asset_key for e in early.get_asset_materialization_events()}

    weak_world.set_as_of(month_label(add_months(scored[-1], 1)))  # a month later, both months' labels have matured
    for month in scored:
        weak_world.run("performance_job", month)
    measured = weak_world.instance.fetch_materializations(weak_world.key("model_performance"), limit=1).records[0].asset_materialization.metadata
    assert measured["model_version"].value == weak.version and measured["compared_with_version"].value == good.version
    assert measured["auc"].value < 0.6 < measured["compared_auc"].value
    assert measured["training_window"].value == "2023-01..2023-03" and measured["in_sample"].value is False  # scored months it never saw

    request = weak_world.tick(weak_world.sensor("performance_rollback_sensor"))
    assert isinstance(request, dg.RunRequest) and request.run_key == f"performance-rollback-{weak_world.registry.model_name}-{weak.version}"
    rollback = weak_world.run("rollback_job", run_config=request.run_config, tags=request.tags)
    assert weak_world.registry.by_alias(CHAMPION).version == good.version
    assert weak_world.registry.by_alias(PREVIOUS_CHAMPION).version == weak.version
    entry = weak_world.governance.ledger().entries(kind="rollback")[-1]
    assert entry.actor == "performance_rollback_sensor" and entry.subject == good.label
    assert entry.payload["from"] == weak.label and entry.payload["dagster_run_id"] == rollback.run_id
    assert "below the floor" in entry.payload["reason"] and "the replaced version scored" in entry.payload["reason"]
    assert weak_world.governance.ledger().verify().ok
    # the restored champion has scored no matured month: nothing more to decide
    assert "0 matured month" in weak_world.tick(weak_world.sensor("performance_rollback_sensor")).skip_message
