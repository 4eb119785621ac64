"""A challenger on live applications: the canary cell, the swap set, the step gates and the rollout's
state as the ledger records it. Pure: no registry, no Dagster; the governance resource and the
scoring assets call these."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskcore.datasets import SCORES
from riskcore.gates import Gate, _unjudged, adverse_impact_ratio, group_codes, grouped_rate_ratio
from riskcore.joins import join
from riskcore.keyed_hash import hmac_sha256_digests
from riskcore.metrics import bayes_optimal_auc, roc_auc
from riskcore.rollout_policy import RolloutPolicy

CANARY, CHAMPION = "canary", "champion"  # the cells: decided by the challenger, by the champion
DECISIONS = ("approve", "refer", "decline")
# Ledger kinds of a rollout: its start (step 1), each further step, its end without promotion. The
# last step is recorded as the promotion it is (kinds approval and promotion), so the champion's
# authority stays where governed_champion reads it.
START, ADVANCE, ROLLBACK = "rollout_canary", "rollout_advance", "rollout_rollback"
_UNIT = float(2**64)


# What scores written before staged rollouts lack (a deployment upgraded mid-month): every row of
# theirs was the champion's, so its cell, no step, no share; and the champion's side is its own.
BEFORE_ROLLOUTS = {"cell": CHAMPION, "rollout_step": 0, "canary_share": 0.0}
CHAMPION_SIDE = {"champion_pd": "pd", "champion_decision": "decision"}


def read_scores(store, month: str, columns: list[str] | None = None, categories: list[str] | None = None) -> pd.DataFrame:
    """The month's scores (`columns` of them; None: all) with their cell, rollout step and the
    champion's side, also when written before staged rollouts: such rows read as the champion's.
    `categories`: text columns read as pandas categoricals (a month's cell and model lineage hold a
    few values a million times: no Python string per row). `store`: anything with DatasetStore's
    `columns` and `read` (riskcore reads no storage itself)."""
    present = store.columns(SCORES, month)
    absent = [c for c in (*BEFORE_ROLLOUTS, *CHAMPION_SIDE) if c not in present]
    wanted = [*present, *absent] if columns is None else list(columns)
    filled = [c for c in wanted if c in absent]
    needed = dict.fromkeys([*(c for c in wanted if c not in filled), *(CHAMPION_SIDE[c] for c in filled if c in CHAMPION_SIDE)])
    frame = store.read(SCORES, month, columns=list(needed), categories=[c for c in categories or () if c in needed])
    frame = frame.assign(**{c: BEFORE_ROLLOUTS[c] if c in BEFORE_ROLLOUTS else frame[CHAMPION_SIDE[c]] for c in filled})
    return frame[wanted]


def assignment_key_id(key: str) -> str:
    """The assignment key's public id (the first 8 hex of HMAC-SHA256(key, "key-id"), as a PII token key's)."""
    from riskcore.pii import key_id

    return key_id(key)


def assignment_units(ids, key: str) -> np.ndarray:
    """Each application id mapped to [0, 1) by HMAC-SHA256 under a secret key: the same id always
    lands on the same number, and without the key no one can tell (or choose) where an id lands,
    so the cell is unrelated to anything about the applicant. The first 8 bytes of each digest,
    big-endian, over 2**64."""
    messages = (str(i).encode() for i in ids)
    return np.frombuffer(b"".join(digest[:8] for digest in hmac_sha256_digests(key.encode(), messages)), dtype=">u8") / _UNIT


def assign_cells(units: np.ndarray, share: float) -> np.ndarray:
    """The canary cell is units below the step's share: a larger share keeps every applicant already in it."""
    return np.where(np.asarray(units) < share, CANARY, CHAMPION)


@dataclass(frozen=True)
class RolloutState:
    """Where a model's rollout stands, as the ledger's entries say (step 0: none, champion only)."""

    step: int = 0
    version: str | None = None  # the challenger deciding the canary cell
    champion: str | None = None  # the champion when the canary started
    share: float = 0.0
    key_id: str | None = None
    policy: str | None = None
    since_seq: int | None = None  # the entry that set the current step

    @property
    def active(self) -> bool:
        return self.step > 0


