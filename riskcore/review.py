"""Human review of referred and appealed decisions: who may decide what, what a decision makes
final, and how overrides are measured. Pure rules: the store, the web page and the assets carry
them out.

- An officer decides an application once: never a second time (its referral or its appeal), and
  never an application they escalated themselves (an appeal they raised).
- A reason from the policy's controlled list for the side decided; an optional note, PII-scanned
  (refused when it holds any) and length-limited.
- Four eyes: approving what the model declined, for an amount above the policy's, counts only
  once a second, different officer confirms it; until then the model's decision stands.
- An override is a final decision against the model's approve or decline (an appealed decline
  approved: high side; a model approval declined: low side). Deciding a referral is not one: the
  decision policy hands its refer band to people (unless the review policy's
  `referrals_count_as_overrides` says otherwise); referral decisions are measured apart.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from riskcore.review_policy import DECISIONS, ReviewPolicy

MODEL_DECISIONS = ("approve", "refer", "decline")
SOURCES = ("referred", "appeal")
PENDING, AWAITING_SECOND, DECIDED = "pending", "awaiting_second_officer", "decided"
NO_SEGMENT = "(none)"


class ReviewRefused(PermissionError):
    """A review decision the rules do not allow: nothing was recorded."""


@dataclass(frozen=True)
class QueueItem:
    """What a person reviews: the model's decision and its evidence, never clear PII."""

    id: int
    portfolio: str
    application_id: str
    month: str
    model_decision: str
    pd: float
    points: int
    reason_codes: tuple[str, ...]
    model_version: str
    policy_version: str
    amount: float | None
    segment: str
    features: dict = field(default_factory=dict)
    queued_at: str = ""
    source: str = "referred"
    status: str = PENDING
    escalated_by: str | None = None  # an appeal raised by an officer: that officer may not decide it


@dataclass(frozen=True)
class ReviewDecision:
    item_id: int
    application_id: str
    officer: str
    decision: str
    reason: str
    note: str
    decided_at: str
    auth_method: str
    needs_second_officer: bool
    confirmed_by: str | None = None
    confirmed_at: str | None = None
    ledger_seq: int | None = None  # its ledger entry (review_kind), once complete

    @property
    def complete(self) -> bool:
        return not self.needs_second_officer or self.confirmed_by is not None


def side(policy: ReviewPolicy, model_decision: str, final: str) -> str | None:
    """The override's side: `high` approving what the model declined, `low` declining what it approved;
    None: no override (the model's decision stands, or a referral decided within the refer band the
    decision policy hands to people, unless the review policy counts those: then refer -> approve is
    high and refer -> decline low)."""
    if final == model_decision or final not in DECISIONS:
        return None
    if model_decision == "refer" and not policy.referrals_count_as_overrides:
        return None
    return "high" if final == "approve" else "low"


def review_kind(policy: ReviewPolicy, model_decision: str, final: str) -> str:
    """A completed review's ledger kind: `override` (a final decision against the model's), else
    `referral_decision` (a referral decided: a person's decision that overrides nothing) or `confirm`
    (the model's approve or decline upheld, such as an appealed decline)."""
    if side(policy, model_decision, final) is not None:
        return "override"
    return "referral_decision" if model_decision == "refer" else "confirm"


def needs_four_eyes(policy: ReviewPolicy, item: QueueItem, decision: str) -> bool:
    """Approving what the model declined, above the policy's amount (or of an unknown amount)."""
    return item.model_decision == "decline" and decision == "approve" and (item.amount is None or item.amount > policy.four_eyes_min_amount)


def check_note(policy: ReviewPolicy, note: str) -> str:
    """The note as kept: stripped, within the length limit, holding no PII (the refusal names the kind, never the text)."""
    from riskcore.pii import pii_kinds_in_text

    note = (note or "").strip()
    if len(note) > policy.note_max_chars:
        raise ReviewRefused(f"the note is {len(note)} characters; at most {policy.note_max_chars}")
    found = pii_kinds_in_text(note)
    if found:
        raise ReviewRefused(f"the note looks like it holds personal data ({', '.join(found)}): identify the applicant only by the application id")
    return note


