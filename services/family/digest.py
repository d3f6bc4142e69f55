"""The daily digest: per household and local day, the reminders taken and missed, the
readings reported and the alerts, to every member but the senior, in their language.

The device's events are recorded as they come (`record`); the digest is built from them.
A running service sends it at `digest.at`, households' local time, once a day: the
`digests` row is the claim, so two workers never both send it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
import time
from zoneinfo import ZoneInfo

from protocol import MemberDigest, Message, create
from protocol.schema import to_dict
from services.family import households
from services.family.alerts import local_clock
from services.family.households import Household
from services.family.outbox import Outbox, Planned, stable_id
from services.family.store import Store
from services.family.texts import text

RECORDED = (
    "event.reminder.taken",
    "event.reminder.missed",
    "event.reminder.removed",
    "event.health.reading",
    "event.checkin.answer",
    "event.command.done",
)
CHECK_EVERY_S = 30.0


def local_day(timestamp: float, timezone: str) -> str:
    return dt.datetime.fromtimestamp(timestamp, ZoneInfo(timezone)).date().isoformat()


def day_bounds(day: str, timezone: str) -> tuple[float, float]:
    start = dt.datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(timezone))
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def record(store: Store, message: Message, household: Household) -> bool:
    """Keep a device event for the digest; False when it was recorded already."""
    now = time.time()
    return bool(
        store.db.execute(
            "INSERT OR IGNORE INTO events (id, household, device, type, day, received, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                message.id,
                household.id,
                message.device,
                message.type,
                local_day(now, household.timezone),
                now,
                json.dumps(to_dict(message.body)),
            ),
        ).rowcount
    )


def build(db: sqlite3.Connection, household: Household, day: str, language: str) -> MemberDigest:
    events = db.execute(
        "SELECT type, body FROM events WHERE household = ? AND day = ? ORDER BY received",
        (household.id, day),
    ).fetchall()
    names = {
        r["id"]: json.loads(r["body"])
        for r in db.execute("SELECT id, body FROM reminders WHERE household = ?", (household.id,))
    }
    start, end = day_bounds(day, household.timezone)
    alerts = db.execute(
        "SELECT category, state FROM alerts WHERE household = ? AND received >= ?"
        " AND received < ? ORDER BY received",
        (household.id, start, end),
    ).fetchall()
    counts = {"taken": 0, "missed": 0, "reading": 0}
    lines = []
    for event in events:
        body = json.loads(event["body"])
        kind = event["type"].split(".")[-1]
        if event["type"] in ("event.reminder.taken", "event.reminder.missed"):
            reminder = names.get(body["reminder_id"], {})
            what = reminder.get("medication") or reminder.get("text") or body["reminder_id"]
            due = local_clock(body["due"], household.timezone)
            counts[kind] += 1
            lines.append(text(language, f"digest.{kind}", what=what, due=due))
        elif event["type"] == "event.reminder.removed":
            reminder = names.get(body["reminder_id"], {})
            what = reminder.get("medication") or reminder.get("text") or body["reminder_id"]
            lines.append(text(language, "digest.removed", what=what))
        elif event["type"] == "event.health.reading":
            counts["reading"] += 1
            value = f"{body['value']:g}"
            if body.get("diastolic") is not None:
                value += f"/{body['diastolic']:g}"
            if body.get("unit"):
                value += f" {body['unit']}"
            lines.append(text(language, "digest.reading", measure=body["measure"], value=value))
    for alert in alerts:
        lines.append(
            text(language, "digest.alert", category=alert["category"], state=alert["state"])
        )
    if not lines:
        lines.append(text(language, "digest.none"))
    return MemberDigest(
        day=day,
        reminders_taken=counts["taken"],
        reminders_missed=counts["missed"],
        readings=counts["reading"],
        alerts=len(alerts),
        lines=lines[:200],
    )


class Digests:
    def __init__(self, store: Store, outbox: Outbox, at: str) -> None:
        self.store = store
        self.outbox = outbox
        self.at = at
        self._checked = 0.0

    def plan(
        self, db: sqlite3.Connection, household: Household, day: str, salt: object = ""
    ) -> list[Planned]:
        planned = []
        for member in household.others:
            body = build(db, household, day, member.language)
            message = create(body, household.id, member.id)
            message_id = stable_id(household.id, member.id, day, salt)
            message = dataclasses.replace(message, id=message_id)
            planned.append(Planned.message(message, "digest", member=member.id))
        return planned

    def send(self, household_id: str, day: str) -> list[str]:
        """Send (again) one household's digest of `day`; the ids to send now."""
        now = time.time()
        with self.store.write() as db:
            household = households.require(db, household_id)
            db.execute(
                "INSERT OR REPLACE INTO digests (household, day, at) VALUES (?, ?, ?)",
                (household_id, day, now),
            )
            # a digest sent again is a new message: its ids must differ from the first's
            return self.outbox.plan(db, self.plan(db, household, day, salt=now), now)

    def due(self, now: float | None = None) -> list[str]:
        """Plan the digests whose local time came today and were not sent yet."""
        now = time.time() if now is None else now
        if not self.at or now - self._checked < CHECK_EVERY_S:
            return []
        self._checked = now
        hour, minute = (int(x) for x in self.at.split(":"))
        ids: list[str] = []
        with self.store.write() as db:
            for row in db.execute("SELECT id, timezone FROM households").fetchall():
                local = dt.datetime.fromtimestamp(now, ZoneInfo(row["timezone"]))
                if (local.hour, local.minute) < (hour, minute):
                    continue
                day = local.date().isoformat()
                claimed = db.execute(
                    "INSERT OR IGNORE INTO digests (household, day, at) VALUES (?, ?, ?)",
                    (row["id"], day, now),
                ).rowcount
                if claimed:
                    household = households.get(db, row["id"])
                    if household is not None:
                        ids += self.outbox.plan(db, self.plan(db, household, day), now)
        return ids