def rollout_state(entries, model_name: str) -> RolloutState:
    """Fold the ledger's entries of `model_name`: a canary starts at step 1, each advance sets its
    step; the promotion it ends in, its rollback, or any change of champion ends it."""
    state = RolloutState()
    for e in entries:
        if not e.subject.startswith(f"{model_name}/"):
            continue
        if e.kind == START:
            p = e.payload
            state = RolloutState(1, p["version"], p["champion"], float(p["share"]), p["key_id"], p["policy"], e.seq)
        elif e.kind == ADVANCE and state.active:
            state = RolloutState(int(e.payload["step"]), state.version, state.champion, float(e.payload["share"]), state.key_id, state.policy, e.seq)
        elif e.kind in (ROLLBACK, "promotion", "rollback"):
            state = RolloutState()
    return state


def swap_table(frame: pd.DataFrame, sensitive: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Champion decision x challenger decision, every cell listed (zero rows too): volume, share,
    how many of them the challenger decided (canary cell), the expected bad rate from each model's
    PD, and per sensitive attribute the ratio of the lowest to the highest group's rate of landing
    in the cell (1: groups land there alike). `frame` holds champion_decision, champion_pd,
    challenger_decision, challenger_pd and cell, row-aligned with `sensitive`."""
    champion_codes, challenger_codes = (pd.Categorical(frame[c], categories=DECISIONS).codes for c in ("champion_decision", "challenger_decision"))
    pair = np.where((champion_codes >= 0) & (challenger_codes >= 0), champion_codes * len(DECISIONS) + challenger_codes, -1)
    canary = (frame["cell"] == CANARY).to_numpy()
    champion_pd, challenger_pd = frame["champion_pd"].to_numpy(dtype="float64"), frame["challenger_pd"].to_numpy(dtype="float64")
    groups = {column: group_codes(sensitive[column]) for column in sensitive.columns}  # factorised once, not once per cell
    rows = []
    for i, (champion, challenger) in enumerate((a, b) for a in DECISIONS for b in DECISIONS):
        inside = pair == i
        count = int(inside.sum())
        row = {
            "champion_decision": champion,
            "challenger_decision": challenger,
            "swap": "same" if champion == challenger else ("swap_in" if challenger == "approve" else "swap_out" if champion == "approve" else "other"),
            "rows": count,
            "share": float(inside.mean()) if len(frame) else 0.0,
            "canary_rows": int((inside & canary).sum()),
            "champion_expected_bad_rate": float(champion_pd[inside].mean()) if count else float("nan"),
            "challenger_expected_bad_rate": float(challenger_pd[inside].mean()) if count else float("nan"),
        }
        for column, (codes, labels) in groups.items():
            # the rate of landing in this cell, per group: adverse_impact_ratio's lowest over highest
            ratio, _ = grouped_rate_ratio(inside, codes, labels, min_group_size)
            row[f"{column}_rate_ratio"] = float("nan") if ratio is None else ratio
        rows.append(row)
    return pd.DataFrame(rows)


def estimated_auc(pd_: np.ndarray) -> float:
    """The AUC a model's PDs imply on these rows were they the true PDs: its performance estimated
    before any label matures (honest only as far as the model is calibrated; realised AUC checks that)."""
    return bayes_optimal_auc(pd_)


def cell_performance(cell: pd.DataFrame, target: str | None = None) -> dict[str, float]:
    """The canary cell's figures the gates and the rollback sensor read: decisions, estimated AUC of
    challenger and champion on the same rows, and realised AUCs on the rows whose labels matured
    (`target`: 0/1, missing where not matured; both classes needed)."""
    out = {"cell_decisions": float(len(cell))}
    if len(cell) >= 2:
        out["cell_estimated_auc"] = estimated_auc(cell["challenger_pd"].to_numpy())
        out["cell_champion_estimated_auc"] = estimated_auc(cell["champion_pd"].to_numpy())
    if target is not None and target in cell:
        labelled = cell[cell[target].notna()]
        y = labelled[target].to_numpy(dtype="int64")
        if len(labelled) and 0 < y.sum() < len(y):
            out["cell_labelled"] = float(len(labelled))
            out["cell_matured_defaults"] = float(y.sum())
            out["cell_realised_auc"] = roc_auc(y, labelled["challenger_pd"].to_numpy())
            out["cell_champion_realised_auc"] = roc_auc(y, labelled["champion_pd"].to_numpy())
    return out


def _auc_gates(name: str, own: float | None, champion: float | None, floor: float, tolerance: float, missing: str) -> list[Gate]:
    if own is None or champion is None:
        return [Gate(name, None, f">= {floor}", True, missing)]
    return [
        Gate(name, own, f">= {floor}", own >= floor),
        Gate(f"{name}_vs_champion", own - champion, f">= -{tolerance}", own >= champion - tolerance, f"champion {champion:.4f} on the same rows"),
    ]


def step_gates(policy: RolloutPolicy, cell: pd.DataFrame, sensitive: pd.DataFrame, target: str | None = None) -> list[Gate]:
    """The gates a step must hold before the next: on the canary cell's decisions since it began
    (challenger_pd, champion_pd, decision; `target` where labels matured), its sensitive attributes
    row-aligned. Realised performance is judged only once some labels matured."""
    figures = cell_performance(cell, target)
    defaults = figures.get("cell_matured_defaults", 0.0)
    realised = defaults >= policy.min_matured_defaults
    gates = [Gate("cell_decisions", figures["cell_decisions"], f">= {policy.min_cell_decisions}", figures["cell_decisions"] >= policy.min_cell_decisions)]
    gates += _auc_gates(
        "estimated_auc",
        figures.get("cell_estimated_auc"),
        figures.get("cell_champion_estimated_auc"),
        policy.min_estimated_auc,
        policy.estimated_auc_tolerance,
        "too few decisions to estimate",
    )
    gates += _auc_gates(
        "realised_auc",
        figures.get("cell_realised_auc") if realised else None,
        figures.get("cell_champion_realised_auc"),
        policy.min_realised_auc,
        policy.realised_auc_tolerance,
        f"{defaults:.0f} matured defaults in the cell, {policy.min_matured_defaults} needed: judged once they have matured",
    )
    gates.append(cell_fairness(policy, (cell["decision"] == "approve").to_numpy(), sensitive.reset_index(drop=True)))
    return gates


def cell_fairness(policy: RolloutPolicy, approved: np.ndarray, sensitive: pd.DataFrame) -> Gate:
    """The lowest adverse impact ratio of the cell's approvals over the sensitive attributes; an
    attribute whose groups are too small in the cell is not judged (the step waits: it fails)."""
    threshold = f">= {policy.min_adverse_impact_ratio}"
    if sensitive.columns.empty:
        return Gate("cell_adverse_impact_ratio", None, threshold, True, "no sensitive attribute declared")
    ratios = {c: adverse_impact_ratio(approved, sensitive[c], policy.min_group_size)[0] for c in sensitive.columns}
    notes = [_unjudged(sensitive[c], policy.min_group_size) for c, r in ratios.items() if r is None]
    judged = {c: r for c, r in ratios.items() if r is not None}
    if not judged or notes:
        return Gate("cell_adverse_impact_ratio", min(judged.values()) if judged else None, threshold, False, "; ".join(notes))
    worst = min(judged, key=judged.get)
    return Gate("cell_adverse_impact_ratio", judged[worst], threshold, judged[worst] >= policy.min_adverse_impact_ratio, f"lowest: {worst}")


def rollback_decision(months: dict[str, dict[str, float]], policy: RolloutPolicy) -> tuple[bool, str]:
    """(roll the canary back?, why) from the cell's figures of the months decided at the current step
    (cell_performance's, per month), pooled by the cell's decisions: the policy's floors and
    tolerances against the champion on the same rows, estimated and, where matured, realised."""
    if not months:
        return False, "no month decided at this step yet"
    span = f"{min(months)}..{max(months)}" if len(months) > 1 else min(months)

    def pooled(key: str, weight: str) -> float | None:
        have = [m for m in months.values() if m.get(key) is not None and m.get(weight)]
        return float(np.average([m[key] for m in have], weights=[m[weight] for m in have])) if have else None

    defaults = sum(m.get("cell_matured_defaults", 0.0) for m in months.values())

    checks = (
        ("estimated", "cell_decisions", policy.min_estimated_auc, policy.estimated_auc_tolerance),
        ("realised", "cell_labelled", policy.min_realised_auc, policy.realised_auc_tolerance),
    )
    said = []
    for kind, weight, floor, tolerance in checks:
        own, champion = pooled(f"cell_{kind}_auc", weight), pooled(f"cell_champion_{kind}_auc", weight)
        if own is None or (kind == "realised" and defaults < policy.min_matured_defaults):
            continue
        if own < floor:
            return True, f"{kind} AUC {own:.4f} in the canary cell over {span} is below the floor {floor} (champion {champion:.4f} on the same rows)"
        if champion is not None and champion - own > tolerance:
            return True, f"{kind} AUC {own:.4f} in the canary cell over {span} trails the champion's {champion:.4f} on the same rows by more than {tolerance}"
        said.append(f"{kind} AUC {own:.4f} (champion {champion:.4f})")
    return False, f"canary cell over {span}: " + ("; ".join(said) or "nothing to judge yet") + ": within the policy"


def decide_by_cell(champion: pd.DataFrame, challenger: pd.DataFrame | None, cells: np.ndarray, step: int, share: float) -> pd.DataFrame:
    """The month's decisions: the champion's rows in its cell, the challenger's whole rows (PD,
    decision, its own reason codes, its lineage) in the canary cell; and on every row what the
    champion would have decided (the swap set's other side), the cell and the rollout step.
    `champion` scores every row; `challenger` the canary cell's rows only, in their order (what
    it decides: scoring the month twice for a 5% cell would be the stage's largest waste)."""
    canary = np.asarray(cells) == CANARY
    out = champion
    if challenger is not None and canary.any():
        out = pd.DataFrame({c: _by_cell(champion[c], challenger[c], canary) for c in champion.columns}, index=champion.index)
    cell = pd.Categorical(np.asarray(cells), categories=[CHAMPION, CANARY])
    return out.assign(champion_pd=champion["pd"], champion_decision=champion["decision"], cell=cell, rollout_step=step, canary_share=share)


def _by_cell(champion: pd.Series, challenger: pd.Series, canary: np.ndarray) -> pd.Series:
    """The challenger's values (one per canary row) in the canary cell, the champion's elsewhere, in
    the champion's dtype; a categorical gets the categories of both (the challenger's version is none
    of the champion's)."""
    if isinstance(champion.dtype, pd.CategoricalDtype):
        categories = champion.cat.categories.union(challenger.cat.categories)
        champion, challenger = champion.cat.set_categories(categories), challenger.cat.set_categories(categories)
    values = champion.array.copy()
    values[canary] = challenger.array
    return pd.Series(values, index=champion.index, name=champion.name)


def reconciliation_problems(scores: pd.DataFrame, shadow: pd.DataFrame, id_column: str, compared: list[str]) -> list[str]:
    """What does not add up between the month's decisions and the challenger's shadow scores: the
    same applications on both sides, and in the canary cell the decisions equal to the shadow's
    on `compared` columns (PD, decision, reason codes, version): the challenger decided them."""
    problems = []
    canary = (scores["cell"] == CANARY).to_numpy()
    # both are written in the features' order: row for row, no set or join of a million ids, unless not
    in_order = len(scores) == len(shadow) and bool((scores[id_column].to_numpy() == shadow[id_column].to_numpy()).all())
    if not in_order and (len(scores) != len(shadow) or set(scores[id_column]) != set(shadow[id_column])):
        problems.append(f"{len(scores)} decisions and {len(shadow)} shadow scores are not the same applications")
    decided = scores[canary].reset_index(drop=True)
    theirs = shadow[canary].reset_index(drop=True) if in_order else join(decided[[id_column]], shadow, id_column, "one_to_one", how="left")
    for column in compared:
        differ = int((decided[column].astype("string").fillna("") != theirs[column].astype("string").fillna("")).sum())
        if differ:
            problems.append(f"{differ} canary decisions differ from the challenger's shadow {column}")
    champion = scores[scores["cell"] == CHAMPION]
    if (champion["decision"].astype("string") != champion["champion_decision"].astype("string")).any():  # categories of each side's own
        problems.append("decisions in the champion cell differ from the champion's")
    return problems


def share_deviation(canary_rows: int, rows: int, share: float) -> float:
    """How many binomial standard errors the cell's share of `rows` lies from the step's `share`
    (0 when the share is 0 or 1: nothing random to deviate)."""
    if rows == 0 or share in (0.0, 1.0):
        return 0.0 if rows == 0 or canary_rows == round(share * rows) else float("inf")
    return abs(canary_rows / rows - share) / float(np.sqrt(share * (1 - share) / rows))
