"""The rollout's pure domain: policy, keyed cell assignment, ledger state, swap set, step gates."""

import hashlib
import hmac
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resources.storage import DatasetStore
from riskcore.datasets import SCORES
from riskcore.gates import adverse_impact_ratio
from riskcore.ledger import Entry
from riskcore.metrics import roc_auc
from riskcore.promotion import DEFAULT_PROMOTION_POLICY, load_promotion_policy
from riskcore.review_policy import DEFAULT_REVIEW_POLICY, load_review_policy
from riskcore.rollout import (
    ADVANCE,
    CANARY,
    CHAMPION,
    ROLLBACK,
    START,
    assign_cells,
    assignment_units,
    decide_by_cell,
    read_scores,
    reconciliation_problems,
    rollback_decision,
    rollout_state,
    share_deviation,
    step_gates,
    swap_table,
)
from riskcore.rollout_policy import DEFAULT_ROLLOUT_POLICY, load_rollout_policy
from riskcore.training_policy import DEFAULT_TRAINING_POLICY, load_training_policy

KEY = "unit-test-rollout-key"


def test_the_shipped_policy_loads_and_a_broken_one_names_file_and_key(tmp_path):
    policy = load_rollout_policy()
    assert policy.steps == (0.05, 0.25, 1.0) and policy.label == "pd-staged-rollout@1.0.0"
    assert policy.step_label(1) == "step 1/3 (5%)" and policy.share(0) == 0.0
    text = DEFAULT_ROLLOUT_POLICY.read_text()
    for broken, match in (
        (text.replace("steps: [0.05, 0.25, 1.0]", "steps: [0.05, 0.25]"), r"steps: expected increasing shares"),
        (text.replace("key_id: any", "key_id: secret"), r"assignment.key_id: expected 'any' or the 8-hex id"),
        (text.replace("min_cell_decisions: 500", "min_cell_decisions: many"), r"gates.min_cell_decisions: expected an integer"),
        (text.replace("  min_group_size: 30\n", ""), r"gates.min_group_size: missing"),
    ):
        path = Path(tmp_path / "rollout.yaml")
        path.write_text(broken)
        with pytest.raises(ValueError, match=rf"{path}: {match}"):
            load_rollout_policy(path)


def test_assignment_is_stable_keyed_balanced_and_nested():
    ids = [f"APP-{i:06d}" for i in range(40_000)]
    units = assignment_units(ids, KEY)
    assert np.array_equal(units, assignment_units(ids, KEY))  # the same applicant, the same cell, on every re-score
    assert np.array_equal(units[::-1], assignment_units(ids[::-1], KEY))  # per applicant, not per position
    other = assignment_units(ids, "another-key")
    assert np.corrcoef(units, other)[0, 1] < 0.02  # without the key, nothing tells where an id lands
    assert ((units >= 0) & (units < 1)).all()
    for share in (0.05, 0.25):
        canary = int((assign_cells(units, share) == CANARY).sum())
        assert share_deviation(canary, len(ids), share) < 4
    small, large = assign_cells(units, 0.05) == CANARY, assign_cells(units, 0.25) == CANARY
    assert (large[small]).all()  # advancing keeps every applicant already in the cell
    # unrelated to anything about the applicant: the id's own number does not predict the cell
    assert abs(roc_auc(large.astype(int), np.arange(len(ids))) - 0.5) < 0.02


@pytest.mark.parametrize("key", ["k", KEY, "x" * 64, "y" * 65, "z" * 200])  # shorter than, as long as and longer than SHA-256's block
def test_assignment_units_are_hmac_sha256_of_each_id(key):
    ids = ["APP-000001", "APP-000002", 17, "é-ü"]
    expected = [int.from_bytes(hmac.new(key.encode(), str(i).encode(), hashlib.sha256).digest()[:8], "big") / 2**64 for i in ids]
    assert assignment_units(ids, key).tolist() == expected and assignment_units([], key).tolist() == []


def _entry(seq, kind, subject, payload=None):
    return Entry(seq, "2024-01-01T00:00:00Z", kind, subject, "x", payload or {}, "", "")


