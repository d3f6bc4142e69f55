"""Dropping messages already handled, by message id.

QoS 1 is "at least once": a broker redelivers what it did not see acknowledged, and a
sender resends what it did not see acknowledged, both with the same message id. A receiver
remembers the last `capacity` ids it handled; with a `path` it remembers them across
restarts too (SQLite, so a command handled just before a crash is not handled again when
the broker redelivers it after the reboot).

The window is a count, not a time: 10,000 ids cover weeks of a household's traffic, and
a sender only resends what is still in its outbox.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
from pathlib import Path

from protocol.sqlite import open_or_set_aside

DEFAULT_CAPACITY = 10_000
_TRIM_EVERY = 100  # rows; trimming the table on every insert would double the writes


class DuplicateFilter:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, path: str | Path | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ids: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._db = None
        if path is not None:
            self._db = self._open(Path(path))
            rows = self._db.execute(
                "SELECT id FROM seen_ids ORDER BY seq DESC LIMIT ?", (capacity,)
            ).fetchall()
            for (message_id,) in reversed(rows):
                self._ids[message_id] = None

    def _open(self, path: Path) -> sqlite3.Connection:
        """The device's own file: damaged, set aside; unopenable (a failing disk), in
        memory for this run (protocol/sqlite.open_or_set_aside)."""
        return open_or_set_aside(path, prepare_seen_ids)[0]

    def seen(self, message_id: str) -> bool:
        with self._lock:
            return message_id in self._ids

    def add(self, message_id: str) -> bool:
        """Remember an id (on disk before this returns, with a path); True when it was new."""
        with self._lock:
            if message_id in self._ids:
                return False
            self._ids[message_id] = None
            while len(self._ids) > self.capacity:
                self._ids.popitem(last=False)
            if self._db is not None:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO seen_ids (id) VALUES (?)", (message_id,)
                )
                seq = cursor.lastrowid or 0
                if seq % _TRIM_EVERY == 0:
                    self._db.execute("DELETE FROM seen_ids WHERE seq <= ?", (seq - self.capacity,))
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def prepare_seen_ids(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE IF NOT EXISTS seen_ids ("
        " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE)"
    )
