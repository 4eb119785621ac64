"""The review queue and the decisions people made, in the governance database beside the ledger
(SQLite locally, PostgreSQL in the topology), SQLAlchemy Core.

Each decision is checked and written inside the ledger's write lock, on the ledger's own
connection: the decision row, the queue item's status and, once the decision is complete, its
ledger entry (`override`, `referral_decision` or `confirm`) commit together or not at all, and two officers deciding
the same application at once are serialised (the second is refused)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import sqlalchemy as sa

from riskcore.ledger import Ledger
from riskcore.review import (
    AWAITING_SECOND,
    DECIDED,
    PENDING,
    QueueItem,
    ReviewDecision,
    ReviewRefused,
    check_confirmation,
    check_decision,
    ledger_kind,
    ledger_payload,
)
from riskcore.review_policy import ReviewPolicy

metadata = sa.MetaData()
queue = sa.Table(
    "review_queue",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("portfolio", sa.String(64), nullable=False),
    sa.Column("application_id", sa.String(200), nullable=False),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("model_decision", sa.String(16), nullable=False),
    sa.Column("pd", sa.Float, nullable=False),
    sa.Column("points", sa.Integer, nullable=False),
    sa.Column("reason_codes", sa.Text, nullable=False),  # JSON list
    sa.Column("model_version", sa.String(40), nullable=False),
    sa.Column("policy_version", sa.String(120), nullable=False),
    sa.Column("amount", sa.Float, nullable=True),
    sa.Column("segment", sa.String(200), nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON object of model inputs (no PII by the features contract)
    sa.Column("queued_at", sa.String(32), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # referred | appeal
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("escalated_by", sa.String(200), nullable=True),
    sa.UniqueConstraint("portfolio", "application_id", "source", name="review_queue_once"),
    sa.Index("review_queue_by_month", "portfolio", "month", "status", "queued_at"),
    sa.Index("review_queue_by_age", "portfolio", "month", "queued_at", "id"),  # the queue page's order: no sort of the month's rows
)
decisions = sa.Table(
    "review_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("review_queue.id"), nullable=False, unique=True),  # one decision per queue item
    sa.Column("application_id", sa.String(200), nullable=False, index=True),
    sa.Column("officer", sa.String(200), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("note", sa.Text, nullable=False),  # PII-scanned before it is kept; never copied to the ledger
    sa.Column("decided_at", sa.String(32), nullable=False),
    sa.Column("auth_method", sa.String(80), nullable=False),
    sa.Column("needs_second_officer", sa.Boolean, nullable=False),
    sa.Column("confirmed_by", sa.String(200), nullable=True),
    sa.Column("confirmed_at", sa.String(32), nullable=True),
    sa.Column("confirm_auth_method", sa.String(80), nullable=True),
    sa.Column("ledger_seq", sa.Integer, nullable=True),  # its ledger entry (override, referral_decision or confirm), once complete
)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class ReviewStore:
    """One portfolio's queue and decisions. `attest(kind, subject, payload)` may add a proof to each
    ledger payload (the review service's signature)."""

    def __init__(self, ledger: Ledger, portfolio: str, policy: ReviewPolicy, attest: Callable[[str, str, dict], dict] | None = None):
        self.ledger, self.portfolio, self.policy, self.attest = ledger, portfolio, policy, attest
        with ledger.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('review_tables'))")
            metadata.create_all(connection)

    def enqueue(self, rows: list[dict]) -> int:
        """Add queue items (rows as `riskcore.review.queue_items` makes them); an application already
        queued from the same source is left as it is, so enqueueing a month again adds nothing."""
        added = 0
        with self.ledger.engine.begin() as connection:
            seen = {
                (r.application_id, r.source)
                for r in connection.execute(
                    sa.select(queue.c.application_id, queue.c.source).where(queue.c.portfolio == self.portfolio, queue.c.month.in_({r["month"] for r in rows}))
                )
            }
            fresh = [{**r, "portfolio": self.portfolio, "status": PENDING} for r in rows if (r["application_id"], r["source"]) not in seen]
            if fresh:
                connection.execute(queue.insert(), fresh)
                added = len(fresh)
        return added

    def months(self) -> list[str]:
        with self.ledger.engine.connect() as connection:
            return [m for (m,) in connection.execute(sa.select(queue.c.month).where(queue.c.portfolio == self.portfolio).distinct().order_by(queue.c.month))]

    def queue(self, month: str, page: int = 1, per_page: int = 50, waiting_only: bool = True) -> tuple[list[QueueItem], int]:
        """A page of the month's items, oldest first, and how many there are in all."""
        where = [queue.c.portfolio == self.portfolio, queue.c.month == month]
        if waiting_only:
            where.append(queue.c.status != DECIDED)
        with self.ledger.engine.connect() as connection:
            total = connection.execute(sa.select(sa.func.count()).select_from(queue).where(*where)).scalar_one()
            rows = connection.execute(
                sa.select(queue).where(*where).order_by(queue.c.queued_at, queue.c.id).limit(per_page).offset(max(page - 1, 0) * per_page)
            )
            return [_item(r) for r in rows], total

    def item(self, item_id: int) -> QueueItem | None:
        with self.ledger.engine.connect() as connection:
            return self._item(connection, item_id)

    def decisions_of(self, application_id: str) -> list[ReviewDecision]:
        with self.ledger.engine.connect() as connection:
            return self._decisions(connection, application_id)

    def decisions(self, month: str) -> list[tuple[QueueItem, ReviewDecision]]:
        """Every decision on the month's items, in the order made."""
        with self.ledger.engine.connect() as connection:
            rows = connection.execute(
                sa.select(queue, decisions.c.id.label("decision_id"), *[c for c in decisions.c if c.name not in ("id", "application_id")])
                .join(decisions, decisions.c.item_id == queue.c.id)
                .where(queue.c.portfolio == self.portfolio, queue.c.month == month)
                .order_by(decisions.c.id)
            )
            return [(_item(r), _decision(r)) for r in rows]

    def decide(self, item_id: int, officer: str, auth_method: str, decision: str, reason: str, note: str = "") -> ReviewDecision:
        """Record an officer's decision; a complete one (no second officer needed) goes to the ledger with it."""
        with self.ledger.locked() as (connection, record):
            item = self._item(connection, item_id)
            if item is None:
                raise ReviewRefused(f"no review item {item_id} in {self.portfolio}")
            made = check_decision(self.policy, item, self._decisions(connection, item.application_id), officer, decision, reason, note, _now(), auth_method)
            inserted = connection.execute(
                decisions.insert().values(
                    item_id=item.id,
                    application_id=item.application_id,
                    officer=made.officer,
                    decision=made.decision,
                    reason=made.reason,
                    note=made.note,
                    decided_at=made.decided_at,
                    auth_method=made.auth_method,
                    needs_second_officer=made.needs_second_officer,
                )
            )
            self._settle(connection, record, item, made, inserted.inserted_primary_key[0], PENDING)
            return made

    def confirm(self, item_id: int, officer: str, auth_method: str) -> ReviewDecision:
        """A second officer's confirmation of a four-eyes decision: only then does it count, and go to the ledger."""
        with self.ledger.locked() as (connection, record):
            item = self._item(connection, item_id)
            if item is None:
                raise ReviewRefused(f"no review item {item_id} in {self.portfolio}")
            row = connection.execute(sa.select(decisions).where(decisions.c.item_id == item.id)).first()
            pending = _decision(row) if row else None
            check_confirmation(item, pending, officer)
            confirmed = ReviewDecision(**{**pending.__dict__, "confirmed_by": officer, "confirmed_at": _now()})
            connection.execute(
                decisions.update()
                .where(decisions.c.id == row.id, decisions.c.confirmed_by.is_(None))
                .values(confirmed_by=officer, confirmed_at=confirmed.confirmed_at, confirm_auth_method=auth_method)
            )
            self._settle(connection, record, item, confirmed, row.id, AWAITING_SECOND)
            return confirmed

    def _settle(self, connection, record, item: QueueItem, made: ReviewDecision, decision_id: int, status_before: str) -> None:
        """The item's new status, and the ledger entry of a complete decision, in the same transaction."""
        moved = connection.execute(
            queue.update().where(queue.c.id == item.id, queue.c.status == status_before).values(status=DECIDED if made.complete else AWAITING_SECOND)
        )
        if moved.rowcount != 1:
            raise ReviewRefused(f"application {item.application_id} changed while it was being decided; reload it")
        if not made.complete:
            return
        kind, subject = ledger_kind(item, made, self.policy), f"{self.portfolio}/application/{item.application_id}"
        payload = ledger_payload(item, made, self.policy)
        if self.attest is not None:
            payload = {**payload, **self.attest(kind, subject, payload)}
        entry = record(kind, subject, made.officer, payload)
        connection.execute(decisions.update().where(decisions.c.id == decision_id).values(ledger_seq=entry.seq))

    def _item(self, connection, item_id: int) -> QueueItem | None:
        row = connection.execute(sa.select(queue).where(queue.c.id == item_id, queue.c.portfolio == self.portfolio)).first()
        return _item(row) if row else None

    def _decisions(self, connection, application_id: str) -> list[ReviewDecision]:
        rows = connection.execute(
            sa.select(decisions)
            .join(queue, decisions.c.item_id == queue.c.id)
            .where(queue.c.portfolio == self.portfolio, decisions.c.application_id == application_id)
            .order_by(decisions.c.id)
        )
        return [_decision(r) for r in rows]


def _item(row) -> QueueItem:
    return QueueItem(
        id=row.id,
        portfolio=row.portfolio,
        application_id=row.application_id,
        month=row.month,
        model_decision=row.model_decision,
        pd=row.pd,
        points=row.points,
        reason_codes=tuple(json.loads(row.reason_codes)),
        model_version=row.model_version,
        policy_version=row.policy_version,
        amount=row.amount,
        segment=row.segment,
        features=json.loads(row.features),
        queued_at=row.queued_at,
        source=row.source,
        status=row.status,
        escalated_by=row.escalated_by,
    )


def _decision(row) -> ReviewDecision:
    return ReviewDecision(
        item_id=row.item_id,
        application_id=row.application_id,
        officer=row.officer,
        decision=row.decision,
        reason=row.reason,
        note=row.note,
        decided_at=row.decided_at,
        auth_method=row.auth_method,
        needs_second_officer=bool(row.needs_second_officer),
        confirmed_by=row.confirmed_by,
        confirmed_at=row.confirmed_at,
        ledger_seq=row.ledger_seq,
    )
