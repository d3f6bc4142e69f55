"""What the web console shows, read from the service's SQLite file. Every function takes
the signed-in member's household and reads nothing outside it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from services.family import alerts, reminders
from services.family.digest import day_bounds, local_day
from services.family.households import Household

HISTORY = 50  # alerts shown in the history
READING_DAYS = 30
ADHERENCE_DAYS = 28


def _alert(row: sqlite3.Row, household: Household, language: str) -> dict[str, Any]:
    message = alerts.alert_message(row)
    acked_by = household.member(row["acked_by"]) if row["acked_by"] else None
    return {
        "id": row["id"],
        "category": row["category"],
        "state": row["state"],
        "step": row["step"],
        "text": alerts.wording(message.body, row["category"], household, language),
        "received": row["received"],
        "acked_by": acked_by.name if acked_by else row["acked_by"],
        "acked_at": row["acked_at"],
        "closed_at": row["closed_at"],
    }


def open_alerts(db: sqlite3.Connection, household: Household, language: str) -> list[dict]:
    rows = db.execute(
        "SELECT * FROM alerts WHERE household = ? AND state IN ('open', 'delivered',"
        " 'escalated') ORDER BY received DESC",
        (household.id,),
    ).fetchall()
    return [_alert(r, household, language) for r in rows]


def alert_history(
    db: sqlite3.Connection, household: Household, language: str, limit: int = HISTORY
) -> list[dict]:
    rows = db.execute(
        "SELECT * FROM alerts WHERE household = ? AND state IN ('acknowledged', 'closed')"
        " ORDER BY received DESC LIMIT ?",
        (household.id, limit),
    ).fetchall()
    return [_alert(r, household, language) for r in rows]


def alert_trail(
    db: sqlite3.Connection, household: Household, alert_id: str, language: str
) -> dict | None:
    """An alert of this household with its audit trail; None for any other id."""
    row = db.execute(
        "SELECT * FROM alerts WHERE id = ? AND household = ?", (alert_id, household.id)
    ).fetchone()
    if row is None:
        return None
    out = _alert(row, household, language)
    names = {m.id: m.name for m in household.members}
    out["trail"] = [
        {**dict(e), "actor_name": names.get(e["actor"] or "", e["actor"])}
        for e in db.execute(
            "SELECT at, event, actor, detail FROM alert_events WHERE alert_id = ? ORDER BY seq",
            (alert_id,),
        )
    ]
    return out


def reminder_list(db: sqlite3.Connection, household: Household) -> list[dict]:
    """The active reminders, with whether the device confirmed the last change, and the
    adds the device refused or did not confirm (`state` failed: to be added again)."""
    return [r for r in reminders.listing(db, household.id) if r["state"] in ("active", "failed")]


def reminder(db: sqlite3.Connection, household: Household, reminder_id: str) -> dict | None:
    """An active reminder of the household (one that can be changed or removed)."""
    found = next((r for r in reminder_list(db, household) if r["id"] == reminder_id), None)
    return found if found is not None and found["state"] == "active" else None


@dataclass(frozen=True)
class Day:
    day: str  # YYYY-MM-DD, the household's local date
    taken: int
    missed: int


def adherence(
    db: sqlite3.Connection, household: Household, now: float, days: int = ADHERENCE_DAYS
) -> list[Day]:
    """Reminders taken and missed per local day they were due, the last `days` days, oldest
    first (a dose reported late counts on the day it was due)."""
    zone = ZoneInfo(household.timezone)
    today = dt.date.fromisoformat(local_day(now, household.timezone))
    first = today - dt.timedelta(days=days - 1)
    start, _ = day_bounds(first.isoformat(), household.timezone)
    counts: dict[str, list[int]] = {}
    for row in db.execute(
        "SELECT type, json_extract(body, '$.due') AS due FROM events WHERE household = ?"
        " AND type IN ('event.reminder.taken', 'event.reminder.missed') AND received >= ?",
        (household.id, start),
    ):
        due = dt.datetime.fromisoformat(row["due"].replace("Z", "+00:00")).astimezone(zone)
        pair = counts.setdefault(due.date().isoformat(), [0, 0])
        pair[0 if row["type"] == "event.reminder.taken" else 1] += 1
    out = []
    for offset in range(days - 1, -1, -1):
        day = (today - dt.timedelta(days=offset)).isoformat()
        taken, missed = counts.get(day, (0, 0))
        out.append(Day(day, taken, missed))
    return out


@dataclass(frozen=True)
class Reading:
    at: float  # when it was taken (epoch seconds)
    value: float
    diastolic: float | None
    unit: str | None


def readings(
    db: sqlite3.Connection, household: Household, now: float, days: int = READING_DAYS
) -> dict[str, list[Reading]]:
    """Health readings of the last `days` days by measure, oldest first."""
    start, _ = day_bounds(local_day(now - days * 86400, household.timezone), household.timezone)
    out: dict[str, list[Reading]] = {}
    for row in db.execute(
        "SELECT body FROM events WHERE household = ? AND type = 'event.health.reading'"
        " AND received >= ? ORDER BY received",
        (household.id, start - 86400),  # taken before it was received, within a day
    ):
        body = json.loads(row["body"])
        taken = dt.datetime.fromisoformat(body["taken_at"].replace("Z", "+00:00")).timestamp()
        if taken < start:
            continue
        out.setdefault(body["measure"], []).append(
            Reading(taken, body["value"], body.get("diastolic"), body.get("unit"))
        )
    for series in out.values():
        series.sort(key=lambda r: r.at)
    return out


def local_time(timestamp: float, household: Household, fmt: str = "%a %d %b, %H:%M") -> str:
    return dt.datetime.fromtimestamp(timestamp, ZoneInfo(household.timezone)).strftime(fmt)


def state_token(fingerprint: dict[str, Any]) -> str:
    """A short token of a fingerprint: a page carries the one it was rendered from, so its
    event stream can tell it of a change that came before the stream was open, and whether
    that change is a new alert (the token starts with the number of alerts the page saw:
    `alerts_seen`)."""
    text = json.dumps(fingerprint, sort_keys=True)
    return f"{fingerprint['alerts'][1]}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def alerts_seen(token: str) -> int | None:
    """How many alerts the page of `token` showed; None for a token not made by
    `state_token` (an old page's, or a hand-made one)."""
    count, _, rest = token.partition("-")
    return int(count) if count.isdigit() and len(rest) == 16 else None


def fingerprint(db: sqlite3.Connection, household: str) -> dict[str, Any]:
    """Numbers that change whenever something the console shows changes (for live updates
    without a message bus between workers: each console polls its household's)."""
    alert = db.execute(
        "SELECT MAX(received), COUNT(*) FROM alerts WHERE household = ?", (household,)
    ).fetchone()
    trail = db.execute(
        "SELECT MAX(e.seq) FROM alert_events e JOIN alerts a ON a.id = e.alert_id"
        " WHERE a.household = ?",
        (household,),
    ).fetchone()[0]
    event = db.execute(
        "SELECT MAX(received), COUNT(*) FROM events WHERE household = ?", (household,)
    ).fetchone()
    reminder = db.execute(
        "SELECT MAX(updated) FROM reminders WHERE household = ?", (household,)
    ).fetchone()[0]
    command = db.execute(
        "SELECT MAX(COALESCE(done_at, created)), COUNT(*) FROM commands WHERE household = ?",
        (household,),
    ).fetchone()
    device = db.execute(
        "SELECT MAX(heard), GROUP_CONCAT(state || ':' || ts) FROM device_status"
        " WHERE household = ?",
        (household,),
    ).fetchone()
    return {
        "alerts": [alert[0], alert[1], trail],
        "events": list(event),
        "reminders": [reminder, *command],
        "devices": list(device),
    }
