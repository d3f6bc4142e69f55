"""Everything the service sends goes through this table first.

A delivery is written in the same transaction as the state change it belongs to (an alert
opened, a step of escalation, an acknowledgement), so nothing is decided and then lost. The
worker that wrote it holds a claim on it and sends it at once; if that worker dies, the
claim runs out (`claim_s`) and any worker's scheduler sends it. Rows that must wait (quiet
hours, a grace period) carry `not_before`. A message's id is fixed when it is planned, so a
resend after a crash reaches its receiver as a duplicate it drops, not as a second alert.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protocol import Message, encode
from services.family.channels import Channel, ChannelError, Delivery
from services.family.store import Store

log = logging.getLogger("services.family.outbox")

_NAMESPACE = uuid.UUID("6f1d7a34-5c9b-4f0e-9d0a-3b8e2f6c1a77")
_COLUMNS = "id, household, channel, address, payload, purpose, alert_id, member, step"
BATCH = 200
# A delivery that fails is tried again after 1, 2, 4 ... s, at most every RETRY_S; after
# PATIENT_AFTER attempts (about an hour) at most every RETRY_LATE_S: an app that never comes
# back (uninstalled, a phone lost) must not have its notices tried every minute for good,
# and one that does come back still gets them within a quarter of an hour. What is about an
# emergency nobody has answered yet stays at RETRY_S.
RETRY_S = 60
PATIENT_AFTER = 60
RETRY_LATE_S = 900


def stable_id(*parts: object) -> str:
    """The same id for the same delivery, whichever worker plans it and however often."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


@dataclass(frozen=True)
class Planned:
    """A delivery to write: a message for a topic, or a text for a gateway."""

    id: str
    household: str
    channel: str
    address: str
    payload: bytes
    purpose: str
    alert_id: str | None = None
    member: str | None = None
    step: int = 0
    not_before: float = 0.0

    @classmethod
    def message(cls, message: Message, purpose: str, **fields) -> Planned:
        return cls(
            id=message.id,
            household=message.household,
            channel="mqtt",
            address=message.topic,
            payload=encode(message),
            purpose=purpose,
            **fields,
        )


# Told of deliveries that went out, inside the transaction that records them.
SentHook = Callable[[sqlite3.Connection, list[Delivery], float], None]
# Told of deliveries that did not, with why, inside the transaction that records them: only
# those whose error is news (the first failure, or another error than the last time), so a
# delivery retried for hours is told of once, not at every retry.
FailedHook = Callable[[sqlite3.Connection, list[tuple[Delivery, Exception]], float], None]


# An older command to the same device still waiting, for a row of `outbox`: the one rule
# that keeps commands in order (`flush` does not claim, `send` holds back, a row behind one)
_OLDER = (
    "SELECT 1 FROM outbox older WHERE older.purpose = 'command' AND older.address ="
    " outbox.address AND older.state = 'pending' AND older.rowid < outbox.rowid"
)


