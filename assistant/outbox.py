"""The device's outbox: every outgoing message is on disk before it is handed to MQTT.

A message is committed here (SQLite, WAL, `synchronous=FULL`: the commit is fsync'd)
before the link gives it to paho, and deleted only when the broker has acknowledged it
(PUBACK). A crash, a reboot or a broker that is away for a week loses nothing: whatever is
still here is sent again, with the same message id, so receivers can drop the copies.
Alerts leave first, then everything else in the order it was stored.

The same SQLite file (`<state_dir>/link.sqlite3`) holds the link's state (connected or not,
since when, the last error), the counts of refused incoming messages and the ids of the
commands already handled; `senior-assistant status` reads it from another process.

When the disk refuses a write (full, or remounted read-only after an error), a message is
still sent: it is held in memory instead (`in_memory`), and is lost only if the device
restarts before the broker has it. Refusing it would leave a senior's call for help unsent
while the broker is there to take it. While memory holds messages, new ones join them
there, so none overtakes an older one. A deletion the disk refuses (the broker
acknowledged the message) is remembered in memory, so the message is not offered again,
and is written with the next one that goes through; an alert sent again meanwhile is
queued again under its row. `senior-assistant status`, from another process, sees only
the file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from protocol import PRIORITY_ALERT, Message, encode
from protocol.sqlite import is_refused, memory_db, open_db, open_or_set_aside, report_refusal

log = logging.getLogger(__name__)

STATE_DB_NAME = "link.sqlite3"

_OUTBOX_SCHEMA = """
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
"""
_LINK_SCHEMA = """
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
# Messages held in memory are numbered from here, after any a file will ever number, so
# "alerts first, then in the order stored" holds across both.
IN_MEMORY_FIRST_SEQ = 1 << 62


def state_db_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / STATE_DB_NAME


def open_state_db(path: str | Path) -> sqlite3.Connection:
    """Open (creating if need be) the link's state database with its tables (a reader,
    such as `senior-assistant status`: a damaged file raises)."""
    db = open_db(path)
    _prepare(db)
    return db


def _prepare(db: sqlite3.Connection) -> None:
    db.executescript(_OUTBOX_SCHEMA + _LINK_SCHEMA)


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
    in_memory: int = 0  # of those queued, held in memory only: the disk refused them

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


_INSERT = (
    "INSERT INTO outbox (msg_id, type, topic, payload, priority, created) VALUES (?, ?, ?, ?, ?, ?)"
)
_DUE = "retry_at <= ? OR retry_at > ?"  # see `pending`


