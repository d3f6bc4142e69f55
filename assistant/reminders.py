"""The device's reminders, in SQLite: set by the senior by voice, by a caregiver from the
family service or with `senior-assistant reminders`, announced at their local time even
when the network is down.

Every occurrence of a reminder (one per local date and time, `assistant.schedule`) gets a
row the moment it is first announced or found missed, in the same transaction that
decides so; the primary key (reminder, occurrence) is what keeps a restart from
announcing it twice, and the row's state from forgetting it:

    open ──"I took it"──► taken
      │ ──"later"──► open again after the snooze
      │ no answer: asked again every `repeat_every`, `repeats` times in all
      └──────────► missed (the device tells the family service)

A miss is owed to the family service until its report is stored in the link's outbox
(`report_sent`, set with the miss in the same transaction): the report is stored first and
noted as stored after, so a report that could not be stored (a full disk, a locked
database) or a power cut in between is sent at a later tick, not lost (`unreported`).

An occurrence that fell due while the device was off is announced late, saying so, when
the device comes back within `catch_up`; later than that it is recorded as missed at once.
Only medication reminders and check-ins ask for an answer; other reminders are said once.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from assistant.schedule import DAILY, DAYS, Occurrence, Schedule, ScheduleError
from protocol.reminder_twins import DoseKey, asked_until_answered, dose_key, same_dose
from protocol.sqlite import CopiedWhenRefused, in_transaction, open_checked, open_or_set_aside

REMINDERS_FILE = "reminders.sqlite3"  # in the state directory
LOOKBACK = dt.timedelta(days=2)  # how far back a device that was off looks for misses
KINDS = ("medication", "appointment", "check_in", "other")
# How far an occurrence got, for `ReminderStore._hand_over` (`{}`: the table's alias):
# taken, missed, asked, said once; between two asked, the one put off ("in half an hour":
# the senior's own answer), then the one asked more often.
_FURTHEST = (
    "((CASE {0}.state WHEN 'taken' THEN 4 WHEN 'missed' THEN 3 WHEN 'done' THEN 1 ELSE 2 END)"
    " * 100 + min({0}.snoozes, 9) * 10 + min({0}.asked, 9))"
)
# The furthest a one-off may lie ahead: a year and a little, so that next year's check-up
# can be set up, but a mistyped year (2062) is refused, not kept silent for decades.
ONE_OFF_AHEAD = dt.timedelta(days=400)


@dataclass(frozen=True)
class ReminderPolicy:
    repeat_every: dt.timedelta = dt.timedelta(minutes=10)
    repeats: int = 3  # announcements in all before a miss is recorded
    catch_up: dt.timedelta = dt.timedelta(hours=2)  # a late announcement, up to this late
    late_after: dt.timedelta = dt.timedelta(minutes=5)  # from here on, say it is late
    max_snoozes: int = 3


@dataclass(frozen=True)
class Reminder:
    id: str
    kind: str  # medication | appointment | check_in | other
    text: str
    schedule: Schedule
    medication: str | None = None
    dose: str | None = None
    source: str = "senior"  # senior | caregiver | local (the CLI) | config
    since: str = ""  # UTC ISO time it was set (or last changed): earlier times do not count

    @property
    def at(self) -> str:
        return self.schedule.at

    @property
    def answered(self) -> bool:
        """Asked about until answered: a medicine with its name, or a check-in."""
        return asked_until_answered(self.kind, self.medication)


@dataclass(frozen=True)
class Due:
    """One occurrence of a reminder that needs saying or reporting now."""

    reminder: Reminder
    key: str  # the occurrence: local date and time
    at: dt.datetime  # when it fell due (aware)
    event: str  # "announce" | "missed"
    attempt: int = 1  # 1 for the first announcement
    late_by: dt.timedelta = dt.timedelta(0)
    reason: str = ""  # for "missed": "no_answer" or "device_off"
    final: bool = False  # the last announcement before a miss is recorded
    late: bool = False  # announced later than its time (the device was off or busy)
    reported: int = 0  # for "missed": how many of its report's messages are stored already


_SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    schedule TEXT NOT NULL,
    medication TEXT,
    dose TEXT,
    source TEXT NOT NULL,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS occurrences (
    reminder_id TEXT NOT NULL,
    key TEXT NOT NULL,
    due TEXT NOT NULL,
    state TEXT NOT NULL,          -- open, taken, snoozed, missed, done
    asked INTEGER NOT NULL,
    next_at TEXT,
    snoozes INTEGER NOT NULL DEFAULT 0,
    answered_at TEXT,
    report_sent INTEGER,          -- a miss owed: its messages stored so far (NULL: none owed)
    PRIMARY KEY (reminder_id, key)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS handed_over (  -- a reminder that took over a twin's times
    old_id TEXT PRIMARY KEY,
    new_id TEXT NOT NULL
);
"""


