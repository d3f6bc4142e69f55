"""The family service's SQLite file: households, alerts and their audit trail, the outbox of
everything the service sends, reminders, commands, the device's events, digests.

Several worker processes (and the CLI) share one file. Every change that decides who does
what is one `BEGIN IMMEDIATE` transaction (SQLite's write lock), so two workers cannot both
take the same alert step or the same delivery. Each thread has its own connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from protocol.sqlite import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS households (
    id TEXT PRIMARY KEY,
    senior TEXT NOT NULL,              -- how the family calls the senior ("Mum")
    timezone TEXT NOT NULL,
    emergency_number TEXT,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    household TEXT NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    PRIMARY KEY (household, id)
);
CREATE TABLE IF NOT EXISTS members (
    household TEXT NOT NULL REFERENCES households(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    relation TEXT,                     -- "daughter": the device says "your daughter"
    role TEXT NOT NULL,                -- senior, family, caregiver
    contacts TEXT NOT NULL,            -- JSON list of "channel:address", in escalation order
    quiet TEXT,                        -- "HH:MM-HH:MM" local, or NULL
    language TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (household, id)
);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,               -- the device's alert message id
    household TEXT NOT NULL,
    device TEXT NOT NULL,
    category TEXT NOT NULL,            -- emergency, missed_medication, wellness, inactivity
    type TEXT NOT NULL,
    body TEXT NOT NULL,                -- JSON of the alert body (personal data: never logged)
    raised_ts TEXT NOT NULL,           -- the device's time stamp
    received REAL NOT NULL,
    state TEXT NOT NULL,               -- open, delivered, escalated, acknowledged, closed
    step INTEGER NOT NULL DEFAULT 0,
    next_step_at REAL,                 -- emergencies: when the next escalation step is due
    acked_by TEXT,
    acked_at REAL,
    closed_at REAL
);
CREATE INDEX IF NOT EXISTS alerts_due ON alerts (state, next_step_at);
CREATE INDEX IF NOT EXISTS alerts_household ON alerts (household, received);
CREATE TABLE IF NOT EXISTS alert_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    at REAL NOT NULL,
    event TEXT NOT NULL,               -- opened, delivered, sent, escalated, acknowledged...
    actor TEXT,                        -- a member id, a worker, "cli"
    detail TEXT,
    ref TEXT                           -- the message that caused it, when one did
);
CREATE INDEX IF NOT EXISTS alert_events_alert ON alert_events (alert_id, seq);
-- repeated calls for help folded into an emergency, found by their own message id
CREATE INDEX IF NOT EXISTS alert_events_repeated ON alert_events (ref) WHERE event = 'repeated';
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,               -- the message id (stable: a resend is a duplicate)
    household TEXT NOT NULL,
    alert_id TEXT,
    member TEXT,
    channel TEXT NOT NULL,             -- mqtt, sms, phone
    address TEXT NOT NULL,             -- a topic or a number
    payload BLOB NOT NULL,
    purpose TEXT NOT NULL,             -- alert, escalation, update, ack, command, digest...
    step INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL,          -- quiet hours and grace periods wait here
    state TEXT NOT NULL DEFAULT 'pending',  -- pending, sent, cancelled
    attempts INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claim_until REAL NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    sent_at REAL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, not_before);
CREATE INDEX IF NOT EXISTS outbox_alert ON outbox (alert_id);
CREATE TABLE IF NOT EXISTS reminders (
    household TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,                -- JSON of the last command.reminder.add/change
    state TEXT NOT NULL,               -- active, removed
    updated REAL NOT NULL,
    PRIMARY KEY (household, id)
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,               -- the command message id sent to the device
    household TEXT NOT NULL,
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    reminder_id TEXT,
    requested_by TEXT NOT NULL,        -- a member id, "cli", "restore", "senior" (by voice)
    request_id TEXT,                   -- the caregiver's message id (MQTT requests)
    state TEXT NOT NULL,               -- sent, confirmed, failed
    created REAL NOT NULL,
    done_at REAL,
    detail TEXT,
    body TEXT,                         -- JSON of a reminder command's body
    previous TEXT                      -- JSON {state, body} of the reminder before it; NULL: none
);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,               -- the device's event message id
    household TEXT NOT NULL,
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    day TEXT NOT NULL,                 -- the household's local date
    received REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_day ON events (household, day);
CREATE INDEX IF NOT EXISTS events_type ON events (household, type, received);
CREATE TABLE IF NOT EXISTS digests (
    household TEXT NOT NULL,
    day TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (household, day)
);
CREATE TABLE IF NOT EXISTS device_status (
    household TEXT NOT NULL,
    device TEXT NOT NULL,
    state TEXT NOT NULL,               -- online, offline (the device's retained presence)
    reason TEXT NOT NULL,
    battery INTEGER,                   -- percent, a phone's; NULL: on mains
    ts TEXT NOT NULL,                  -- the device's time stamp of that status
    heard REAL NOT NULL,               -- when the service last heard from the device
    PRIMARY KEY (household, device)
);
CREATE TABLE IF NOT EXISTS member_passwords (
    household TEXT NOT NULL,
    member TEXT NOT NULL,
    hash TEXT NOT NULL,                -- scrypt$n$r$p$salt$key (hex), for the web console
    updated REAL NOT NULL,
    PRIMARY KEY (household, member),
    FOREIGN KEY (household, member) REFERENCES members(household, id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS web_sessions (
    token_hash TEXT PRIMARY KEY,       -- sha256 of the cookie's token (the token is not kept)
    household TEXT NOT NULL,
    member TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    FOREIGN KEY (household, member) REFERENCES members(household, id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS rejections (
    reason TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    last_at REAL NOT NULL
);
"""
# Columns added since the first release: an older file gets them when it is opened.
ADDED_COLUMNS = {"commands": {"body": "TEXT", "previous": "TEXT"}}


class Store:
    """One SQLite file; a connection per thread, opened on first use."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.db.executescript(SCHEMA)
        with self.write() as db:  # under the write lock: two workers may start at once
            for table, columns in ADDED_COLUMNS.items():
                have = {r["name"] for r in db.execute(f"PRAGMA table_info({table})")}
                for name, kind in columns.items():
                    if name not in have:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")

    @property
    def db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = open_db(self.path)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its start.

        `durable` False: the commit is not fsync'd (it survives the process, not a power
        cut; the next durable commit carries it to disk). For records whose loss means a
        resend, never a loss: a delivery marked sent."""
        db = self.db
        if not durable:
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            if not durable:
                db.execute("PRAGMA synchronous=FULL")

    def count_rejection(self, reason: str, at: float) -> None:
        self.db.execute(
            "INSERT INTO rejections (reason, count, last_at) VALUES (?, 1, ?)"
            " ON CONFLICT (reason) DO UPDATE SET count = count + 1, last_at = excluded.last_at",
            (reason, at),
        )

    def release(self) -> None:
        """Close this thread's connection (a thread that ends, e.g. one per web request)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            with self._lock:
                self._all.remove(db)
            db.close()

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()
