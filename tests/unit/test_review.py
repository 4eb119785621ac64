"""Human review: the policy file, the rules, and the store that records decisions with their ledger entries."""

import dataclasses
import json

import pandas as pd
import pytest

from riskcore.ledger import Ledger
from riskcore.portfolio import PortfolioError, load_portfolio
from riskcore.review import (
    AWAITING_SECOND,
    DECIDED,
    QueueItem,
    ReviewDecision,
    ReviewRefused,
    check_decision,
    final_decision,
    overdue,
    override_metrics,
    queue_items,
    review_kind,
    side,
)
from riskcore.review_policy import DEFAULT_REVIEW_POLICY, load_review_policy
from riskcore.review_store import ReviewStore

POLICY = load_review_policy()
COUNTING_REFERRALS = dataclasses.replace(POLICY, referrals_count_as_overrides=True)
APPROVE, DECLINE = next(iter(POLICY.reasons["approve"])), next(iter(POLICY.reasons["decline"]))


def item(model_decision="refer", amount=10_000.0, **kw) -> QueueItem:
    fields = dict(id=1, portfolio="retail_pd", application_id="APP-1", month="2024-12", model_decision=model_decision, pd=0.15, points=540)
    fields |= dict(reason_codes=("R01",), model_version="1", policy_version="retail-loan-decision@1.0.0", amount=amount, segment="branch")
    return QueueItem(**(fields | kw))


def decide(it, earlier=(), officer="a@example.com", decision="approve", reason=APPROVE, note=""):
    return check_decision(POLICY, it, list(earlier), officer, decision, reason, note, "2025-01-02T10:00:00+00:00", "password")


# --- the policy file ---------------------------------------------------------------------------


def test_the_shipped_policy_loads_with_its_controlled_reasons():
    assert POLICY.label == "credit-decision-review@1.0.0"
    assert POLICY.four_eyes_min_amount == 25000 and POLICY.sla_days == 5 and POLICY.override_rate_band == (0.0, 0.10)
    assert POLICY.referrals_count_as_overrides is False  # deciding the refer band is not overriding the model
    assert set(POLICY.reasons) == {"approve", "decline"} and all(POLICY.reasons.values())