def aware(moment: dt.datetime) -> dt.datetime:
    """In UTC (a naive time is this machine's local time). Times are compared and
    subtracted in UTC: Python does both by the wall clock for two times of one zone."""
    return (moment if moment.tzinfo is not None else moment.astimezone()).astimezone(dt.UTC)


def utc(moment: dt.datetime) -> str:
    return aware(moment).astimezone(dt.UTC).isoformat(timespec="seconds")


def from_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class ReminderStore:
    def __init__(
        self,
        path: str | Path,
        tz: dt.tzinfo | None = None,
        policy: ReminderPolicy | None = None,
        repair: bool = True,
    ) -> None:
        """`tz`: the household's time zone (default: this machine's)."""
        self.path = Path(path)
        self.tz = tz or dt.datetime.now().astimezone().tzinfo
        self.policy = policy or ReminderPolicy()
        # the link's thread adds, the loop's thread reads; re-entered by put_replacing
        self._lock = threading.RLock()
        # owner-only: what the senior takes is health data. A damaged file is moved
        # aside and the reminders in it are lost (`set_aside` says where it went); with
        # `repair` False (a command beside the running device) it raises instead. On a
        # disk that refuses writes the device's reminders go on in memory.
        if repair:
            db, self.set_aside = open_or_set_aside(self.path, _prepare)
            self._db: sqlite3.Connection | CopiedWhenRefused = CopiedWhenRefused(db, self.path)
        else:
            self._db, self.set_aside = open_checked(self.path, _prepare), None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- setting up -------------------------------------------------------------------

    def put(self, reminder: Reminder, now: dt.datetime | None = None) -> Reminder:
        """Add, or replace the reminder with the same id.

        A new reminder is first due after `now`: no "missed" for a time already past.
        A change keeps what was due: a new dose or text leaves a dose that is due (or
        overdue while the device was off) due; a new time that has passed today, with
        today's dose not yet asked about, is said now (up to `catch_up` late). A day whose
        dose was already asked about is not asked about again at the new time (`tick`):
        a second reminder could mean a second dose."""
        if reminder.kind not in KINDS:
            raise ScheduleError(f"unknown reminder kind {reminder.kind!r}")
        if not reminder.text.strip():
            raise ScheduleError("a reminder needs a text")
        now = now or dt.datetime.now(dt.UTC)
        schedule = reminder.schedule
        current = self.get(reminder.id)
        moved = current is None or current.schedule != schedule
        if moved and schedule.date is not None:
            today = aware(now).astimezone(self.tz).date()
            if dt.date.fromisoformat(schedule.date) > today + ONE_OFF_AHEAD:
                raise ScheduleError(f"{schedule.date} is more than a year ahead: is it right?")
            if schedule.has_passed(aware(now), self.tz):
                raise ScheduleError(f"{schedule.date} at {schedule.at} has already passed")
        if current is None:
            since = utc(now)
        elif moved:
            since = max(current.since, utc(aware(now) - self.policy.catch_up))
        else:
            since = current.since
        stored = Reminder(**{**reminder.__dict__, "since": since})
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO reminders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.id,
                    stored.kind,
                    stored.text,
                    json.dumps(stored.schedule.__dict__),
                    stored.medication,
                    stored.dose,
                    stored.source,
                    stored.since,
                ),
            )
        return stored

    def add_medication(
        self,
        medication: str,
        schedule: Schedule,
        now: dt.datetime | None = None,
        source: str = "senior",
        dose: str | None = None,
    ) -> Reminder:
        """A medication reminder the senior set by voice (or a local caregiver typed); the
        one there is already, when one asks for the same medication at the same times (a
        caregiver's, or one set up before): a second would ask for the dose twice."""
        reminder = Reminder(
            id=f"{'own' if source == 'senior' else source}-{uuid.uuid4().hex[:12]}",
            kind="medication",
            text=f"take your {medication}",
            schedule=schedule,
            medication=medication,
            dose=dose,
            source=source,
        )
        copies = self.copies_of(reminder)
        if copies:
            return copies[0]
        return self.put(reminder, now)

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

    def put_replacing(
        self, reminder: Reminder, replaced: list[Reminder], now: dt.datetime | None = None
    ) -> Reminder:
        """`put` a reminder in place of its twins `replaced` (one dose, one reminder), in one
        transaction (the clock's tick never sees both, nor neither). It takes over their
        record of what was asked and answered, and their start: a dose answered "taken" is
        not asked for again, and one due but not yet asked is still asked."""

        def put_and_hand_over() -> Reminder:
            stored = self.put(reminder, now)
            for old in replaced:
                self._hand_over(old.id, stored.id)
            return stored

        with self._lock:
            return in_transaction(self._db, put_and_hand_over)

    def _hand_over(self, old_id: str, new_id: str) -> None:
        """Where both have a time, the one that got furthest stays (taken, missed, asked,
        said once), under `new_id`; then `old_id` is removed."""
        self._db.execute(
            "DELETE FROM occurrences WHERE reminder_id = ? AND key IN (SELECT o.key FROM"
            " occurrences o JOIN occurrences n ON n.key = o.key AND n.reminder_id = ?"
            f" WHERE o.reminder_id = ? AND {_FURTHEST.format('o')} > {_FURTHEST.format('n')})",
            (new_id, new_id, old_id),
        )
        self._db.execute(
            "UPDATE OR IGNORE occurrences SET reminder_id = ? WHERE reminder_id = ?",
            (new_id, old_id),
        )
        self._db.execute("DELETE FROM occurrences WHERE reminder_id = ?", (old_id,))
        self._db.execute(
            "UPDATE reminders SET since = min(since, (SELECT since FROM reminders WHERE id = ?))"
            " WHERE id = ? AND EXISTS (SELECT 1 FROM reminders WHERE id = ?)",
            (old_id, new_id, old_id),
        )
        self._db.execute("DELETE FROM reminders WHERE id = ?", (old_id,))
        self._db.execute("UPDATE handed_over SET new_id = ? WHERE new_id = ?", (new_id, old_id))
        self._db.execute("INSERT OR REPLACE INTO handed_over VALUES (?, ?)", (old_id, new_id))

    def _holder_locked(self, due: Due) -> str:
        """The reminder that holds `due`'s time now: its own, or the one that took it over
        since `due` was found (an answer or a report stored under the old id would be lost:
        the dose asked for again, the miss reported twice)."""
        if self._get_locked(due.reminder.id) is not None:
            return due.reminder.id
        row = self._db.execute(
            "SELECT new_id FROM handed_over WHERE old_id = ?", (due.reminder.id,)
        ).fetchone()
        return row[0] if row else due.reminder.id

    def copies_of(self, reminder: Reminder) -> list[Reminder]:
        """Reminders that would ask for the same dose at the same times as `reminder`,
        under another id (protocol/reminder_twins.py: family-notify's rule too). Kept side
        by side, each would ask for the dose."""
        wanted = _dose_key(reminder)
        return [
            other
            for other in self.all()
            if other.id != reminder.id and same_dose(_dose_key(other), wanted)
        ]

    def remove_medication(self, medication: str) -> list[Reminder]:
        """Stop the reminders for a medication (what "cancel my aspirin reminder" means);
        those stopped."""
        match = "FROM reminders WHERE lower(medication) = lower(?)"
        with self._lock:
            rows = self._db.execute(f"SELECT * {match}", (medication,)).fetchall()
            self._db.execute(f"DELETE {match}", (medication,))
        return [_reminder(row) for row in rows]

    def all(self) -> list[Reminder]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM reminders ORDER BY id").fetchall()
        reminders = [_reminder(row) for row in rows]
        return sorted(reminders, key=lambda r: (r.at, r.id))

    def next_time(self, reminder: Reminder, now: dt.datetime) -> Occurrence | None:
        """When it falls due next (a repeat within a week, a one-off however far ahead),
        for reading the reminders out."""
        now = aware(now)
        schedule = reminder.schedule
        end = max(now + dt.timedelta(days=8), schedule.once_at(self.tz) or now)
        return next(schedule.between(now, end, self.tz), None)

    # --- firing -----------------------------------------------------------------------

    def tick(self, now: dt.datetime) -> list[Due]:
        """What must be said or reported now; each decision is stored as it is made."""
        now = aware(now)

        def decide() -> list[Due]:
            found: list[Due] = []
            for reminder in [
                _reminder(row) for row in self._db.execute("SELECT * FROM reminders").fetchall()
            ]:
                found += self._new_occurrences(reminder, now)
            return found + self._repeats(now)

        with self._lock:
            found = in_transaction(self._db, decide)
        return sorted(found, key=lambda due: due.at)

    def _new_occurrences(self, reminder: Reminder, now: dt.datetime) -> list[Due]:
        policy = self.policy
        start = max(from_utc(reminder.since), now - LOOKBACK)
        found = []
        for occurrence in reminder.schedule.between(start, now, self.tz):
            if self._covered(reminder, occurrence):
                continue
            late_by = now - occurrence.at
            if late_by <= policy.catch_up:
                state = "open" if reminder.answered else "done"
                due = Due(
                    reminder,
                    occurrence.key,
                    occurrence.at,
                    "announce",
                    1,
                    late_by,
                    final=reminder.answered and policy.repeats == 1,
                    late=late_by >= policy.late_after,
                )
                asked = 1
            elif reminder.answered:
                state, asked = "missed", 0
                due = Due(
                    reminder,
                    occurrence.key,
                    occurrence.at,
                    "missed",
                    0,
                    late_by,
                    reason="device_off",
                )
            else:
                continue  # an appointment reminder hours late helps nobody
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO occurrences"
                " (reminder_id, key, due, state, asked, next_at, report_sent)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    reminder.id,
                    occurrence.key,
                    utc(occurrence.at),
                    state,
                    asked,
                    utc(now + policy.repeat_every),
                    0 if state == "missed" else None,  # a report is owed
                ),
            )
            if cursor.rowcount:
                found.append(due)
        return found

    def _covered(self, reminder: Reminder, occurrence: Occurrence) -> bool:
        """Was this dose already asked about at another time, before the schedule was
        changed? Once a day (daily, weekdays, a one-off): another time the same local day.
        Every N hours: another time less than N hours before."""
        every = reminder.schedule.every_hours
        if every:
            row = self._db.execute(
                "SELECT 1 FROM occurrences WHERE reminder_id = ? AND key != ?"
                " AND due > ? AND due <= ? LIMIT 1",
                (
                    reminder.id,
                    occurrence.key,
                    utc(occurrence.at - dt.timedelta(hours=every)),
                    utc(occurrence.at),
                ),
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT 1 FROM occurrences WHERE reminder_id = ? AND key != ?"
                " AND substr(key, 1, 10) = ? LIMIT 1",
                (reminder.id, occurrence.key, occurrence.key[:10]),
            ).fetchone()
        return row is not None

    def _repeats(self, now: dt.datetime) -> list[Due]:
        policy = self.policy
        rows = self._db.execute(
            "SELECT o.reminder_id, o.key, o.due, o.asked FROM occurrences o"
            " JOIN reminders r ON r.id = o.reminder_id"
            " WHERE o.state = 'open' AND o.next_at <= ?",
            (utc(now),),
        ).fetchall()
        found = []
        for reminder_id, key, due_text, asked in rows:
            reminder = self._get_locked(reminder_id)
            if reminder is None:
                continue
            due_at = from_utc(due_text).astimezone(self.tz)
            if asked < policy.repeats:
                self._db.execute(
                    "UPDATE occurrences SET asked = ?, next_at = ?"
                    " WHERE reminder_id = ? AND key = ?",
                    (asked + 1, utc(now + policy.repeat_every), reminder_id, key),
                )
                found.append(
                    Due(
                        reminder,
                        key,
                        due_at,
                        "announce",
                        asked + 1,
                        now - due_at,
                        final=asked + 1 >= policy.repeats,
                    )
                )
            else:
                self._db.execute(
                    "UPDATE occurrences SET state = 'missed', next_at = NULL, report_sent = 0"
                    " WHERE reminder_id = ? AND key = ?",
                    (reminder_id, key),
                )
                found.append(
                    Due(reminder, key, due_at, "missed", asked, now - due_at, reason="no_answer")
                )
        return found

    # --- reporting misses -------------------------------------------------------------

    def unreported(self, now: dt.datetime) -> list[Due]:
        """The misses whose report is not all stored for sending yet, oldest first: just
        found by `tick`, or left over because storing the report failed or the device
        stopped before it was noted (`Due.reported`: how many of its messages are stored).
        A miss answered since ("I took it") is no longer reported."""
        now = aware(now)
        with self._lock:
            rows = self._db.execute(
                "SELECT o.reminder_id, o.key, o.due, o.asked, o.report_sent FROM occurrences o"
                " JOIN reminders r ON r.id = o.reminder_id"
                " WHERE o.state = 'missed' AND o.report_sent IS NOT NULL"
                " ORDER BY o.due, o.reminder_id"
            ).fetchall()
            found = []
            for reminder_id, key, due_text, asked, sent in rows:
                reminder = self._get_locked(reminder_id)
                if reminder is None:
                    continue
                due_at = from_utc(due_text).astimezone(self.tz)
                reason = "no_answer" if asked else "device_off"
                found.append(
                    Due(reminder, key, due_at, "missed", asked, now - due_at, reason=reason,
                        reported=sent)
                )  # fmt: skip
        return found

    def mark_reported(self, due: Due, messages: int | None) -> None:
        """The first `messages` of a miss's report are stored for sending (None: all of
        them, nothing more is owed). Called only after they are stored."""
        with self._lock:
            self._db.execute(
                "UPDATE occurrences SET report_sent = ? WHERE reminder_id = ? AND key = ?",
                (messages, self._holder_locked(due), due.key),
            )

    def _get_locked(self, reminder_id: str) -> Reminder | None:
        row = self._db.execute("SELECT * FROM reminders WHERE id = ?", (reminder_id,)).fetchone()
        return _reminder(row) if row else None

    # --- answers ----------------------------------------------------------------------

    def latest_asked(self, now: dt.datetime, kind: str = "medication") -> Due | None:
        """The occurrence an answer refers to: the last one of `kind` asked about and not
        answered yet (open, or missed within the last `catch_up`: "I took it" after the
        miss was reported still counts, and the family hears so)."""
        now = aware(now)
        since = utc(now - self.policy.catch_up - self.policy.repeat_every * self.policy.repeats)
        with self._lock:
            rows = self._db.execute(
                "SELECT o.reminder_id, o.key, o.due, o.state FROM occurrences o"
                " JOIN reminders r ON r.id = o.reminder_id"
                " WHERE r.kind = ? AND o.state IN ('open', 'missed') AND o.due >= ?"
                " AND o.asked > 0 ORDER BY o.due DESC LIMIT 1",
                (kind, since),
            ).fetchall()
            if not rows:
                return None
            reminder_id, key, due_text, state = rows[0]
            reminder = self._get_locked(reminder_id)
        if reminder is None:
            return None
        due_at = from_utc(due_text).astimezone(self.tz)
        return Due(reminder, key, due_at, state, late_by=now - due_at)

    def answer(self, due: Due, now: dt.datetime) -> str:
        """Record an answer ("I took it", or a check-in answered); the id of the reminder
        it is stored under (another than `due`'s when one took over its time meanwhile)."""
        with self._lock:
            holder = self._holder_locked(due)
            self._db.execute(
                "UPDATE occurrences SET state = 'taken', answered_at = ?, next_at = NULL"
                " WHERE reminder_id = ? AND key = ?",
                (utc(now), holder, due.key),
            )
        return holder

    def snooze(self, due: Due, minutes: int, now: dt.datetime) -> bool:
        """Ask again in `minutes`; False when it was put off too often already."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE occurrences SET state = 'open', next_at = ?, snoozes = snoozes + 1,"
                " asked = 0 WHERE reminder_id = ? AND key = ? AND snoozes < ?"
                " AND state = 'open'",  # a miss already reported stays one miss
                (
                    utc(now + dt.timedelta(minutes=minutes)),
                    self._holder_locked(due),
                    due.key,
                    self.policy.max_snoozes,
                ),
            )
        return cursor.rowcount > 0

    def state_of(self, reminder_id: str, key: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state FROM occurrences WHERE reminder_id = ? AND key = ?",
                (reminder_id, key),
            ).fetchone()
        return row[0] if row else None

    # --- a little state beside the reminders ------------------------------------------

    def get_meta(self, name: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_meta(self, name: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))


def _reminder(row: tuple) -> Reminder:
    reminder_id, kind, text, schedule, medication, dose, source, since = row
    raw = json.loads(schedule)
    if raw.get("days") is not None:
        raw["days"] = tuple(raw["days"])
    return Reminder(
        id=reminder_id,
        kind=kind,
        text=text,
        schedule=Schedule(**raw),
        medication=medication,
        dose=dose,
        source=source,
        since=since,
    )


def _dose_key(reminder: Reminder) -> DoseKey:
    schedule = reminder.schedule
    return dose_key(
        reminder.kind,
        reminder.text,
        schedule.at,
        medication=reminder.medication,
        dose=reminder.dose,
        days=schedule.days,
        every_hours=schedule.every_hours,
        date=schedule.date,
    )


def _prepare(db: sqlite3.Connection) -> None:
    _migrate(db)
    db.executescript(_SCHEMA)
    _add_report_column(db)


def _add_report_column(db: sqlite3.Connection) -> None:
    """Occurrences stored before misses were tracked until reported get the column, NULL:
    their misses were reported (or attempted) when they were found."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(occurrences)")]
    if "report_sent" not in columns:
        db.execute("ALTER TABLE occurrences ADD COLUMN report_sent INTEGER")


def _migrate(db: sqlite3.Connection) -> None:
    """Reminders stored by the first version (a time and weekdays, no schedule) are kept."""
    columns = [row[1] for row in db.execute("PRAGMA table_info(reminders)")]
    if not columns or "schedule" in columns:
        return
    rows = db.execute("SELECT id, kind, text, at, days, medication, dose, source FROM reminders")
    old = rows.fetchall()
    db.executescript("DROP TABLE reminders; DROP TABLE IF EXISTS fired;" + _SCHEMA)
    now = utc(dt.datetime.now(dt.UTC))
    for reminder_id, kind, text, at, days, medication, dose, source in old:
        days_list = json.loads(days) if days else None
        schedule = Schedule(DAYS, at, days=tuple(days_list)) if days_list else Schedule(DAILY, at)
        db.execute(
            "INSERT INTO reminders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (reminder_id, kind, text, json.dumps(schedule.__dict__), medication, dose, source, now),
        )
