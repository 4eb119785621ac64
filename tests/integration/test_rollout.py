"""A challenger earns its place on live applications (issue 17), on the real pipeline at small
sizes: shadow scores, swap set, a keyed canary cell, staged rollout with gates, rollback."""

import json

import dagster as dg
import numpy as np
import pytest

from resources.governance import ChampionNotGoverned
from resources.registry import CANARY, CHALLENGER, CHAMPION
from riskcore.datasets import CHALLENGER_SCORES, FEATURES, SCORES, SWAP_SET
from riskcore.metrics import roc_auc
from riskcore.model_card import ROLLOUT_HEADING
from riskcore.rollout import share_deviation
from riskcore.rollout_policy import DEFAULT_ROLLOUT_POLICY
from tests.dagster_instance import instance_for_test
from tests.integration.worlds import APPROVER, World
from tests.signing import approval_config, rollout_config

REASONS = [f"reason_code_{i}" for i in range(1, 5)]


@pytest.fixture
def world(tmp_path, mlflow_uri, request):
    # The shipped rollout policy with a minimum of decisions a 2,000-row month's 5% cell reaches.
    policy = tmp_path / "rollout.yaml"
    policy.write_text(DEFAULT_ROLLOUT_POLICY.read_text().replace("min_cell_decisions: 500", "min_cell_decisions: 80"))
    with instance_for_test() as instance:
        yield World(tmp_path, mlflow_uri, instance, request.node.name[5:40], policies={"rollout": str(policy)})


def _checks(run) -> dict[str, bool]:
    return {e.check_name: e.passed for e in run.get_asset_check_evaluations()}


def _swap(world: World, month: str) -> dict:
    record = world.instance.fetch_materializations(world.key(SWAP_SET), limit=20).records
    return next({k: v.value for k, v in r.asset_materialization.metadata.items()} for r in record if r.partition_key.startswith(month))


def test_a_better_challenger_advances_from_5_to_100_percent_as_its_gates_hold(world):
    champion, challenger = world.train_noisy_champion_and_clean_challenger()
    tags = world.registry.version_tags(challenger.version)
    assert challenger.version != champion.version and tags["gates_passed"] == "true", {k: v for k, v in tags.items() if k.startswith("gate")}
    assert world.registry.by_alias(CHAMPION) == champion  # it waits for its rollout

    world.run("canary_job", run_config=rollout_config("canary", world.name, challenger.version, APPROVER, "gates passed: five per cent first"))
    assert world.registry.by_alias(CANARY).version == challenger.version
    assert world.registry.version_tags(challenger.version)["rollout_step"] == "step 1/3 (5%)"
    early = world.run("advance_job", run_config=rollout_config("advance", world.name, challenger.version, APPROVER, "too early"), raise_on_error=False)
    assert not early.success  # no decision in the cell yet: the gates hold nothing

    run = world.run("monthly_scoring_job", "2023-05")
    assert all(_checks(run).values()), _checks(run)
    scores, shadow = world.store.read(SCORES, "2023-05"), world.store.read(CHALLENGER_SCORES, "2023-05")
    canary = scores[scores["cell"] == "canary"]
    assert share_deviation(len(canary), len(scores), 0.05) < 4 and len(canary) > 60
    assert set(canary["model_version"]) == {challenger.version} and set(scores.loc[scores["cell"] == "champion", "model_version"]) == {champion.version}
    assert (scores["rollout_step"] == 1).all()
    # Reg B: the canary decisions carry the challenger's own reasons, row for row
    own = canary[["application_id"]].merge(shadow, on="application_id")
    assert canary[REASONS + ["decision"]].reset_index(drop=True).equals(own[REASONS + ["decision"]])
    # the swap set reconciles with the decisions
    table = world.store.read(SWAP_SET, "2023-05")
    assert table["rows"].sum() == len(scores) and table["canary_rows"].sum() == len(canary)
    swapped = (scores["champion_decision"] == "decline") & (
        shadow.set_index("application_id").loc[scores["application_id"], "decision"].to_numpy() == "approve"
    )
    assert table.query("champion_decision == 'decline' and challenger_decision == 'approve'")["rows"].item() == swapped.sum()
    # the same applicant, the same cell, on a re-score
    world.run("monthly_scoring_job", "2023-05")
    assert world.store.read(SCORES, "2023-05")["cell"].equals(scores["cell"])

    world.set_as_of("2023-06")
    world.run("performance_job", "2023-05")  # labels matured: the swap set's cell is judged on them too
    assert "cell_realised_auc" in _swap(world, "2023-05")
    # `make advance`: the command line in a child process, a signed job on this world's instance
    advance = world.governance_cli("advance", "--version", challenger.version, "--reason", "the 5% cell held its gates", identity=APPROVER)
    assert advance.returncode == 0 and "advance_job run" in advance.stdout, advance.stderr[-3000:]
    advanced = world.governance.ledger().entries(kind="rollout_advance")[-1]
    assert (advanced.subject, advanced.actor, advanced.payload["signed_by"]) == (challenger.label, APPROVER, APPROVER)
    assert json.loads(advanced.payload["signed_request"])["action"] == "advance" and advanced.payload["signature"].startswith("-----BEGIN SSH SIGNATURE")
    assert (advanced.payload["step"], advanced.payload["share"]) == (2, 0.25) and advanced.payload["gates"]["realised_auc"]["passed"]
    run = world.instance.get_run_by_id(advanced.payload["dagster_run_id"])
    assert run.job_name == world.job("advance_job") and run.is_success and run.tags["trigger"] == "make advance"
    assert world.registry.by_alias(CANARY).version == challenger.version and world.registry.by_alias(CHAMPION) == champion
    assert world.registry.version_tags(challenger.version)["rollout_step"] == "step 2/3 (25%)"
    assert world.governance.ledger().verify().ok

    world.run("monthly_scoring_job", "2023-06")
    scores = world.store.read(SCORES, "2023-06")
    cell = (scores["cell"] == "canary").to_numpy()
    assert share_deviation(int(cell.sum()), len(scores), 0.25) < 4
    assert (scores["rollout_step"] == 2).all() and (scores["canary_share"] == 0.25).all()
    assert set(scores.loc[cell, "model_version"]) == {challenger.version}
    # the cell's feature mix is the rest's: no feature predicts the cell (AUC 0.5 within 4 standard errors)
    features = scores[["application_id"]].merge(world.store.read(FEATURES, "2023-06"), on="application_id")
    n1, n0 = int(cell.sum()), int((~cell).sum())
    se = np.sqrt((n1 + n0 + 1) / (12 * n1 * n0))
    numeric = [c for c in features.columns if features[c].dtype.kind in "fi" and features[c].notna().all()]
    assert len(numeric) >= 4
    for column in numeric:
        assert abs(roc_auc(cell.astype(int), features[column].to_numpy()) - 0.5) < 4 * se, column

    world.run("advance_job", run_config=rollout_config("advance", world.name, challenger.version, APPROVER, "the 25% cell held its gates"))
    assert world.registry.by_alias(CHAMPION).version == challenger.version and world.registry.by_alias(CANARY) is None
    kinds = [e.kind for e in world.governance.ledger().entries() if e.subject == challenger.label]
    assert kinds[-4:] == ["rollout_canary", "rollout_advance", "approval", "promotion"]
    promotion = world.governance.ledger().entries(kind="promotion")[-1]
    assert promotion.payload["rollout_step"] == 3 and promotion.payload["share"] == 1.0
    # the model card's rollout section, rewritten from the ledger at each step
    card = world.registry.read_text(challenger.run_id, "model_card.md")
    assert card.count(ROLLOUT_HEADING) == 1 and "Now: its rollout ended: promoted to champion (the last step)." in card
    assert f"| canary started | 1 | 5% | {APPROVER} |" in card and f"| advanced | 2 | 25% | {APPROVER} |" in card
    world.run("monthly_scoring_job", "2023-06")
    after = world.store.read(SCORES, "2023-06")
    assert set(after["model_version"]) == {challenger.version} and (after["cell"] == "champion").all() and (after["rollout_step"] == 0).all()
    assert world.governance.ledger().verify().ok


