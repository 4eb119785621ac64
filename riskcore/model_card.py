"""The model card of a registered version: what a model-risk reviewer reads before signing."""

from __future__ import annotations

import numbers

import pandas as pd

from riskcore.escaping import markdown_code, markdown_text
from riskcore.features import FeatureSpec
from riskcore.gates import Gate

__all__ = [
    "markdown_text",
    "render_model_card",
    "rollout_section",
    "with_rollout_section",
]  # markdown_text: also what governance events appended to a card go through

ROLLOUT_HEADING = "## Staged rollout (governance ledger)"


def _table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(markdown_text(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _cell(value) -> str:
    """Numbers as figures; everything else (names, notes, groups: from data or from a person) escaped."""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    return markdown_text(value)


def render_model_card(
    *,
    model: str,
    run_id: str,
    lineage: dict[str, str],
    windows: dict[str, str],
    specs: list[FeatureSpec],
    metrics: dict[str, float],
    calibration: pd.DataFrame,
    gates: list[Gate],
    policy: str,
    compared_with: str | None,
    approval_rates: dict[str, dict[str, float]],
    ledger: list[tuple[str, str, str]],
    rollout: list,
) -> str:
    """Markdown; deterministic for the same inputs (no clock inside). `rollout`: the ledger's
    entries of the model (riskcore.ledger.Entry), of which its rollout section is made."""
    features = pd.DataFrame([(s.name, s.kind, s.reason_code, s.reason_text) for s in specs], columns=["feature", "kind", "reason code", "adverse-action text"])
    discrimination = pd.DataFrame(
        [
            (
                sample,
                metrics.get(f"{p}_auc"),
                metrics.get(f"{p}_gini"),
                metrics.get(f"{p}_ks"),
                metrics.get(f"{p}_brier"),
                metrics.get(f"{p}_default_rate"),
                int(metrics.get(f"{p}_rows", 0)),
            )
            for sample, p in (("train", "train"), ("out of time", "oot"))
        ],
        columns=["sample", "AUC", "Gini", "KS", "Brier", "default rate", "rows"],
    )
    gate_table = pd.DataFrame(
        [(g.name, "n/a" if g.value is None else round(float(g.value), 4), g.threshold, "pass" if g.passed else "FAIL", g.note) for g in gates],
        columns=["gate", "value", "threshold", "verdict", "note"],
    )
    # Every value below came from data (group values, names) or from a person (actors, notes,
    # labels): escaped for Markdown, never links, HTML or blocks of their own.
    fairness = (
        "\n".join(
            f"- {markdown_code(attribute)}: approval rate by group " + ", ".join(f"{markdown_text(g)} {_cell(r)}" for g, r in rates.items())
            for attribute, rates in approval_rates.items()
        )
        or "- no sensitive attribute"
    )
    history = "\n".join(f"- {markdown_text(kind)} by {markdown_text(actor)} ({markdown_text(when)})" for kind, actor, when in ledger) or "- none yet"
    failed = ", ".join(markdown_text(g.name) for g in gates if not g.passed)
    verdict = "all gates passed" if all(g.passed for g in gates) else "FAILED: " + failed
    compared = markdown_text(compared_with) if compared_with else "no champion (first version)"
    return f"""# Model card: {markdown_text(model)}

MLflow run {markdown_code(run_id)}. Gates: **{verdict}** under {markdown_code(policy)}, compared with {compared}.

## Purpose and limits
Probability of default (PD) of a consumer loan application within the performance window, used
with the decision policy to approve, refer to an underwriter, or decline, with up to four
adverse-action reasons. Not for: pricing, collections, applicants outside the population of the
training window, or any use without the human review the decision policy routes to `refer`.

## Data and lineage
| item | value |
|---|---|
| training window | {markdown_text(windows.get("train"))} |
| out-of-time window | {markdown_text(windows.get("out_of_time"))} |
{chr(10).join(f"| {markdown_text(k)} | {markdown_code(v)} |" for k, v in lineage.items())}

## Features
An additive scorecard (splines on rank-transformed numerics, one-hot categories, logistic
regression, sigmoid calibration): each PD splits exactly into per-feature contributions, and the
reason codes are the largest adverse ones. Sensitive attributes are never inputs.

{_table(features)}

## Discrimination
{_table(discrimination)}

## Calibration (out of time, by PD grade: Jeffreys test and traffic light; grade "all" is the portfolio)
{_table(calibration)}

## Stability and fairness
Score PSI training vs out of time: see the gate `score_psi_train_vs_oot` below.
{fairness}

## Promotion gates
{_table(gate_table)}

## Approvals and history (governance ledger)
{history}

{rollout_section(rollout, model)}

## Known limitations
- Validated out of time on the months named above only; drift monitoring decides when it stops holding.
- Additive by design: interactions between features are not modelled.
- Fairness is measured on the recorded sensitive attributes only (adverse impact ratio of approvals).
"""


def rollout_section(entries, label: str) -> str:
    """The version's staged rollout as the ledger recorded it: where it stands now, and every step
    (its start, each advance, the promotion its last step was, a rollback) with who signed it, when
    and why. Cell volumes and the swap set are monthly figures the card is not given."""
    from riskcore.rollout import ADVANCE, ROLLBACK, START, rollout_state

    model = label.rsplit("/", 1)[0]
    events = {START: "canary started", ADVANCE: "advanced", ROLLBACK: "rolled back: its cell returned to the champion"}
    rows = [
        (events.get(e.kind, "promoted to champion (the last step)"), e.payload.get("step", e.payload.get("rollout_step", e.payload.get("from_step"))), e)
        for e in entries
        if e.subject == label and (e.kind in events or (e.kind == "promotion" and "rollout_step" in e.payload))
    ]
    state = rollout_state(entries, model)
    if state.active and state.version == label.rsplit("/", 1)[1]:
        now = f"in its rollout at step {state.step}: it decides {state.share:.0%} of applicants (the canary cell), the champion the rest"
    elif rows:
        now = f"its rollout ended: {rows[-1][0]}"
    else:
        now = "not in a staged rollout"
    table = _table(
        pd.DataFrame(
            [(what, int(step), f"{float(e.payload.get('share', 0.0)):.0%}", e.actor, e.recorded_at, e.payload.get("reason", "")) for what, step, e in rows],
            columns=["event", "step", "share", "signed by", "when", "reason"],
        )
    )
    return f"""{ROLLOUT_HEADING}
Now: {markdown_text(now)}.

{table if rows else "- no rollout step recorded"}

Cell volumes, the canary cell's performance and the swap set (applications each model approves that
the other declines): see the monthly report's rollout section (the card is not given monthly data)."""


def with_rollout_section(card: str, section: str) -> str:
    """`card` with its rollout section replaced by `section` (a card rendered before it had one:
    inserted before the known limitations, or at the end)."""
    start = card.find(ROLLOUT_HEADING)
    if start < 0:
        at = card.find("## Known limitations")
        return card.rstrip("\n") + "\n\n" + section + "\n" if at < 0 else card[:at] + section + "\n\n" + card[at:]
    end = card.find("\n## ", start + len(ROLLOUT_HEADING))
    return card[:start] + section + ("\n" if end < 0 else card[end:])