def test_the_state_is_the_ledgers_fold():
    start = {"version": "2", "champion": "1", "share": 0.05, "key_id": "abcd0123", "policy": "p@1"}
    entries = [_entry(1, "promotion", "m/1"), _entry(2, START, "m/2", start), _entry(3, "gate_results", "m/3"), _entry(4, START, "other/9", start)]
    state = rollout_state(entries, "m")
    assert (state.step, state.version, state.champion, state.share, state.since_seq) == (1, "2", "1", 0.05, 2)
    advanced = rollout_state([*entries, _entry(5, ADVANCE, "m/2", {"step": 2, "share": 0.25})], "m")
    assert (advanced.step, advanced.share, advanced.version, advanced.since_seq) == (2, 0.25, "2", 5)
    for ending in (ROLLBACK, "promotion", "rollback"):
        assert not rollout_state([*entries, _entry(5, ending, "m/2")], "m").active
    assert not rollout_state(entries[:1], "m").active


def _rows(n=2000, seed=0, challenger_spread=1.0):
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    champion_pd = 1 / (1 + np.exp(-(-2.5 + risk)))
    challenger_pd = 1 / (1 + np.exp(-(-2.5 + challenger_spread * risk + 0.3 * rng.normal(size=n))))
    decision = lambda p: np.where(p < 0.08, "approve", np.where(p < 0.15, "refer", "decline"))  # noqa: E731
    cells = assign_cells(assignment_units([f"A{i}" for i in range(n)], KEY), 0.25)
    frame = pd.DataFrame(
        {"champion_pd": champion_pd, "champion_decision": decision(champion_pd), "challenger_pd": challenger_pd, "challenger_decision": decision(challenger_pd)}
    )
    frame["cell"] = cells
    frame["decision"] = np.where(cells == CANARY, frame["challenger_decision"], frame["champion_decision"])
    frame["defaulted"] = (rng.random(n) < champion_pd).astype(int)
    return frame, pd.DataFrame({"sex": rng.choice(["F", "M"], n)})


def test_the_swap_set_accounts_for_every_application():
    frame, sensitive = _rows()
    table = swap_table(frame, sensitive, 30)
    assert len(table) == 9 and table["rows"].sum() == len(frame) and table["canary_rows"].sum() == (frame["cell"] == CANARY).sum()
    swap_in = table[(table["champion_decision"] == "refer") & (table["challenger_decision"] == "approve")].iloc[0]
    inside = (frame["champion_decision"] == "refer") & (frame["challenger_decision"] == "approve")
    assert swap_in["swap"] == "swap_in" and swap_in["rows"] == inside.sum() > 0
    assert swap_in["challenger_expected_bad_rate"] == pytest.approx(frame.loc[inside, "challenger_pd"].mean())
    same = table[table["swap"] == "same"]
    assert 0.8 < same["sex_rate_ratio"].min() <= 1  # groups drawn alike land in the cells alike


def test_the_swap_sets_rate_ratios_are_each_cells_adverse_impact_ratio():
    """Each attribute is factorised once for the nine cells: the same ratios as judging each cell alone,
    missing groups left out and groups below the minimum size not judged."""
    frame, sensitive = _rows(n=3000, seed=3)
    sensitive["band"] = pd.Series(np.random.default_rng(4).choice(["a", "b", "c", None], len(frame), p=[0.49, 0.49, 0.01, 0.01]), dtype="string")
    table = swap_table(frame.sample(frac=1.0, random_state=5), sensitive.sample(frac=1.0, random_state=5), 35)
    for row in table.itertuples():
        inside = ((frame["champion_decision"] == row.champion_decision) & (frame["challenger_decision"] == row.challenger_decision)).to_numpy()
        for column in sensitive.columns:
            ratio, expected = getattr(row, f"{column}_rate_ratio"), adverse_impact_ratio(inside, sensitive[column], 35)[0]
            assert ratio == expected or (expected is None and np.isnan(ratio))


