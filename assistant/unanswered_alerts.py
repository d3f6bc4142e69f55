"""Alerts waiting for the service's answer, kept on disk so that sending them again
survives a restart (assistant/resend.py): emergencies nobody has answered yet
(`ALERTS_FILE`), and the other alerts the family service has not yet confirmed it stored
(`UNCONFIRMED_FILE`), each in a file of its own.

The broker's acknowledgement only says a broker has an alert; a service worker that died
holding its share of a shared subscription can leave it undelivered, so the device sends
it again until the answer comes. The list of those alerts lived only in memory at first: a
restart after the broker took an alert and before the answer dropped the resending, and
with it the alert held by the dead worker. An alert is now written here when it is sent
and removed when it is answered.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from protocol import Message, RejectedMessage, decode, encode
from protocol.sqlite import open_or_set_aside

log = logging.getLogger(__name__)

ALERTS_FILE = "unanswered-alerts.sqlite3"
UNCONFIRMED_FILE = "unconfirmed-alerts.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS unanswered (
    id TEXT PRIMARY KEY,
    payload BLOB NOT NULL
)
"""


class UnansweredAlertStore:
    def __init__(self, path: str | Path) -> None:
        """A damaged file is moved aside and a new one started (`open_or_set_aside`):
        `set_aside` says where it went; the alerts in it are not sent again."""
        self.path = Path(path)
        self._lock = threading.Lock()
        # owner-only: an alert may carry the senior's position
        self._db, self.set_aside = open_or_set_aside(self.path, _prepare)

    def add(self, message: Message) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO unanswered (id, payload) VALUES (?, ?)",
                (message.id, encode(message)),
            )

    def answered(self, alert_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM unanswered WHERE id = ?", (alert_id,))

    def all(self, household: str, device: str) -> list[Message]:
        """The alerts still unanswered, oldest first. One that no longer reads as a valid
        alert of this device is logged at ERROR and kept (it is never silently dropped)."""
        with self._lock:
            rows = self._db.execute("SELECT id, payload FROM unanswered ORDER BY rowid").fetchall()
        messages = []
        for alert_id, payload in rows:
            try:
                messages.append(decode(bytes(payload), household, expected_device=device))
            except RejectedMessage as exc:
                log.error("unanswered alert %s cannot be sent again: %s", alert_id, exc.reason)
        return messages

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _prepare(db: sqlite3.Connection) -> None:
    db.execute(_SCHEMA)
