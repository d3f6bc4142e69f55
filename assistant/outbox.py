"""The device's outbox: every outgoing message is on disk before it is handed to MQTT.

A message is committed here (SQLite, WAL, `synchronous=FULL`: the commit is fsync'd)
before the link gives it to paho, and deleted only when the broker has acknowledged it
(PUBACK). A crash, a reboot or a broker that is away for a week loses nothing: whatever is
still here is sent again, with the same message id, so receivers can drop the copies.
Alerts leave first, then everything else in the order it was stored.

The same SQLite file (`<state_dir>/link.sqlite3`) holds the link's state (connected or not,
since when, the last error), the counts of refused incoming messages and the ids of the
commands already handled; `senior-assistant status` reads it from another process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from protocol import PRIORITY_ALERT, Message, encode
from protocol.sqlite import open_db, open_or_set_aside

STATE_DB_NAME = "link.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    priority INTEGER NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    retry_at REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority DESC, seq);
CREATE TABLE IF NOT EXISTS link_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL,
    since REAL NOT NULL,
    broker TEXT NOT NULL,
    session_present INTEGER,
    last_error TEXT,
    last_error_at REAL,
    pid INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last_at REAL NOT NULL
);
"""

RETRY_MAX_S = 300.0  # the longest wait before offering a refused message again


def state_db_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / STATE_DB_NAME


def open_state_db(path: str | Path) -> sqlite3.Connection:
    """Open (creating if need be) the link's state database with its tables (a reader,
    such as `senior-assistant status`: a damaged file raises)."""
    db = open_db(path)
    _prepare(db)
    return db


def _prepare(db: sqlite3.Connection) -> None:
    db.executescript(_SCHEMA)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    msg_id: str
    type: str
    topic: str
    payload: bytes
    priority: int
    created: float
    attempts: int


@dataclass(frozen=True)
class OutboxStats:
    queued: int
    alerts: int
    oldest_created: float | None  # unix time of the oldest queued message

    def oldest_age_s(self, now: float | None = None) -> float | None:
        if self.oldest_created is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.oldest_created)


@dataclass(frozen=True)
class LinkState:
    state: str  # "connecting", "connected", "disconnected", "stopped"
    since: float
    broker: str  # host:port
    session_present: bool | None
    last_error: str | None
    last_error_at: float | None
    pid: int
    updated: float


_COLUMNS = "seq, msg_id, type, topic, payload, priority, created, attempts"


class Outbox:
    """Thread-safe; one connection, one lock."""

    def __init__(self, path: str | Path) -> None:
        """A damaged file is moved aside and a new one started: the messages queued in
        it are lost (`set_aside` says where it went)."""
        self.path = Path(path)
        self._db, self.set_aside = open_or_set_aside(self.path, _prepare)
        self._lock = threading.Lock()

    def put(self, message: Message) -> OutboxRow:
        """Store a message durably: on disk when this returns."""
        payload = encode(message)
        now = time.time()
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO outbox (msg_id, type, topic, payload, priority, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (message.id, message.type, message.topic, payload, message.priority, now),
            )
        seq = cursor.lastrowid
        assert seq is not None
        return OutboxRow(
            seq, message.id, message.type, message.topic, payload, message.priority, now, 0
        )

    def pending(
        self, limit: int, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[OutboxRow]:
        """Up to `limit` messages to send next, alerts first, then oldest first; rows in
        `exclude` (already with the MQTT client) and rows waiting for a retry are skipped.
        A retry time further off than any wait `defer` sets is due now: the wall clock was
        put back (a clock that ran ahead, corrected), and an alert must not wait for it."""
        if limit <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM outbox WHERE retry_at <= ? OR retry_at > ?"
                " ORDER BY priority DESC, seq LIMIT ?",
                (now := time.time(), now + RETRY_MAX_S, limit + len(exclude)),
            ).fetchall()
        out = [_row(r) for r in rows if r[0] not in exclude]
        return out[:limit]

    def next_retry_at(self) -> float | None:
        """When the earliest deferred message may be offered again (None: nothing deferred)."""
        with self._lock:
            (when,) = self._db.execute(
                "SELECT MIN(retry_at) FROM outbox WHERE retry_at > ? AND retry_at <= ?",
                (now := time.time(), now + RETRY_MAX_S),
            ).fetchone()
        return when

    def defer(self, seq: int, error: str, longest_s: float = RETRY_MAX_S) -> float:
        """The broker refused the message: keep it and offer it again later, waiting twice as
        long after each refusal, up to `longest_s`. Returns the wait in seconds."""
        with self._lock:
            row = self._db.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return 0.0
            wait = min(longest_s, RETRY_MAX_S, 2.0 ** row[0])
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, retry_at = ?, last_error = ?"
                " WHERE seq = ?",
                (time.time() + wait, error, seq),
            )
        return wait

    def remove(self, seq: int) -> bool:
        """The broker acknowledged the message: forget it. False when it was not here."""
        with self._lock:
            return self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,)).rowcount > 0

    def remove_many(self, seqs: list[int]) -> int:
        """Forget several acknowledged messages in one commit (one fsync, not one each)."""
        if not seqs:
            return 0
        with self._lock:
            marks = ",".join("?" * len(seqs))
            return self._db.execute(f"DELETE FROM outbox WHERE seq IN ({marks})", seqs).rowcount

    def contains(self, msg_id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM outbox WHERE msg_id = ?", (msg_id,)).fetchone()
        return row is not None

    def stats(self) -> OutboxStats:
        with self._lock:
            return read_stats(self._db)

    def __len__(self) -> int:
        return self.stats().queued

    # --- what `senior-assistant status` shows besides the queue -------------------------

    def set_link_state(
        self,
        state: str,
        broker: str,
        *,
        session_present: bool | None = None,
        error: str | None = None,
    ) -> None:
        """Record the link's state; `since` changes only when the state does."""
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO link_state (id, state, since, broker, session_present,"
                " last_error, last_error_at, pid, updated)"
                " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET"
                "  since = CASE WHEN state = excluded.state AND pid = excluded.pid"
                "   THEN since ELSE excluded.since END,"
                "  state = excluded.state, broker = excluded.broker,"
                "  session_present = COALESCE(excluded.session_present, session_present),"
                "  last_error = COALESCE(excluded.last_error, last_error),"
                "  last_error_at = COALESCE(excluded.last_error_at, last_error_at),"
                "  pid = excluded.pid, updated = excluded.updated",
                (
                    state,
                    now,
                    broker,
                    session_present,
                    error,
                    now if error else None,
                    os.getpid(),
                    now,
                ),
            )

    def count_rejection(self, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO rejections (reason, count, last_at) VALUES (?, 1, ?)"
                " ON CONFLICT (reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
                (reason, time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_stats(db: sqlite3.Connection) -> OutboxStats:
    queued, alerts, oldest = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(priority >= ?), 0), MIN(created) FROM outbox",
        (PRIORITY_ALERT,),
    ).fetchone()
    return OutboxStats(queued=queued, alerts=alerts, oldest_created=oldest)


def read_link_state(db: sqlite3.Connection) -> LinkState | None:
    row = db.execute(
        "SELECT state, since, broker, session_present, last_error, last_error_at, pid, updated"
        " FROM link_state WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    session = None if row[3] is None else bool(row[3])
    return LinkState(row[0], row[1], row[2], session, row[4], row[5], row[6], row[7])


def read_rejections(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT reason, count FROM rejections ORDER BY reason").fetchall())


def _row(r: tuple) -> OutboxRow:
    return OutboxRow(r[0], r[1], r[2], r[3], bytes(r[4]), r[5], r[6], r[7])