class Outbox:
    """Thread-safe; one lock for the file's connection and the memory's."""

    def __init__(self, path: str | Path) -> None:
        """A damaged file is moved aside and a new one started: the messages queued in
        it are lost (`set_aside` says where it went)."""
        self.path = Path(path)
        self._db, self.set_aside = open_or_set_aside(self.path, _prepare)
        self._memory = memory_db()
        self._memory.executescript(_OUTBOX_SCHEMA)
        self._memory.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('outbox', ?)",
            (IN_MEMORY_FIRST_SEQ - 1,),
        )
        self._gone: set[int] = set()  # acknowledged rows whose deletion the disk refused
        self._read_failing = False
        self._lock = threading.Lock()

    def put(self, message: Message) -> OutboxRow:
        """Store a message durably: on disk when this returns, or, when the disk refuses
        it, in memory (logged as an error); while memory holds any, in memory too, so
        they all leave in the order stored. IntegrityError: a message already queued."""
        payload = encode(message)
        now = time.time()
        values = (message.id, message.type, message.topic, payload, message.priority, now)
        with self._lock:
            if self._requeued(message.id):
                seq = self._file_seq(message.id)
            elif self._holding_any():
                seq = self._hold(message, values, "memory holds earlier ones")
            else:
                try:
                    seq = self._db.execute(_INSERT, values).lastrowid
                except sqlite3.IntegrityError:
                    raise
                except sqlite3.Error as exc:
                    if not is_refused(exc):  # locked: another process; the data is fine
                        raise
                    seq = self._hold(message, values, str(exc))
                    report_refusal(self.path)
        assert seq is not None
        return OutboxRow(
            seq, message.id, message.type, message.topic, payload, message.priority, now, 0
        )

    def _requeued(self, msg_id: str) -> bool:
        """A message sent again (an alert nobody answered) whose earlier copy the broker
        acknowledged but the disk would not forget: queued again under its row."""
        if not self._gone:
            return False
        seq = self._file_seq(msg_id, strict=False)
        if seq is None or seq not in self._gone:
            return False
        self._gone.discard(seq)
        return True

    def _holding_any(self) -> bool:
        return self._memory.execute("SELECT 1 FROM outbox LIMIT 1").fetchone() is not None

    def _hold(self, message: Message, values: tuple, why: str) -> int | None:
        if self._file_seq(message.id, strict=False) is not None:
            raise sqlite3.IntegrityError(f"message {message.id} is already queued")
        seq = self._memory.execute(_INSERT, values).lastrowid  # IntegrityError: held already
        log.error(
            "%s %s held in memory (%s): sent all the same, but lost if the device restarts "
            "before the broker has it",
            message.type,
            message.id,
            why,
        )
        return seq

    def pending(
        self, limit: int, exclude: set[int] | frozenset[int] = frozenset()
    ) -> list[OutboxRow]:
        """Up to `limit` messages to send next, alerts first, then oldest first; rows in
        `exclude` (already with the MQTT client) and rows waiting for a retry are skipped.
        A retry time further off than any wait `defer` sets is due now: the wall clock was
        put back (a clock that ran ahead, corrected), and an alert must not wait for it."""
        if limit <= 0:
            return []
        query = f"SELECT {_COLUMNS} FROM outbox WHERE {_DUE} ORDER BY priority DESC, seq LIMIT ?"
        with self._lock:
            now = time.time()
            params = (now, now + RETRY_MAX_S, limit + len(exclude) + len(self._gone))
            rows = self._read_file(query, params) + self._memory.execute(query, params).fetchall()
            skip = exclude | self._gone
        rows.sort(key=lambda r: (-r[5], r[0]))
        out = [_row(r) for r in rows if r[0] not in skip]
        return out[:limit]

    def next_retry_at(self) -> float | None:
        """When the earliest deferred message may be offered again (None: nothing deferred)."""
        query = "SELECT MIN(retry_at) FROM outbox WHERE retry_at > ? AND retry_at <= ?"
        with self._lock:
            params = (now := time.time(), now + RETRY_MAX_S)
            found = self._read_file(query, params) + self._memory.execute(query, params).fetchall()
        times = [when for (when,) in found if when is not None]
        return min(times, default=None)

    def defer(self, seq: int, error: str, longest_s: float = RETRY_MAX_S) -> float:
        """The broker refused the message: keep it and offer it again later, waiting twice as
        long after each refusal, up to `longest_s`. Returns the wait in seconds."""
        with self._lock:
            db = self._connection_of(seq)
            row = db.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return 0.0
            wait = min(longest_s, RETRY_MAX_S, 2.0 ** row[0])
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, retry_at = ?, last_error = ?"
                " WHERE seq = ?",
                (time.time() + wait, error, seq),
            )
        return wait

    def remove(self, seq: int) -> bool:
        """The broker acknowledged the message: forget it. False when it was not here."""
        return self.remove_many([seq]) > 0

    def remove_many(self, seqs: list[int]) -> int:
        """Forget acknowledged messages in one commit (one fsync, not one each). A deletion
        the disk refuses is kept in memory, and written with the next one."""
        if not seqs:
            return 0
        with self._lock:
            in_memory = [seq for seq in seqs if seq >= IN_MEMORY_FIRST_SEQ]
            in_file = [seq for seq in seqs if seq < IN_MEMORY_FIRST_SEQ and seq not in self._gone]
            removed = _delete(self._memory, in_memory)
            owed = sorted(self._gone)
            try:
                removed += _delete(self._db, owed + in_file) - len(owed)
                self._gone.clear()
            except sqlite3.Error as exc:
                log.error("the disk refused to forget %d sent messages (%s): "
                          "remembered in memory until it takes it", len(in_file), exc)  # fmt: skip
                self._gone.update(in_file)
                removed += len(in_file)
                report_refusal(self.path)
        return removed

    def contains(self, msg_id: str) -> bool:
        """Whether the message is still queued (not yet acknowledged by the broker). A file
        that cannot be read raises: an alert must not pass for acknowledged."""
        with self._lock:
            found = self._memory.execute(
                "SELECT 1 FROM outbox WHERE msg_id = ?", (msg_id,)
            ).fetchone()
            if found is not None:
                return True
            seq = self._file_seq(msg_id)
            return seq is not None and seq not in self._gone

    def stats(self) -> OutboxStats:
        with self._lock:
            held = read_stats(self._memory)
            try:
                stored = read_stats(self._db, excluding=self._gone)
            except sqlite3.Error:
                stored = OutboxStats(0, 0, None)  # the file unreadable: what memory holds
        oldest = [t for t in (stored.oldest_created, held.oldest_created) if t is not None]
        return OutboxStats(
            queued=stored.queued + held.queued,
            alerts=stored.alerts + held.alerts,
            oldest_created=min(oldest, default=None),
            in_memory=held.queued,
        )

    def __len__(self) -> int:
        return self.stats().queued

    def _connection_of(self, seq: int) -> sqlite3.Connection:
        return self._memory if seq >= IN_MEMORY_FIRST_SEQ else self._db

    def _file_seq(self, msg_id: str, strict: bool = True) -> int | None:
        """The message's row in the file; `strict` False: None when it cannot be read."""
        query = "SELECT seq FROM outbox WHERE msg_id = ?"
        if strict:
            found = self._db.execute(query, (msg_id,)).fetchall()
        else:
            found = self._read_file(query, (msg_id,))
        return found[0][0] if found else None

    def _read_file(self, query: str, params: tuple) -> list[tuple]:
        """The file's rows, or none when it cannot be read (what memory holds still goes
        out). Called with the lock held."""
        try:
            rows = self._db.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            if not self._read_failing:
                log.error("the outbox file cannot be read (%s): sending what memory holds", exc)
            self._read_failing = True
            return []
        if self._read_failing:
            log.warning("the outbox file can be read again")
            self._read_failing = False
        return rows

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
            self._memory.close()


def read_stats(db: sqlite3.Connection, excluding: set[int] | None = None) -> OutboxStats:
    """The queue's figures, without the rows `excluding` (acknowledged, not yet deleted)."""
    gone = sorted(excluding or ())
    queued, alerts, oldest = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(priority >= ?), 0), MIN(created) FROM outbox"
        f" WHERE seq NOT IN ({_marks(gone)})",
        (PRIORITY_ALERT, *gone),
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


def _marks(values: list[int]) -> str:
    return ",".join("?" * len(values))


def _delete(db: sqlite3.Connection, seqs: list[int]) -> int:
    if not seqs:
        return 0
    return db.execute(f"DELETE FROM outbox WHERE seq IN ({_marks(seqs)})", seqs).rowcount
