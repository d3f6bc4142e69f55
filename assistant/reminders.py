"""The device's reminders, in SQLite: set by the senior by voice or by a caregiver from the
family service, announced at their local time even when the network is down.

A reminder fires once per day it is due. What has fired is stored too, so a restart
neither repeats an announcement nor forgets one: a reminder whose time passed while the
device was off is still announced when it comes back within `CATCH_UP`.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from protocol.sqlite import open_db

CATCH_UP = dt.timedelta(hours=2)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    at TEXT NOT NULL,
    days TEXT,
    medication TEXT,
    dose TEXT,
    source TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fired (
    reminder_id TEXT NOT NULL,
    day TEXT NOT NULL,
    announced_at TEXT NOT NULL,
    taken_at TEXT,
    PRIMARY KEY (reminder_id, day)
);
"""


@dataclass(frozen=True)
class Reminder:
    id: str
    kind: str  # medication | appointment | check_in | other
    text: str
    at: str  # HH:MM, local time
    days: tuple[str, ...] | None = None  # None: every day
    medication: str | None = None
    dose: str | None = None
    source: str = "senior"  # senior | caregiver

    def due_on(self, day: dt.date) -> bool:
        return self.days is None or WEEKDAYS[day.weekday()] in self.days

    def time_on(self, day: dt.date) -> dt.datetime:
        hour, minute = (int(part) for part in self.at.split(":"))
        return dt.datetime.combine(day, dt.time(hour, minute))


@dataclass(frozen=True)
class Due:
    """One announcement of a reminder, for one day."""

    reminder: Reminder
    at: dt.datetime  # local time it was due


class ReminderStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # the link's thread adds, the loop's thread reads
        self._db = open_db(self.path)  # owner-only: what the senior takes is health data
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- setting up -------------------------------------------------------------------

    def put(self, reminder: Reminder) -> None:
        """Add, or replace the reminder with the same id."""
        days = json.dumps(list(reminder.days)) if reminder.days is not None else None
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO reminders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    reminder.id,
                    reminder.kind,
                    reminder.text,
                    reminder.at,
                    days,
                    reminder.medication,
                    reminder.dose,
                    reminder.source,
                ),
            )

    def add_own(self, medication: str, at: str) -> Reminder:
        """A medication reminder the senior set by voice."""
        reminder = Reminder(
            id=f"own-{uuid.uuid4().hex[:12]}",
            kind="medication",
            text=f"take your {medication}",
            at=at,
            medication=medication,
        )
        self.put(reminder)
        return reminder

    def get(self, reminder_id: str) -> Reminder | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM reminders WHERE id = ?", (reminder_id,)
            ).fetchone()
        return _reminder(row) if row else None

    def remove(self, reminder_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM reminders WHERE id = ?", (reminder_id,))
        return cursor.rowcount > 0

    def remove_medication(self, medication: str) -> int:
        """Stop the reminders for a medication (what "cancel my aspirin reminder" means)."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM reminders WHERE lower(medication) = lower(?)", (medication,)
            )
        return cursor.rowcount

    def all(self) -> list[Reminder]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM reminders ORDER BY at, id").fetchall()
        return [_reminder(row) for row in rows]

    # --- firing -----------------------------------------------------------------------

    def due(self, now: dt.datetime) -> list[Due]:
        """Reminders whose time has come today (or within CATCH_UP, across midnight) and
        that were not announced yet for that day; each is marked announced."""
        found: list[Due] = []
        for reminder in self.all():
            for day in (now.date() - dt.timedelta(days=1), now.date()):
                when = reminder.time_on(day)
                if not reminder.due_on(day) or not (when <= now < when + CATCH_UP):
                    continue
                if self._mark_announced(reminder.id, day, now):
                    found.append(Due(reminder, when))
        return found

    def _mark_announced(self, reminder_id: str, day: dt.date, now: dt.datetime) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO fired (reminder_id, day, announced_at) VALUES (?, ?, ?)",
                (reminder_id, day.isoformat(), now.isoformat(timespec="seconds")),
            )
        return cursor.rowcount > 0

    def latest_open(self, now: dt.datetime) -> Due | None:
        """The last announced medication reminder not confirmed yet (within CATCH_UP):
        what "I took it" refers to."""
        with self._lock:
            rows = self._db.execute(
                "SELECT reminder_id, day FROM fired WHERE taken_at IS NULL "
                "ORDER BY announced_at DESC LIMIT 20"
            ).fetchall()
        for reminder_id, day in rows:
            reminder = self.get(reminder_id)
            if reminder is None or reminder.medication is None:
                continue
            when = reminder.time_on(dt.date.fromisoformat(day))
            if when <= now < when + CATCH_UP:
                return Due(reminder, when)
        return None

    def mark_taken(self, due: Due, now: dt.datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE fired SET taken_at = ? WHERE reminder_id = ? AND day = ?",
                (now.isoformat(timespec="seconds"), due.reminder.id, due.at.date().isoformat()),
            )


def _reminder(row: tuple) -> Reminder:
    reminder_id, kind, text, at, days, medication, dose, source = row
    return Reminder(
        id=reminder_id,
        kind=kind,
        text=text,
        at=at,
        days=tuple(json.loads(days)) if days else None,
        medication=medication,
        dose=dose,
        source=source,
    )