def test_step_gates_hold_for_a_sound_challenger_and_stop_a_flat_one():
    policy = load_rollout_policy()
    frame, sensitive = _rows(n=8000)
    canary = (frame["cell"] == CANARY).to_numpy()
    cell, groups = frame[canary].reset_index(drop=True), sensitive[canary].reset_index(drop=True)
    gates = {g.name: g for g in step_gates(policy, cell, groups)}
    assert all(g.passed for g in gates.values()), gates
    assert gates["realised_auc"].value is None and "0 matured defaults in the cell, 40 needed" in gates["realised_auc"].note
    judged = {g.name: g for g in step_gates(policy, cell, groups, "defaulted")}
    assert judged["realised_auc"].value > 0.65 and "realised_auc_vs_champion" in judged
    flat = cell.assign(challenger_pd=0.1 + 0.001 * np.random.default_rng(1).random(len(cell)))
    failed = {g.name for g in step_gates(policy, flat, groups) if not g.passed}
    assert {"estimated_auc", "estimated_auc_vs_champion"} <= failed
    assert {g.name for g in step_gates(policy, cell.head(100), groups.head(100)) if not g.passed} == {"cell_decisions"}


def test_the_rollback_decision_pools_months_by_decisions():
    policy = load_rollout_policy()
    good = {"cell_decisions": 100.0, "cell_estimated_auc": 0.74, "cell_champion_estimated_auc": 0.73}
    assert rollback_decision({"2024-01": good}, policy)[0] is False
    flat = {**good, "cell_estimated_auc": 0.55}
    roll, why = rollback_decision({"2024-01": flat}, policy)
    assert roll and "estimated AUC 0.5500 in the canary cell over 2024-01 is below the floor 0.65" in why
    trailing = {**good, "cell_labelled": 90.0, "cell_matured_defaults": 12.0, "cell_realised_auc": 0.66, "cell_champion_realised_auc": 0.71}
    assert rollback_decision({"2024-02": trailing}, policy)[0] is False  # 12 defaults: too few to judge
    trailing["cell_matured_defaults"] = 45.0
    roll, why = rollback_decision({"2024-01": good, "2024-02": trailing}, policy)
    assert roll and why.startswith("realised AUC 0.6600 in the canary cell over 2024-01..2024-02 trails")
    assert rollback_decision({}, policy) == (False, "no month decided at this step yet")


@pytest.mark.parametrize("text", ["object", "category"])  # category: text as `score` makes it
def test_decisions_by_cell_come_whole_from_the_deciding_model_and_reconcile(text):
    ids = ["a", "b", "c", "d"]
    champion = pd.DataFrame(
        {"id": ids, "pd": [0.1, 0.2, 0.3, 0.4], "decision": ["approve", "refer", "decline", "decline"], "reason_code_1": ["X1", "X2", "X3", "X4"]}
    ).assign(model_version="1")
    challenger = champion.assign(pd=[0.5, 0.05, 0.6, 0.7], decision=["decline", "approve", "decline", "decline"], reason_code_1="Y9", model_version="2")
    texts = {c: text for c in ["decision", "reason_code_1", "model_version"]}  # the challenger's version and reason: no category of the champion's
    champion, challenger = champion.astype(texts), challenger.astype(texts)
    cells = np.array([CHAMPION, CANARY, CHAMPION, CHAMPION])
    decided = decide_by_cell(champion, challenger[cells == CANARY], cells, 1, 0.05)  # the challenger scores its cell's rows
    assert decided.loc[1, ["pd", "decision", "reason_code_1", "model_version"]].tolist() == [0.05, "approve", "Y9", "2"]
    assert decided.loc[1, "champion_decision"] == "refer" and decided.loc[0, "reason_code_1"] == "X1"
    compared = ["pd", "decision", "reason_code_1", "model_version"]
    assert reconciliation_problems(decided, challenger, "id", compared) == []
    tampered = decided.copy()
    tampered.loc[1, "reason_code_1"] = "X2"  # the champion's reason on a challenger's decision: Reg B broken
    assert reconciliation_problems(tampered, challenger, "id", compared) == ["1 canary decisions differ from the challenger's shadow reason_code_1"]
    # compared row for row when both are in one order, by id when not: the same verdicts
    reordered = challenger.iloc[::-1]
    assert reconciliation_problems(decided, reordered, "id", compared) == []
    assert reconciliation_problems(tampered, reordered, "id", compared) == ["1 canary decisions differ from the challenger's shadow reason_code_1"]
    assert reconciliation_problems(decided, challenger.iloc[:3], "id", compared) == ["4 decisions and 3 shadow scores are not the same applications"]


