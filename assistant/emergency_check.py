"""An unanswered "do you need help?" kept on disk, so a restart cannot swallow the alert.

When the dialog is not sure of an emergency it asks first, and alerts unless the senior
answers "no": silence alerts too (assistant/dialog.py). The question lived only in memory,
so a restart between the question and the silence (the power lost, the process killed)
forgot it, and the alert that silence would have raised was never sent. The question is
now written down before it is spoken and removed once it is answered or alerted; a device
that starts with one still written down alerts at once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from protocol.sqlite import open_or_set_aside

log = logging.getLogger(__name__)

CHECK_FILE = "emergency-check.sqlite3"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS open_check (
    only_one INTEGER PRIMARY KEY CHECK (only_one = 1),
    slots TEXT NOT NULL,
    asked_at TEXT NOT NULL
)
"""


class EmergencyCheckStore:
    """At most one open emergency check: what the emergency was (its slots) and when the
    senior was asked."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # owner-only: what kind of emergency is health data. A damaged file is moved
        # aside (`set_aside`): whether a check was open is then unknown.
        self._db, self.set_aside = open_or_set_aside(self.path, lambda db: db.execute(_SCHEMA))

    def asked(self, slots: dict[str, str], at: dt.datetime) -> None:
        """The senior is being asked; on disk when this returns (synchronous=FULL)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO open_check (only_one, slots, asked_at) VALUES (1, ?, ?)",
                (json.dumps(slots, sort_keys=True), at.isoformat()),
            )

    def settled(self) -> None:
        """Answered, or alerted: nothing is open."""
        with self._lock:
            self._db.execute("DELETE FROM open_check")

    def left_open(self) -> tuple[dict[str, str], dt.datetime] | None:
        """The check a previous run asked and never settled, or None. A row that cannot be
        read still counts as open, with no slots: an alert for "help" is sent rather than
        none."""
        with self._lock:
            row = self._db.execute("SELECT slots, asked_at FROM open_check").fetchone()
        if row is None:
            return None
        try:
            slots = {str(k): str(v) for k, v in json.loads(row[0]).items()}
        except (ValueError, AttributeError):
            log.error("an open emergency check could not be read; alerting for help")
            slots = {}
        try:
            asked_at = dt.datetime.fromisoformat(row[1])
        except ValueError:
            asked_at = dt.datetime.now(dt.UTC)
        return slots, asked_at

    def close(self) -> None:
        with self._lock:
            self._db.close()


def alert_left_open(
    checks: EmergencyCheckStore | None, raise_alert: Callable[[dict[str, str]], object]
) -> dict[str, str] | None:
    """A "do you need help?" the last run left unanswered alerts as soon as the device can
    send, before its voice, recognizer and wake word are set up: a loudspeaker or a model
    that fails to load must neither hold the alert up nor, failing at every start, stop it
    for ever. The slots alerted for; None when none was left open, or raising it failed
    (logged; the check stays open for the assistant to alert once it is up)."""
    left = checks.left_open() if checks is not None else None
    if checks is None or left is None:
        return None
    slots, asked_at = left
    log.warning("an emergency check asked at %s was never answered: alerting", asked_at)
    alerted = {"kind": slots.get("kind", "help")}
    try:
        raise_alert(alerted)
    except Exception:
        log.exception("the alert for the unanswered emergency check could not be raised yet")
        return None
    try:
        checks.settled()
    except Exception:  # the disk refuses: alerted all the same; the next start alerts again
        log.exception("the emergency check could not be marked settled")
    return alerted