class Outbox:
    def __init__(
        self,
        store: Store,
        channels: dict[str, Channel],
        worker: str,
        claim_s: float = 30.0,
        on_sent: SentHook | None = None,
        *,
        claims: bool = True,
        on_failed: FailedHook | None = None,
    ) -> None:
        """`claims` False: planned rows are left for a running worker to send (the CLI)."""
        self.store = store
        self.claims = claims
        self.channels = channels
        self.worker = worker
        self.claim_s = claim_s
        self.on_sent = on_sent
        self.on_failed = on_failed
        self.sent = 0
        self.failed = 0

    def plan(self, db: sqlite3.Connection, rows: Iterable[Planned], now: float) -> list[str]:
        """Write deliveries inside the caller's transaction. Those due now are claimed by
        this worker; their ids are returned for `send` once the transaction committed."""
        mine: list[str] = []
        for row in rows:
            due = self.claims and row.not_before <= now
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (id, household, alert_id, member, channel,"
                " address, payload, purpose, step, not_before, claimed_by, claim_until, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.id, row.household, row.alert_id, row.member, row.channel, row.address,
                 row.payload, row.purpose, row.step, row.not_before,
                 self.worker if due else None, now + self.claim_s if due else 0, now),
            )  # fmt: skip
            if cursor.rowcount and due:
                mine.append(row.id)
        return mine

    def offer_again(self, db: sqlite3.Connection, ids: list[str], now: float) -> list[str]:
        """Deliveries already sent, to be sent once more (the same ids: the receiver drops
        one it has), inside the caller's transaction; those this worker claims for `send`."""
        again = []
        for delivery_id in ids:
            cursor = db.execute(
                "UPDATE outbox SET state = 'pending', not_before = ?, claimed_by = ?,"
                " claim_until = ? WHERE id = ? AND state = 'sent'",
                (now, self.worker if self.claims else None,
                 now + self.claim_s if self.claims else 0, delivery_id),
            )  # fmt: skip
            if cursor.rowcount and self.claims:
                again.append(delivery_id)
        return again

    def cancel(self, db: sqlite3.Connection, alert_id: str, purposes: tuple[str, ...]) -> int:
        """Drop what is still waiting to be sent about an alert (e.g. once answered)."""
        marks = ",".join("?" * len(purposes))
        return db.execute(
            f"UPDATE outbox SET state = 'cancelled' WHERE alert_id = ? AND state = 'pending'"
            f" AND purpose IN ({marks})",
            (alert_id, *purposes),
        ).rowcount

    def flush(self, now: float | None = None, limit: int = BATCH) -> int:
        """Claim and send deliveries that are due and nobody holds; how many went out."""
        now = time.time() if now is None else now
        with self.store.write() as db:
            ids = [
                r[0]
                for r in db.execute(
                    "UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE id IN ("
                    " SELECT id FROM outbox WHERE state = 'pending' AND not_before <= ?"
                    f" AND claim_until <= ? AND NOT (purpose = 'command' AND EXISTS ({_OLDER}"
                    " AND (older.not_before > ? OR older.claim_until > ?)))"
                    " ORDER BY not_before, rowid LIMIT ?) RETURNING id",
                    (self.worker, now + self.claim_s, now, now, now, now, limit),
                )
            ]
        return self.send(ids) if ids else 0

    def send(self, ids: list[str]) -> int:
        """Send deliveries this worker claimed; record what went out and what did not."""
        ids = self._not_behind_older_commands(ids) if ids else ids
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        rows = self.store.db.execute(
            f"SELECT {_COLUMNS} FROM outbox WHERE id IN ({marks}) AND state = 'pending'"
            " AND claimed_by = ? ORDER BY rowid",  # as planned: a change after its add
            (*ids, self.worker),
        ).fetchall()
        deliveries = [Delivery(*tuple(r)) for r in rows]
        by_channel: dict[str, list[Delivery]] = {}
        for delivery in deliveries:
            by_channel.setdefault(delivery.channel, []).append(delivery)
        done: list[Delivery] = []
        failed: list[tuple[Delivery, Exception]] = []
        for name, group in by_channel.items():
            channel = self.channels.get(name)
            if channel is None:
                failed += [(d, ChannelError(f"no {name} channel configured")) for d in group]
                continue
            for delivery, error in zip(group, channel.send_many(group), strict=True):
                if error is None:
                    done.append(delivery)
                else:
                    failed.append((delivery, error))
        now = time.time()
        # Not fsync'd: lost in a power cut, a delivery is only sent again (same id).
        with self.store.write(durable=False) as db:
            db.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1"
                " WHERE id = ?",
                [(now, d.id) for d in done],
            )
            news: list[tuple[Delivery, Exception]] = []
            for delivery, error in failed:
                said = str(error)[:200]
                before = db.execute(
                    "SELECT last_error FROM outbox WHERE id = ?", (delivery.id,)
                ).fetchone()
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = ?, claimed_by = NULL,"
                    " claim_until = ? + MIN(CASE WHEN attempts >= ? AND NOT EXISTS ("
                    "  SELECT 1 FROM alerts WHERE alerts.id = outbox.alert_id"
                    "  AND category = 'emergency' AND state NOT IN ('acknowledged', 'closed'))"
                    " THEN ? ELSE ? END, 1 << MIN(attempts, 10)) WHERE id = ?",
                    (said, now, PATIENT_AFTER, RETRY_LATE_S, RETRY_S, delivery.id),
                )
                if before is not None and before[0] != said:
                    news.append((delivery, error))
            if done and self.on_sent is not None:
                self.on_sent(db, done, now)
            if news and self.on_failed is not None:
                self.on_failed(db, news, now)
        self.sent += len(done)
        self.failed += len(failed)
        told = {id(delivery) for delivery, _ in news}
        for delivery, error in failed:  # at every retry only in the debug log
            level = logging.WARNING if id(delivery) in told else logging.DEBUG
            log.log(level, "delivery %s (%s) not sent: %s", delivery.id, delivery.channel, error)
        return len(done)

    def _not_behind_older_commands(self, ids: list[str]) -> list[str]:
        """`ids` but a command with an older one to the same device still waiting (a retry
        after failures waits longer each time): released, it goes with or after that one
        (`flush`), since a change that overtakes its add is refused by the device."""
        marks = ",".join("?" * len(ids))
        held = {
            r[0]
            for r in self.store.db.execute(
                f"SELECT id FROM outbox WHERE id IN ({marks}) AND purpose = 'command' AND EXISTS"
                f" ({_OLDER} AND older.id NOT IN ({marks}))",
                (*ids, *ids),
            )
        }
        if held:
            with self.store.write() as db:
                db.executemany(
                    "UPDATE outbox SET claimed_by = NULL, claim_until = 0 WHERE id = ?"
                    " AND claimed_by = ?",
                    [(i, self.worker) for i in held],
                )
        return [i for i in ids if i not in held]

    def pending(self) -> int:
        return self.store.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
        ).fetchone()[0]