@pytest.mark.parametrize(
    "load, shipped",
    [(load_rollout_policy, DEFAULT_ROLLOUT_POLICY), (load_review_policy, DEFAULT_REVIEW_POLICY), (load_promotion_policy, DEFAULT_PROMOTION_POLICY)]
    + [(load_training_policy, DEFAULT_TRAINING_POLICY)],
)
def test_every_policy_file_is_a_mapping_whose_settings_are_checked(tmp_path, load, shipped):
    """The rollout, review, promotion and training policies open the same way (riskcore.yamlfile.load_policy_mapping)."""
    listed = tmp_path / "listed.yaml"
    listed.write_text("- policy_id\n- version\n")
    with pytest.raises(ValueError, match=r"listed.yaml: expected a mapping of policy settings"):
        load(listed)
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text(shipped.read_text().replace("policy_id:", "policy_name:"))
    with pytest.raises(ValueError, match=r"nameless.yaml: policy_id: missing"):
        load(nameless)
    assert load(shipped).label.endswith(f"@{load(shipped).version}")


def test_scores_written_before_staged_rollouts_read_as_the_champions(tmp_path):
    """A deployment upgraded mid-month: that month's scores file has no cell, step, share or champion side."""
    store = DatasetStore(base_path=str(tmp_path))
    old = pd.DataFrame({"application_id": ["a", "b", "c"], "pd": [0.1, 0.5, 0.9], "decision": ["approve", "refer", "decline"], "model_version": "3"})
    store.write(SCORES, old, "2023-05")
    read = read_scores(store, "2023-05", ["application_id", "cell", "pd", "rollout_step", "canary_share", "champion_decision", "champion_pd"])
    assert list(read.columns) == ["application_id", "cell", "pd", "rollout_step", "canary_share", "champion_decision", "champion_pd"]
    assert (read["cell"] == CHAMPION).all() and (read["rollout_step"] == 0).all() and (read["canary_share"] == 0.0).all()
    assert read["champion_pd"].equals(old["pd"]) and read["champion_decision"].equals(old["decision"])
    everything = read_scores(store, "2023-05")
    assert list(everything.columns) == [*old.columns, "cell", "rollout_step", "canary_share", "champion_pd", "champion_decision"]
    assert len(everything[everything["cell"] != CANARY]) == 3  # what the monitoring assets keep: all of it
    with pytest.raises(ValueError, match="reason_code_1"):
        read_scores(store, "2023-05", ["application_id", "reason_code_1"])  # a column never written is still an error

    # scores written with cells are read as written
    new = old.assign(cell=[CANARY, CHAMPION, CHAMPION], rollout_step=1, canary_share=0.05, champion_pd=[0.2, 0.5, 0.9], champion_decision="decline")
    store.write(SCORES, new, "2023-06")
    assert read_scores(store, "2023-06").equals(new)
    assert read_scores(store, "2023-06", ["cell", "champion_pd"]).equals(new[["cell", "champion_pd"]])
    for month, written in (("2023-05", old.assign(cell=CHAMPION)), ("2023-06", new)):  # as categories, filled columns too
        lineage = read_scores(store, month, ["cell", "model_version", "pd"], categories=["cell", "model_version"])
        assert [str(lineage[c].dtype) for c in lineage] == ["category" if month == "2023-06" else "object", "category", "float64"]
        assert lineage.astype({"cell": object, "model_version": object}).equals(written[["cell", "model_version", "pd"]])