def check_decision(
    policy: ReviewPolicy,
    item: QueueItem,
    earlier: list[ReviewDecision],
    officer: str,
    decision: str,
    reason: str,
    note: str,
    decided_at: str,
    auth_method: str,
) -> ReviewDecision:
    """The decision `officer` asks for, or ReviewRefused. `earlier`: every decision already made on
    this application (any of its queue items)."""
    if item.status != PENDING or any(d.item_id == item.id for d in earlier):
        raise ReviewRefused(f"application {item.application_id} ({item.source}) was already reviewed")
    if any(d.officer == officer or d.confirmed_by == officer for d in earlier):
        raise ReviewRefused(f"{officer} already reviewed application {item.application_id}: another officer decides it")
    if item.escalated_by == officer:
        raise ReviewRefused(f"{officer} escalated application {item.application_id}: another officer decides it")
    if decision not in DECISIONS:
        raise ReviewRefused(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
    if reason not in policy.reasons[decision]:
        raise ReviewRefused(f"reason {reason!r} is not one of {policy.label}'s reasons to {decision}: {', '.join(policy.reasons[decision])}")
    return ReviewDecision(
        item_id=item.id,
        application_id=item.application_id,
        officer=officer,
        decision=decision,
        reason=reason,
        note=check_note(policy, note),
        decided_at=decided_at,
        auth_method=auth_method,
        needs_second_officer=needs_four_eyes(policy, item, decision),
    )


def check_confirmation(item: QueueItem, pending: ReviewDecision | None, officer: str) -> None:
    """A second officer's confirmation of a four-eyes decision: a different officer, once."""
    if pending is None or item.status != AWAITING_SECOND or pending.confirmed_by is not None:
        raise ReviewRefused(f"application {item.application_id} has no decision awaiting a second officer")
    if officer == pending.officer:
        raise ReviewRefused(f"{officer} made this decision: four eyes need a second, different officer to confirm it")
    if item.escalated_by == officer:
        raise ReviewRefused(f"{officer} escalated application {item.application_id}: another officer confirms it")


def ledger_kind(item: QueueItem, decision: ReviewDecision, policy: ReviewPolicy) -> str:
    return review_kind(policy, item.model_decision, decision.decision)


def ledger_payload(item: QueueItem, decision: ReviewDecision, policy: ReviewPolicy) -> dict:
    """What the ledger keeps of a completed decision: ids, decisions and the coded reason; never the
    note (free text may carry what the scan missed), which stays in the review table."""
    return {
        "portfolio": item.portfolio,
        "application_token": item.application_id,
        "month": item.month,
        "source": item.source,
        "from_decision": item.model_decision,
        "to_decision": decision.decision,
        "side": side(policy, item.model_decision, decision.decision),
        "reason": decision.reason,
        "officer": decision.officer,
        "auth_method": decision.auth_method,
        "second_officer": decision.confirmed_by,
        "model_version": item.model_version,
        "decision_policy": item.policy_version,
        "review_policy": policy.label,
        "review_item": item.id,
    }


def deciding(decisions: list[ReviewDecision]) -> ReviewDecision | None:
    """The review that makes the final decision: the latest completed one (an appeal decided after
    the referral); None while no review is complete."""
    completed = sorted((d for d in decisions if d.complete), key=lambda d: d.confirmed_at or d.decided_at)
    return completed[-1] if completed else None


def final_decision(model_decision: str, decisions: list[ReviewDecision]) -> str:
    """The model's decision, unless a completed review changed it."""
    made = deciding(decisions)
    return made.decision if made else model_decision


def override_metrics(rows: list[dict], policy: ReviewPolicy) -> dict:
    """Override rates of a month, and apart from them its referral decisions. `rows`: one per scored
    application with `model_decision`, `final_decision`, `segment`, and for reviewed ones `reason`
    and `officer`.

    Rates are over the month's scored applications (as examiners read them); each side's also over
    the decisions it can override (high: the model's declines, low: its approvals; with the referrals
    when the policy counts them). By reason, officer and segment: counts of overrides and each one's
    share of the overrides. Referral decisions: how many of the referred an officer decided, the
    share approved, by officer."""
    total = len(rows)
    sides = [side(policy, r["model_decision"], r["final_decision"]) for r in rows]
    overrides = [r for r, s in zip(rows, sides) if s is not None]
    high = sides.count("high")
    overridable = {"high": {"decline"}, "low": {"approve"}}
    if policy.referrals_count_as_overrides:
        overridable = {s: d | {"refer"} for s, d in overridable.items()}

    def rate(n: int, d: int) -> float:
        return n / d if d else 0.0

    def breakdown(key: str) -> dict[str, dict]:
        counts = Counter(str(r.get(key) or NO_SEGMENT) for r in overrides)
        return {k: {"overrides": n, "share": rate(n, len(overrides))} for k, n in sorted(counts.items())}

    def approvals(decided: list[dict]) -> dict:
        approved = sum(r["final_decision"] == "approve" for r in decided)
        return {"decided": len(decided), "approved": approved, "approve_rate": rate(approved, len(decided))}

    low, band = len(overrides) - high, policy.override_rate_band
    override_rate = rate(len(overrides), total)
    referred = [r for r in rows if r["model_decision"] == "refer"]
    decided = [r for r in referred if r["final_decision"] in DECISIONS]
    officers = sorted({str(r.get("officer")) for r in decided})
    return {
        "applications": total,
        "reviewed": sum(r.get("officer") is not None for r in rows),
        "referrals_count_as_overrides": policy.referrals_count_as_overrides,
        "overrides": len(overrides),
        "override_rate": override_rate,
        "high_side": high,
        "high_side_rate": rate(high, sum(r["model_decision"] in overridable["high"] for r in rows)),
        "low_side": low,
        "low_side_rate": rate(low, sum(r["model_decision"] in overridable["low"] for r in rows)),
        "override_rate_band": list(band),
        "within_band": band[0] <= override_rate <= band[1],
        "by_reason": breakdown("reason"),
        "by_officer": breakdown("officer"),
        "by_segment": breakdown("segment"),
        "referral_decisions": {
            "referred": len(referred),
            **approvals(decided),
            "by_officer": {o: approvals([r for r in decided if str(r.get("officer")) == o]) for o in officers},
        },
        "review_policy": policy.label,
    }


OUTCOME_COLUMNS = (
    "review_item",
    "application_id",
    "source",
    "model_decision",
    "segment",
    "officer",
    "decision",
    "reason",
    "note",
    "decided_at",
    "auth_method",
    "needs_second_officer",
    "confirmed_by",
    "confirmed_at",
    "complete",
    "side",
    "ledger_seq",
)


def outcome_rows(decided: list[tuple[QueueItem, ReviewDecision]], policy: ReviewPolicy):
    """What people decided (ReviewStore.decisions) as a frame, one row per decision, in the order made:
    the review_outcomes dataset. Four-eyes decisions awaiting their second officer are kept, not complete."""
    import pandas as pd

    rows = [
        {
            "review_item": item.id,
            "application_id": item.application_id,
            "source": item.source,
            "model_decision": item.model_decision,
            "segment": item.segment,
            "officer": d.officer,
            "decision": d.decision,
            "reason": d.reason,
            "note": d.note,
            "decided_at": d.decided_at,
            "auth_method": d.auth_method,
            "needs_second_officer": d.needs_second_officer,
            "confirmed_by": d.confirmed_by,
            "confirmed_at": d.confirmed_at,
            "complete": d.complete,
            "side": side(policy, item.model_decision, d.decision),
            "ledger_seq": d.ledger_seq,
        }
        for item, d in decided
    ]
    frame = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
    return frame.astype({"review_item": "int64", "complete": "bool", "needs_second_officer": "bool", "ledger_seq": "Int64"})


def final_decisions(scores, outcomes, id_column: str, policy: ReviewPolicy, segments=None):
    """One row per scored application: the model's decision, the final one, who made it (`model` or
    `officer`), the override's side, reason, officer and ledger entry. `outcomes`: review_outcomes;
    `segments`: the application id and the policy's segment column of the features (None: from the
    reviews only)."""
    import pandas as pd

    from riskcore.joins import join

    by_application: dict[str, list[ReviewDecision]] = {}
    for r in outcomes.to_dict("records"):
        made = ReviewDecision(
            item_id=r["review_item"],
            application_id=r["application_id"],
            officer=r["officer"],
            decision=r["decision"],
            reason=r["reason"],
            note=r["note"],
            decided_at=r["decided_at"],
            auth_method=r["auth_method"],
            needs_second_officer=bool(r["needs_second_officer"]),
            confirmed_by=_plain(r["confirmed_by"]),
            confirmed_at=_plain(r["confirmed_at"]),
            ledger_seq=_plain(r["ledger_seq"]),
        )
        by_application.setdefault(str(r["application_id"]), []).append(made)
    sources = dict(zip(outcomes["review_item"], outcomes["source"]))
    reviewed = []
    for application_id, made in by_application.items():
        final = deciding(made)
        if final is not None:
            reviewed.append(
                {
                    id_column: application_id,
                    "decided_by": "officer",
                    "reviewed_decision": final.decision,
                    "reason": final.reason,
                    "officer": final.officer,
                    "second_officer": final.confirmed_by,
                    "source": sources[final.item_id],
                    "review_item": final.item_id,
                    "ledger_seq": final.ledger_seq,
                    "note": final.note,
                }
            )
    columns = [id_column, "decided_by", "reviewed_decision", "reason", "officer", "second_officer", "source", "review_item", "ledger_seq", "note"]
    frame = scores[[id_column, "decision", "pd", "model_version"]].rename(columns={"decision": "model_decision"})
    frame = join(frame.assign(**{id_column: frame[id_column].astype(str)}), pd.DataFrame(reviewed, columns=columns), id_column, "one_to_one", how="left")
    frame["final_decision"] = frame["reviewed_decision"].fillna(frame["model_decision"])
    frame["decided_by"] = frame["decided_by"].fillna("model")
    frame["side"] = [side(policy, m, f) for m, f in zip(frame["model_decision"], frame["final_decision"])]
    if segments is not None:
        segment = segments.rename(columns={segments.columns[1]: "segment"}).assign(**{id_column: segments[id_column].astype(str)})
        frame = join(frame, segment, id_column, "one_to_one", how="left")
        frame["segment"] = frame["segment"].map(lambda v: NO_SEGMENT if _plain(v) is None else str(v))
    else:
        frame["segment"] = frame[id_column].map({str(a): s for a, s in zip(outcomes["application_id"], outcomes["segment"])}).fillna(NO_SEGMENT)
    frame = frame.drop(columns=["reviewed_decision"]).astype({"review_item": "Int64", "ledger_seq": "Int64"})
    first = [id_column, "model_decision", "final_decision", "decided_by", "side"]
    return frame[first + [c for c in frame.columns if c not in first]]


def records(frame) -> list[dict]:
    """A frame's rows as dicts with missing values as None (what `override_metrics` reads)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def overdue(items: list[QueueItem], policy: ReviewPolicy, now_iso: str) -> list[QueueItem]:
    """Items still waiting for a person longer than the policy's service level."""
    import datetime as dt

    now = dt.datetime.fromisoformat(now_iso)
    limit = dt.timedelta(days=policy.sla_days)
    return [i for i in items if i.status != DECIDED and now - dt.datetime.fromisoformat(i.queued_at) > limit]


def queue_items(
    portfolio: str,
    month: str,
    scores,
    features,
    id_column: str,
    policy: ReviewPolicy,
    queued_at: str,
    appealed: set[str] = frozenset(),
    max_reason_codes: int = 4,
) -> list[dict]:
    """The month's referred applications, and the declined ones whose applicant appealed, as queue
    rows (scores and model inputs joined on the id): what `ReviewStore.enqueue` takes. Model inputs
    only: the features dataset holds no PII."""
    import json

    from riskcore.joins import join

    wanted = (scores["decision"] == "refer") | ((scores["decision"] == "decline") & scores[id_column].astype(str).isin(appealed))
    referred = join(scores[wanted], features, id_column, "one_to_one", how="left")
    from riskcore.features import MONTH_COLUMN

    inputs = [c for c in features.columns if c not in (id_column, MONTH_COLUMN)]
    rows = []
    for record in referred.to_dict("records"):
        values = {c: _plain(record.get(c)) for c in inputs}
        rows.append(
            {
                "portfolio": portfolio,
                "application_id": str(record[id_column]),
                "month": month,
                "model_decision": record["decision"],
                "pd": float(record["pd"]),
                "points": int(record["score_points"]),
                "reason_codes": json.dumps([record[f"reason_code_{i}"] for i in range(1, max_reason_codes + 1) if _plain(record.get(f"reason_code_{i}"))]),
                "model_version": str(record["model_version"]),
                "policy_version": str(record["policy_version"]),
                "amount": values.get(policy.amount_feature) if isinstance(values.get(policy.amount_feature), (int, float)) else None,
                "segment": str(values.get(policy.segment_feature) or NO_SEGMENT),
                "features": json.dumps(values, sort_keys=True),
                "queued_at": queued_at,
                "source": "referred" if record["decision"] == "refer" else "appeal",
            }
        )
    return rows


def _plain(value):
    """A JSON-able scalar: numpy numbers as Python's, missing (None, NaN, NA) as None."""
    import pandas as pd

    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if hasattr(value, "item") else value