@pytest.mark.parametrize(
    "edit, message",
    [
        (("four_eyes_min_amount: 25000", "four_eyes_min_amount: -1"), "four_eyes_min_amount: expected a number >= 0, got -1"),
        (("override_rate_band: [0.0, 0.10]", "override_rate_band: [0.2, 0.1]"), "override_rate_band: expected [low, high]"),
        (("sla_days: 5", "sla_days: soon"), "sla_days: expected an integer >= 1, got 'soon'"),
        (("  decline:\n", "  refuse:\n"), "reasons.decline: expected a non-empty mapping"),
        (("referrals_count_as_overrides: false", "referrals_count_as_overrides: 0"), "referrals_count_as_overrides: expected true or false, got 0"),
        (("referrals_count_as_overrides: false\n", ""), "referrals_count_as_overrides: expected true or false, got None"),
    ],
)
def test_a_wrong_policy_names_the_file_and_key(tmp_path, edit, message):
    path = tmp_path / "review.yaml"
    path.write_text(DEFAULT_REVIEW_POLICY.read_text().replace(*edit))
    with pytest.raises(ValueError) as error:
        load_review_policy(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_the_portfolio_key_defaults_to_the_shipped_policy_and_a_wrong_one_is_named(tmp_path):
    shipped = load_portfolio("pipelines/portfolios/retail_pd.yaml")
    assert shipped.policies["review"] == str(DEFAULT_REVIEW_POLICY.resolve())
    text = shipped_text = open("pipelines/portfolios/retail_pd.yaml").read().replace("../../", f"{DEFAULT_REVIEW_POLICY.parents[2]}/")
    without = tmp_path / "without.yaml"
    without.write_text(text.replace(f"  review: {DEFAULT_REVIEW_POLICY.parents[2]}/riskcore/policies/review.yaml\n", ""))
    assert load_portfolio(without).policies["review"] == str(DEFAULT_REVIEW_POLICY)
    broken_policy = tmp_path / "review.yaml"
    broken_policy.write_text(DEFAULT_REVIEW_POLICY.read_text().replace("sla_days: 5", "sla_days: 0"))
    broken = tmp_path / "broken.yaml"
    broken.write_text(shipped_text.replace(f"{DEFAULT_REVIEW_POLICY.parents[2]}/riskcore/policies/review.yaml", str(broken_policy)))
    with pytest.raises(PortfolioError, match=r"broken.yaml.*policies.review.*sla_days: expected an integer >= 1, got 0"):
        load_portfolio(broken)


# --- the rules ---------------------------------------------------------------------------------


def test_an_override_is_a_final_decision_against_the_models_approve_or_decline():
    assert side(POLICY, "decline", "approve") == "high" and side(POLICY, "approve", "decline") == "low"
    assert side(POLICY, "decline", "decline") is None and side(POLICY, "approve", "approve") is None
    # a referral decided is the refer band handed to people: no override, its own ledger kind
    assert side(POLICY, "refer", "approve") is None and side(POLICY, "refer", "decline") is None and side(POLICY, "refer", "refer") is None
    assert [review_kind(POLICY, m, f) for m, f in [("decline", "approve"), ("refer", "approve"), ("refer", "decline"), ("decline", "decline")]] == [
        "override",
        "referral_decision",
        "referral_decision",
        "confirm",
    ]
    # a portfolio whose policy counts referrals: refer -> approve is high, refer -> decline low
    assert side(COUNTING_REFERRALS, "refer", "approve") == "high" and side(COUNTING_REFERRALS, "refer", "decline") == "low"
    assert review_kind(COUNTING_REFERRALS, "refer", "decline") == "override" and side(COUNTING_REFERRALS, "refer", "refer") is None


def test_a_reason_must_be_from_the_list_for_the_side_decided():
    with pytest.raises(ReviewRefused, match="not one of credit-decision-review@1.0.0's reasons to approve"):
        decide(item(), reason=DECLINE)
    with pytest.raises(ReviewRefused, match="decision 'refer'"):
        decide(item(), decision="refer")
    assert decide(item(), decision="decline", reason=DECLINE).reason == DECLINE


def test_an_officer_decides_an_application_once_and_never_their_own_escalation():
    first = decide(item())
    with pytest.raises(ReviewRefused, match="already reviewed"):
        decide(item(), [first], officer="b@example.com")
    appeal = item(id=2, source="appeal", model_decision="decline")
    with pytest.raises(ReviewRefused, match="a@example.com already reviewed application APP-1"):
        decide(appeal, [first])
    assert decide(appeal, [first], officer="b@example.com").officer == "b@example.com"
    with pytest.raises(ReviewRefused, match="escalated application APP-1"):
        decide(item(id=3, source="appeal", escalated_by="c@example.com"), officer="c@example.com")


@pytest.mark.parametrize("note", ["call jane dot doe at example dot com", "ssn 900 12 3456", "phone +1 212 555 0199"])
def test_a_note_holding_pii_is_refused_without_quoting_it(note):
    with pytest.raises(ReviewRefused) as error:
        decide(item(), note=note)
    assert "personal data" in str(error.value) and note not in str(error.value)


def test_a_note_is_length_limited_and_stripped():
    with pytest.raises(ReviewRefused, match=f"at most {POLICY.note_max_chars}"):
        decide(item(), note="x" * (POLICY.note_max_chars + 1))
    assert decide(item(), note="  salary slip for 12500 checked in 2024  ").note == "salary slip for 12500 checked in 2024"


def test_four_eyes_for_approving_a_decline_above_the_amount_only():
    assert decide(item("decline", amount=POLICY.four_eyes_min_amount + 1)).needs_second_officer
    assert decide(item("decline", amount=None)).needs_second_officer  # unknown amount: the safe side
    assert not decide(item("decline", amount=POLICY.four_eyes_min_amount)).needs_second_officer
    assert not decide(item("refer", amount=10**6)).needs_second_officer
    assert not decide(item("decline", amount=10**6), decision="decline", reason=DECLINE).needs_second_officer


def test_the_final_decision_counts_completed_reviews_only_the_latest_winning():
    made = dict(item_id=1, application_id="APP-1", officer="a", reason=APPROVE, note="", auth_method="password")
    pending = ReviewDecision(**made, decision="approve", decided_at="2025-01-02T10:00:00+00:00", needs_second_officer=True)
    assert final_decision("decline", [pending]) == "decline"
    confirmed = ReviewDecision(**{**pending.__dict__, "confirmed_by": "b", "confirmed_at": "2025-01-03T10:00:00+00:00"})
    assert final_decision("decline", [confirmed]) == "approve"
    later = ReviewDecision(**{**made, "item_id": 2}, decision="decline", decided_at="2025-01-04T10:00:00+00:00", needs_second_officer=False)
    assert final_decision("refer", [confirmed, later]) == "decline"


def test_override_metrics_by_side_reason_officer_and_segment_and_referral_decisions_apart():
    rows = [{"model_decision": "approve", "final_decision": "approve", "segment": "branch"} for _ in range(14)]
    rows += [
        {"model_decision": "refer", "final_decision": "approve", "segment": "online", "reason": "R-A01", "officer": "a"},
        {"model_decision": "refer", "final_decision": "approve", "segment": "online", "reason": "R-A03", "officer": "b"},
        {"model_decision": "refer", "final_decision": "decline", "segment": "branch", "reason": "D-A01", "officer": "a"},
        {"model_decision": "refer", "final_decision": "refer", "segment": "branch"},  # not decided yet
        {"model_decision": "decline", "final_decision": "approve", "segment": "online", "reason": "R-A02", "officer": "b"},  # an appeal approved
        {"model_decision": "approve", "final_decision": "decline", "segment": "branch", "reason": "D-A04", "officer": "a"},
        {"model_decision": "decline", "final_decision": "decline", "segment": "branch"},
        {"model_decision": "decline", "final_decision": "decline", "segment": "branch", "reason": "D-A02", "officer": "c"},  # an appeal upheld
    ]
    m = override_metrics(rows, POLICY)
    assert (m["applications"], m["reviewed"], m["overrides"], m["high_side"], m["low_side"]) == (22, 6, 2, 1, 1)
    assert m["override_rate"] == 2 / 22 and m["within_band"] and not m["referrals_count_as_overrides"]
    assert m["high_side_rate"] == 1 / 3 and m["low_side_rate"] == 1 / 15  # over the model's declines, and its approvals
    assert m["by_officer"] == {"a": {"overrides": 1, "share": 0.5}, "b": {"overrides": 1, "share": 0.5}}
    assert set(m["by_reason"]) == {"R-A02", "D-A04"} and m["by_segment"] == {"branch": {"overrides": 1, "share": 0.5}, "online": {"overrides": 1, "share": 0.5}}
    referrals = m["referral_decisions"]
    assert (referrals["referred"], referrals["decided"], referrals["approved"], referrals["approve_rate"]) == (4, 3, 2, 2 / 3)
    assert referrals["by_officer"] == {"a": {"decided": 2, "approved": 1, "approve_rate": 0.5}, "b": {"decided": 1, "approved": 1, "approve_rate": 1.0}}
    # counting referrals (as some portfolios do), the same month's overrides are five and outside the band
    counted = override_metrics(rows, COUNTING_REFERRALS)
    assert (counted["overrides"], counted["high_side"], counted["low_side"]) == (5, 3, 2) and not counted["within_band"]
    assert counted["high_side_rate"] == 3 / 7 and counted["low_side_rate"] == 2 / 19 and counted["referral_decisions"] == referrals


def test_overdue_items_are_those_waiting_beyond_the_service_level():
    old, fresh = item(queued_at="2025-01-01T00:00:00+00:00"), item(id=2, queued_at="2025-01-05T00:00:00+00:00")
    done = item(id=3, queued_at="2025-01-01T00:00:00+00:00", status=DECIDED)
    assert overdue([old, fresh, done], POLICY, "2025-01-06T12:00:00+00:00") == [old]


def test_queue_items_are_the_referred_applications_with_model_inputs_only():
    scores = pd.DataFrame(
        {
            "application_id": ["A1", "A2", "A3"],
            "decision": ["refer", "approve", "refer"],
            "pd": [0.15, 0.02, 0.17],
            "score_points": [540, 600, 535],
            **{f"reason_code_{i}": ["R01", "R02", None] for i in range(1, 5)},
            "model_version": "3",
            "policy_version": "retail-loan-decision@1.0.0",
        }
    )
    features = pd.DataFrame(
        {"application_id": ["A1", "A2", "A3"], "application_month": "2024-12", "loan_amount": [30000.0, 1.0, float("nan")], "channel": ["online", "x", None]}
    )
    rows = queue_items("retail_pd", "2024-12", scores, features, "application_id", POLICY, "2025-01-02T00:00:00+00:00")
    assert [r["application_id"] for r in rows] == ["A1", "A3"]
    assert rows[0]["amount"] == 30000.0 and rows[1]["amount"] is None and rows[1]["segment"] == "(none)"
    assert json.loads(rows[0]["features"]) == {"loan_amount": 30000.0, "channel": "online"}
    assert json.loads(rows[0]["reason_codes"]) == ["R01"] * 4 and json.loads(rows[1]["reason_codes"]) == []


# --- the store ---------------------------------------------------------------------------------


def queue_row(application_id, model_decision="refer", amount=10_000.0, source="referred", queued_at="2025-01-02T00:00:00+00:00"):
    return {
        "application_id": application_id,
        "month": "2024-12",
        "model_decision": model_decision,
        "pd": 0.15,
        "points": 540,
        "reason_codes": json.dumps(["R01"]),
        "model_version": "1",
        "policy_version": "retail-loan-decision@1.0.0",
        "amount": amount,
        "segment": "online",
        "features": json.dumps({"loan_amount": amount}),
        "queued_at": queued_at,
        "source": source,
    }


@pytest.fixture
def store(tmp_path):
    return ReviewStore(Ledger.from_url(f"sqlite:///{tmp_path}/ledger.db"), "retail_pd", POLICY)


def test_enqueue_is_idempotent_and_the_queue_is_oldest_first(store):
    rows = [queue_row("A2", queued_at="2025-01-03T00:00:00+00:00"), queue_row("A1")]
    assert store.enqueue(rows) == 2 and store.enqueue(rows) == 0
    items, total = store.queue("2024-12")
    assert total == 2 and [i.application_id for i in items] == ["A1", "A2"]
    assert [i.application_id for i in store.queue("2024-12", page=2, per_page=1)[0]] == ["A2"]


def test_a_decision_is_recorded_with_its_ledger_entry_and_a_second_one_refused(store):
    store.enqueue([queue_row("A1")])
    (it,), _ = store.queue("2024-12")
    store.decide(it.id, "a@example.com", "password", "approve", APPROVE, "verified payslips")
    (entry,) = store.ledger.entries()
    assert (entry.kind, entry.actor, entry.subject) == ("referral_decision", "a@example.com", "retail_pd/application/A1")
    assert entry.payload["from_decision"] == "refer" and entry.payload["to_decision"] == "approve" and entry.payload["side"] is None
    assert "verified payslips" not in json.dumps(entry.payload)  # the note stays in the review table
    assert store.item(it.id).status == DECIDED and store.queue("2024-12")[1] == 0
    with pytest.raises(ReviewRefused, match="already reviewed"):
        store.decide(it.id, "b@example.com", "password", "decline", DECLINE)
    assert len(store.ledger.entries()) == 1 and len(store.decisions_of("A1")) == 1


def test_an_appeal_upheld_is_a_confirm_entry_and_an_appeal_approved_an_override(store):
    store.enqueue([queue_row("A1", model_decision="decline", source="appeal"), queue_row("A2", model_decision="decline", source="appeal")])
    first, second = sorted(store.queue("2024-12")[0], key=lambda i: i.application_id)
    store.decide(first.id, "a@example.com", "password", "decline", DECLINE)
    store.decide(second.id, "a@example.com", "password", "approve", APPROVE)  # 10,000: under the four-eyes amount
    assert [(e.kind, e.payload["side"]) for e in store.ledger.entries()] == [("confirm", None), ("override", "high")]


def test_four_eyes_need_a_second_different_officer_before_anything_counts(store):
    store.enqueue([queue_row("A1", model_decision="decline", amount=50_000.0, source="appeal")])
    (it,), _ = store.queue("2024-12")
    made = store.decide(it.id, "a@example.com", "password", "approve", APPROVE)
    assert made.needs_second_officer and store.item(it.id).status == AWAITING_SECOND and store.ledger.entries() == []
    with pytest.raises(ReviewRefused, match="four eyes need a second, different officer"):
        store.confirm(it.id, "a@example.com", "password")
    assert store.ledger.entries() == [] and store.decisions_of("A1")[0].confirmed_by is None
    store.confirm(it.id, "b@example.com", "password")
    (entry,) = store.ledger.entries()
    assert entry.kind == "override" and entry.actor == "a@example.com" and entry.payload["second_officer"] == "b@example.com"
    assert store.ledger.verify().ok


# --- officers' logins --------------------------------------------------------------------------


def test_officer_passwords_are_salted_scrypt_hashes_checked_in_constant_time(tmp_path):
    from pipelines.review import add_officer, load_reviewers, verify_password

    path = tmp_path / "reviewers"
    add_officer(str(path), "a@example.com", "a long enough password")
    add_officer(str(path), "b@example.com", "a long enough password")
    stored = load_reviewers(str(path))
    assert stored["a@example.com"] != stored["b@example.com"]  # salted: same password, other hash
    assert "a long enough password" not in path.read_text() and oct(path.stat().st_mode)[-3:] == "600"
    assert verify_password("a long enough password", stored["a@example.com"])
    assert not verify_password("a long enough passwore", stored["a@example.com"]) and not verify_password("a long enough password", None)
    add_officer(str(path), "a@example.com", "another long password")  # replaces the line, keeps the others
    assert set(load_reviewers(str(path))) == {"a@example.com", "b@example.com"} and verify_password(
        "another long password", load_reviewers(str(path))["a@example.com"]
    )
    with pytest.raises(ValueError, match="at least 12 characters"):
        add_officer(str(path), "c@example.com", "short")
    path.write_text("a@example.com plaintext\n")
    with pytest.raises(ValueError, match=rf"{path}:1: expected `identity scrypt"):
        load_reviewers(str(path))
