"""The model card's staged-rollout section: made from the ledger's entries, kept current in a stored card."""

from riskcore.ledger import Entry
from riskcore.model_card import ROLLOUT_HEADING, rollout_section, with_rollout_section
from riskcore.rollout import ADVANCE, ROLLBACK, START

HEAD, OFFICER, SENSOR = "head.of.credit.risk@example.com", "model.risk.officer@example.com", "performance_rollback_sensor"
START_PAYLOAD = {"version": "2", "champion": "1", "step": 1, "share": 0.05, "key_id": "abcd0123", "policy": "p@1", "reason": "gates passed"}


def _entry(seq, kind, subject, actor, payload):
    return Entry(seq, f"2024-0{seq}-01T00:00:00Z", kind, subject, actor, payload, "", "")


ENTRIES = [
    _entry(1, "promotion", "m/1", "auto-approval", {"reason": "bootstrap"}),
    _entry(2, START, "m/2", HEAD, START_PAYLOAD),
    _entry(3, START, "other/2", HEAD, START_PAYLOAD),  # another model's rollout
    _entry(4, ADVANCE, "m/2", OFFICER, {"step": 2, "share": 0.25, "reason": "the 5% cell held"}),
]


def test_the_section_lists_each_step_with_who_signed_when_and_says_where_it_stands():
    section = rollout_section(ENTRIES, "m/2")
    assert section.startswith(ROLLOUT_HEADING)
    assert "Now: in its rollout at step 2: it decides 25% of applicants (the canary cell), the champion the rest." in section
    rows = [line for line in section.splitlines() if line.startswith("| ") and "event" not in line]
    assert rows == [
        f"| canary started | 1 | 5% | {HEAD} | 2024-02-01T00:00:00Z | gates passed |",
        f"| advanced | 2 | 25% | {OFFICER} | 2024-04-01T00:00:00Z | the 5% cell held |",
    ]
    assert "see the monthly report's rollout section" in section  # the card has no monthly figures of its own

    rolled_back = rollout_section(
        [*ENTRIES, _entry(5, ROLLBACK, "m/2", SENSOR, {"from_step": 2, "share": 0.25, "reason": "estimated AUC below the floor"})], "m/2"
    )
    assert "Now: its rollout ended: rolled back: its cell returned to the champion." in rolled_back
    assert f"| rolled back: its cell returned to the champion | 2 | 25% | {SENSOR} | 2024-05-01T00:00:00Z | estimated AUC below the floor |" in rolled_back
    promoted = [*ENTRIES, _entry(5, "promotion", "m/2", OFFICER, {"rollout_step": 3, "share": 1.0, "reason": "the 25% cell held"})]
    assert "| promoted to champion (the last step) | 3 | 100% |" in rollout_section(promoted, "m/2")
    assert "Now: not in a staged rollout." in rollout_section(ENTRIES, "m/1") and "no rollout step recorded" in rollout_section(ENTRIES, "m/1")


def test_a_stored_card_gets_its_section_replaced_once_or_inserted_before_the_limitations():
    old_card = "# Model card: m/2\n\n## Approvals and history (governance ledger)\n- approval\n\n## Known limitations\n- additive\n- canary started by x\n"
    first = with_rollout_section(old_card, rollout_section(ENTRIES[:2], "m/2"))
    assert first.index("## Approvals") < first.index(ROLLOUT_HEADING) < first.index("## Known limitations")
    current = rollout_section(ENTRIES, "m/2")
    again = with_rollout_section(first, current)
    assert again.count(ROLLOUT_HEADING) == 1 and current in again and "at step 1" not in again
    assert again == with_rollout_section(again, current)  # the same ledger, the same card
    assert again.endswith("## Known limitations\n- additive\n- canary started by x\n")  # what was appended after stays