def test_a_worse_challenger_forced_is_stopped_at_5_percent_by_the_sensor(world):
    good = world.train_baseline()
    # A candidate trained on shuffled labels, its failed gates overridden (forced), put in a canary.
    world.run("model_training_job", assets=["training_set"])
    frame = world.store.read("training_set")
    frame["defaulted"] = frame["defaulted"].sample(frac=1.0, random_state=0).to_numpy()
    world.store.write("training_set", frame)
    world.run("model_training_job", assets=["risk_model", "model_evaluation"])
    weak = world.registry.by_alias(CHALLENGER)
    world.registry.tag_version(weak.version, {"gates_passed": "true"})
    # a promotion while it runs is refused: the rollout ends in its own promotion or rollback
    world.run("canary_job", run_config=rollout_config("canary", world.name, weak.version, APPROVER, "forced for the scenario"))
    refused = world.run("promotion_job", run_config=approval_config(world.name, weak.version, APPROVER, "shortcut"), raise_on_error=False)
    assert not refused.success

    world.run("monthly_scoring_job", "2023-05")
    before = world.store.read(SCORES, "2023-05")
    assert (before["cell"] == "canary").sum() > 60
    figures = _swap(world, "2023-05")
    assert figures["cell_estimated_auc"] < 0.65 < figures["cell_champion_estimated_auc"]
    # the month's report says who decided which cell, and holds the swap set
    world.run("regulatory_report_job", "2023-05")
    section = json.loads(world.store.file("regulatory_report", "2023-05", "report.json").read_text())["rollout"]
    assert section["rollout_step"] == 1 and {c["cell"]: c["decided_by"] for c in section["cells"]} == {"canary": weak.version, "champion": good.version}
    assert sum(r["rows"] for r in section["swap_set"]) == len(before)

    request = world.tick(world.sensor("rollout_rollback_sensor"))
    assert isinstance(request, dg.RunRequest) and request.run_key == f"rollout-rollback-{world.name}-{weak.version}-step-1"
    world.run("rollback_job", run_config=request.run_config, tags=request.tags)
    assert world.registry.by_alias(CANARY) is None and world.registry.by_alias(CHAMPION).version == good.version
    entry = world.governance.ledger().entries(kind="rollout_rollback")[-1]
    assert entry.actor == "performance_rollback_sensor" and entry.subject == weak.label and "below the floor" in entry.payload["reason"]
    assert not world.governance.rollout(world.registry).active

    world.run("monthly_scoring_job", "2023-05")
    after = world.store.read(SCORES, "2023-05")
    assert (after["cell"] == "champion").all() and set(after["model_version"]) == {good.version}
    outside = (before["cell"] == "champion").to_numpy()
    compared = ["application_id", "pd", "decision", *REASONS]
    assert after.loc[outside, compared].reset_index(drop=True).equals(before.loc[outside, compared].reset_index(drop=True))  # nothing outside the cell changed
    assert np.allclose(after.loc[~outside, "pd"], before.loc[~outside, "champion_pd"])  # the cell is the champion's again

    world.registry.set_alias(CANARY, weak.version)  # by hand, behind the ledger's back
    with pytest.raises(ChampionNotGoverned, match="the registry's `canary` alias is .* but the ledger's rollout .* is not running"):
        world.run("monthly_scoring_job", "2023-05", assets=["risk_scores"])
