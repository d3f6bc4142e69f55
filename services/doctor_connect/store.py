"""Everything doctor-connect knows, in one SQLite file: the roster, the requests and their
sessions, the appointments and the messages still to be published.

A change and the messages it causes are committed together (`transaction()`), before the
incoming message is acknowledged to the broker: a crash right after loses nothing, and the
outbox is published again after a restart (receivers drop the copies by message id).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from protocol import Message, encode
from protocol.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS doctors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    department TEXT NOT NULL,
    hours TEXT NOT NULL,
    languages TEXT NOT NULL,           -- comma-separated
    phone TEXT,
    state TEXT NOT NULL,
    served INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    passed_until TEXT,                 -- practice-local ISO time: others are asked first
    missed INTEGER NOT NULL DEFAULT 0  -- consultations in a row let pass
);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,           -- the consultation.request message id
    household TEXT NOT NULL,
    device TEXT NOT NULL,
    mode TEXT NOT NULL,
    wanted TEXT NOT NULL,              -- the department asked for or triaged to
    department TEXT NOT NULL,          -- where it waits or was served (after a fallback: GP)
    urgency TEXT NOT NULL,
    language TEXT,
    reason TEXT,
    symptoms TEXT,                     -- JSON list
    callback_number TEXT,
    created REAL NOT NULL,
    deadline REAL NOT NULL,
    state TEXT NOT NULL,               -- waiting, assigned, accepted, ended, cancelled
    doctor TEXT,
    assigned_at REAL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_open ON requests (state);
CREATE TABLE IF NOT EXISTS sessions (
    request_id TEXT PRIMARY KEY,
    doctor TEXT NOT NULL,
    mode TEXT NOT NULL,
    room_id TEXT,
    patient_url TEXT,
    doctor_url TEXT,
    phone_number TEXT,
    conversation_topic TEXT,
    starts_at REAL NOT NULL,
    accepted_at REAL,
    ended_at REAL,
    ended_by TEXT
);
CREATE TABLE IF NOT EXISTS appointments (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,   -- the appointment.request message id
    household TEXT NOT NULL,
    device TEXT NOT NULL,
    department TEXT NOT NULL,
    doctor TEXT NOT NULL,
    starts REAL NOT NULL,
    mode TEXT NOT NULL,
    reminded INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS appointments_by_doctor ON appointments (doctor, starts);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    msg_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL,
    priority INTEGER NOT NULL,         -- UPDATE (queue positions) after everything else
    about TEXT                         -- the request an UPDATE is about
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority DESC, seq);
CREATE INDEX IF NOT EXISTS outbox_about ON outbox (about);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last_at REAL NOT NULL
);
"""


ADDED_COLUMNS = {"passed_until": "TEXT", "missed": "INTEGER NOT NULL DEFAULT 0"}
NORMAL, UPDATE = 1, 0  # outbox priorities


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = open_db(self.path)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(_SCHEMA)
        self.db.execute("BEGIN IMMEDIATE")  # the service and the CLI may open it at once
        try:
            have = {row["name"] for row in self.db.execute("PRAGMA table_info(doctors)")}
            for name, kind in ADDED_COLUMNS.items():  # a file from before they were kept
                if name not in have:
                    self.db.execute(f"ALTER TABLE doctors ADD COLUMN {name} {kind}")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        self.lock = threading.RLock()
        self._depth = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One commit for everything inside (nested uses join the outer one)."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            else:
                self.db.execute("COMMIT")
            finally:
                self._depth = 0

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    # --- the outbox -------------------------------------------------------------------------

    def queue_message(self, message: Message, *, update_of: str | None = None) -> None:
        """Store a message to publish. `update_of`: a queue position for that request, sent
        after everything else and replaced by a newer one while it waits (thousands of
        positions change at each assignment; they must not hold up an assignment)."""
        with self.transaction() as db:
            if update_of is not None:
                self.drop_updates(update_of)
            db.execute(
                "INSERT OR IGNORE INTO outbox (msg_id, topic, payload, created, priority, about)"
                " VALUES (?,?,?,?,?,?)",
                (
                    message.id,
                    message.topic,
                    encode(message),
                    time.time(),
                    UPDATE if update_of is not None else NORMAL,
                    update_of,
                ),
            )

    def drop_updates(self, request_id: str) -> None:
        """Forget queue positions not yet sent for a request (assigned or cancelled now)."""
        with self.transaction() as db:
            db.execute("DELETE FROM outbox WHERE about = ? AND priority = ?", (request_id, UPDATE))

    def pending(self, limit: int) -> list[tuple[int, str, bytes]]:
        rows = self.query(
            "SELECT seq, topic, payload FROM outbox ORDER BY priority DESC, seq LIMIT ?",
            (limit,),
        )
        return [(row["seq"], row["topic"], bytes(row["payload"])) for row in rows]

    def sent(self, seqs: list[int]) -> None:
        if seqs:
            with self.transaction() as db:
                db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def outbox_size(self) -> int:
        return self.query("SELECT COUNT(*) FROM outbox")[0][0]

    # --- counts of refused input ----------------------------------------------------------

    def set_rejections(self, counts: dict[str, int]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO rejections (reason, count, last_at) VALUES (?, ?, ?)"
                " ON CONFLICT(reason) DO UPDATE SET count = excluded.count,"
                " last_at = excluded.last_at WHERE count != excluded.count",
                [(reason, count, time.time()) for reason, count in counts.items()],
            )

    def rejections(self) -> dict[str, int]:
        return {r["reason"]: r["count"] for r in self.query("SELECT reason, count FROM rejections")}

    def close(self) -> None:
        with self.lock:
            self.db.close()
