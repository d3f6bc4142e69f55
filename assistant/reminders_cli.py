"""`senior-assistant reminders list|add|remove`: reminders set up at the device itself, by
a caregiver who is in the room (the same store the voice and the family service use)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import uuid

from assistant.config import Config
from assistant.reminders import KINDS, REMINDERS_FILE, Reminder, ReminderStore
from assistant.schedule import ScheduleError, parse_clock, schedule_of, time_zone
from protocol.sqlite import is_damaged


class ReminderCommandError(Exception):
    """A reminder that cannot be stored as given; nothing was stored."""


def add_reminders_command(sub: argparse._SubParsersAction) -> None:
    reminders = sub.add_parser("reminders", help="the senior's reminders: list, add, remove")
    rsub = reminders.add_subparsers(dest="reminders_command", required=True)
    listing = rsub.add_parser("list", help="every reminder and when it is due next")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add = rsub.add_parser("add", help="add a reminder (a medicine by default)")
    add.add_argument("name", help="the medicine (or, with --kind other, what to remember)")
    add.add_argument("--at", required=True, help="local time HH:MM (first of the day)")
    repeat = add.add_mutually_exclusive_group()
    repeat.add_argument("--days", help="only on these weekdays, e.g. mon,thu")
    repeat.add_argument("--every-hours", type=int, help="every N hours from --at, 1-12")
    repeat.add_argument("--date", help="once, on this date (YYYY-MM-DD)")
    add.add_argument("--dose", help='e.g. "two tablets with food"')
    add.add_argument("--kind", choices=KINDS, default="medication")
    remove = rsub.add_parser("remove", help="remove a reminder by its id")
    remove.add_argument("id")
    reminders.set_defaults(handler=cmd_reminders)


def cmd_reminders(args: argparse.Namespace, config: Config) -> int:
    tz = time_zone(config.timezone)
    path = config.state_dir() / REMINDERS_FILE
    try:  # not repaired here: the device may have it open; it repairs it, and tells, at start
        store = ReminderStore(path, tz=tz, repair=False)
    except sqlite3.DatabaseError as exc:
        if not is_damaged(exc):  # locked, no permission: the data may be fine
            raise ReminderCommandError(f"{path} cannot be opened ({exc})") from None
        raise ReminderCommandError(
            f"{path} is damaged ({exc}): start the assistant, which sets it aside, starts "
            "afresh and tells the senior and the family"
        ) from None
    try:
        now = dt.datetime.now(tz)
        if args.reminders_command == "list":
            return _list(store, now, args.json)
        if args.reminders_command == "add":
            reminder = _add(store, args, now)
            print(f"added {reminder.id}: {_line(store, reminder, now)}")
            return 0
        if not store.remove(args.id):
            raise ReminderCommandError(f"there is no reminder {args.id!r}")
        print(f"removed {args.id}")
        return 0
    finally:
        store.close()


def _add(store: ReminderStore, args: argparse.Namespace, now: dt.datetime) -> Reminder:
    name = args.name.strip()
    if not name:
        raise ReminderCommandError("the reminder needs a name (the medicine, or what to do)")
    try:
        at = f"{parse_clock(args.at):%H:%M}"
        days = [d.strip().lower()[:3] for d in args.days.split(",")] if args.days else None
        schedule = schedule_of(at, days, args.every_hours, args.date)
    except ScheduleError as exc:
        raise ReminderCommandError(str(exc)) from None
    medication = name if args.kind == "medication" else None
    text = f"take your {name}" if medication else name
    reminder = Reminder(
        id=f"local-{uuid.uuid4().hex[:12]}",
        kind=args.kind,
        text=text,
        schedule=schedule,
        medication=medication,
        dose=args.dose,
        source="local",
    )
    return store.put(reminder, now)


def _line(store: ReminderStore, reminder: Reminder, now: dt.datetime) -> str:
    upcoming = store.next_time(reminder, now)
    when = f"next {upcoming.at:%a %Y-%m-%d %H:%M}" if upcoming else "not due again"
    dose = f" ({reminder.dose})" if reminder.dose else ""
    return f"{reminder.text}{dose}, {reminder.schedule.repeat} at {reminder.at}; {when}"


def _list(store: ReminderStore, now: dt.datetime, as_json: bool) -> int:
    reminders = store.all()
    if as_json:
        rows = []
        for reminder in reminders:
            upcoming = store.next_time(reminder, now)
            rows.append(
                {
                    "id": reminder.id,
                    "kind": reminder.kind,
                    "text": reminder.text,
                    "medication": reminder.medication,
                    "dose": reminder.dose,
                    "repeat": reminder.schedule.repeat,
                    "at": reminder.at,
                    "source": reminder.source,
                    "next": upcoming.at.isoformat() if upcoming else None,
                }
            )
        print(json.dumps(rows, indent=2))
        return 0
    if not reminders:
        print("no reminders")
    for reminder in reminders:
        print(f"{reminder.id}  {_line(store, reminder, now)}")
    return 0
