"""A caregiver sets up the senior's reminders from afar; a family member makes the device
say something, changes its volume or starts a call on it (`command.say/volume/call`).

A request (`command.reminder.add/change/remove`, from the CLI or on a member's
`member_command` topic) is checked (a known household, a member of it whose role may, a
reminder that exists for a change or a removal), recorded, and passed on to the household's
device as a new command message. The device answers `event.command.done` naming that
command; the command is then `confirmed` (or `failed`) and the member who asked is told in
their inbox (`member.command.result`): first `sent`, then `confirmed` or `failed`.

The service's copy of a reminder shows a command at once (the console says "waiting for
the device"); each command keeps its body and the reminder as it was before it, so a
command the device refuses is undone: the reminder is rebuilt from the one before it with
every later command not failed replayed on top. A refused add leaves the reminder `failed`
(not active: it can be added again), a refused change the values before it, a refused
removal the reminder active.

A command the device does not confirm within `service.command_timeout_s` fails with
"the device did not confirm" (`expire`, from the scheduler); if the device does carry it
out later, its confirmation still counts. When the device comes online (its retained
`device.status`), the commands it has not confirmed are sent to it again (`resend`).

A device that found its reminders file damaged starts without it and says so (a wellness
notice naming `reminders`, assistant/lost_state.py). The reminders this copy holds as active
are then sent to it again as new adds (`restore`), so a caregiver's medication reminders come
back without anyone setting them up again; one the device does not take is `failed` here,
for the caregiver to add again. What the senior set up by voice is not known here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from protocol import (
    Call,
    CommandDone,
    MemberCommandResult,
    ReminderAdd,
    ReminderChange,
    ReminderRemove,
    Say,
    ServiceReason,
    Volume,
    create,
)
from protocol.reminder_twins import asked_until_answered, dose_key_of_add, same_dose
from protocol.schema import from_dict, to_dict
from services.family import households
from services.family.households import Household, HouseholdError
from services.family.outbox import Outbox, Planned, stable_id
from services.family.store import Store

log = logging.getLogger(__name__)

ReminderCommand = ReminderAdd | ReminderChange | ReminderRemove
RemoteCommand = Say | Volume | Call  # nothing kept here: passed on and confirmed
ALLOWED_ROLES = ("caregiver", "family")  # the senior sets reminders by voice, on the device
CLI = "cli"
COPIES_AS_ON_DEVICE = 1  # the file's user_version once its copies are folded as on the device
REPEATS = frozenset({"days", "every_hours", "date"})  # a reminder's kind of repeat
RESTORE = "restore"  # requested_by of the adds that restore a device's lost reminders
BY_VOICE = "senior"  # requested_by of a removal the senior made on the device
REMINDER_EXISTS = "reminder_exists"
UNKNOWN_COMMAND = "unknown_command"
NOT_CONFIRMED = "the device did not confirm"  # a command's reason when it timed out


# Tells the family, within the caller's write transaction, of restored reminders (commands'
# rows) a device did not take back; the outbox ids to send now.
NotRestored = Callable[[sqlite3.Connection, list[sqlite3.Row]], list[str]]


class Reminders:
    def __init__(
        self, store: Store, outbox: Outbox, not_restored: NotRestored | None = None
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.not_restored = not_restored
        self._refold_copies()

    def _refold_copies(self) -> None:
        """Once per file: rebuild every reminder's copy from its commands as the device
        applies them (`_fold`). Copies folded before merged a new kind of repeat into the old
        one ("every 8 hours" and "Mondays and Thursdays" at once), which a restore would
        send as every 8 hours."""
        with self.store.write() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] >= COPIES_AS_ON_DEVICE:
                return
            firsts = db.execute(
                "SELECT rowid, * FROM commands WHERE rowid IN (SELECT MIN(rowid) FROM commands"
                " WHERE reminder_id IS NOT NULL AND body IS NOT NULL"
                " GROUP BY household, reminder_id)"
            ).fetchall()
            for first in firsts:
                self._rebuild(db, first, time.time())
            db.execute(f"PRAGMA user_version = {COPIES_AS_ON_DEVICE}")

    def request(
        self,
        body: ReminderCommand | RemoteCommand,
        household_id: str,
        requested_by: str = CLI,
        request_id: str | None = None,
    ) -> tuple[str, list[str]]:
        """Check, record and pass on a command. Returns the id of the command sent to the
        device and the outbox ids to send now. HouseholdError when refused: a household of
        another id, someone not a member of it, or a role that may not."""
        now = time.time()
        with self.store.write() as db:
            household = households.require(db, household_id)
            if requested_by != CLI:
                member = households.require_member(household, requested_by)
                if member.role not in ALLOWED_ROLES:
                    what = (
                        "change reminders here" if "reminder" in body.TYPE else f"send {body.TYPE}"
                    )
                    raise HouseholdError(
                        ServiceReason.NOT_ALLOWED, f"a {member.role} cannot {what}"
                    )
            if request_id is not None:
                known = db.execute(
                    "SELECT id FROM commands WHERE request_id = ?", (request_id,)
                ).fetchone()
                if known is not None:
                    return known["id"], []  # a resend of a request already passed on
            reminder_id = getattr(body, "reminder_id", None)
            kept = previous = None
            if not isinstance(body, RemoteCommand):
                previous = self._apply(db, household, body, now)
                kept = json.dumps(to_dict(body))
            command = create(body, household.id, household.device)
            if request_id is not None:  # the same request always makes the same command
                command = dataclasses.replace(command, id=stable_id(request_id, "command"))
            db.execute(
                "INSERT INTO commands (id, household, device, type, reminder_id, requested_by,"
                " request_id, state, created, body, previous)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'sent', ?, ?, ?)",
                (command.id, household.id, household.device, command.type, reminder_id,
                 requested_by, request_id, now, kept, previous),
            )  # fmt: skip
            planned = [Planned.message(command, "command")]
            if request_id is not None and requested_by != CLI:
                planned.append(
                    self._result(household.id, requested_by, request_id, "sent", reminder_id)
                )
            return command.id, self.outbox.plan(db, planned, now)

    def _apply(
        self, db: sqlite3.Connection, household: Household, body: ReminderCommand, now: float
    ) -> str | None:
        """Check a reminder command against the service's copy and apply it there; the
        reminder as it was before (JSON, kept with the command to undo it), None: none."""
        row = db.execute(
            "SELECT body, state FROM reminders WHERE household = ? AND id = ?",
            (household.id, body.reminder_id),
        ).fetchone()
        before = None if row is None else {"state": row["state"], "body": json.loads(row["body"])}
        active = before is not None and before["state"] == "active"
        if isinstance(body, ReminderAdd):
            if active:
                raise HouseholdError(REMINDER_EXISTS, "a reminder of that id exists already")
        elif not active:
            raise HouseholdError(ServiceReason.UNKNOWN_REMINDER, "no such reminder here")
        after = _fold(before, body.TYPE, to_dict(body))
        if _active(after):  # an add, or a change that made it another's twin
            twin = _same_dose(db, household.id, after["body"], besides=body.reminder_id)
            if twin is not None:  # set up twice, each would ask for the dose
                raise HouseholdError(REMINDER_EXISTS, f"the same reminder is set up as {twin!r}")
        _write(db, household.id, body.reminder_id, after, now)
        return None if before is None else json.dumps(before)

    def _rebuild(self, db: sqlite3.Connection, start: sqlite3.Row, now: float) -> None:
        """The service's copy of a reminder after the fate of command `start` changed: from
        the reminder before it, replay it and every later command about the same reminder
        that did not fail (each later one keeping what came before it anew)."""
        if start["reminder_id"] is None or start["body"] is None:
            return  # not about a reminder, or from before commands kept their bodies
        rows = db.execute(
            "SELECT rowid, * FROM commands WHERE household = ? AND reminder_id = ?"
            " AND rowid >= ? AND body IS NOT NULL ORDER BY rowid",
            (start["household"], start["reminder_id"], start["rowid"]),
        ).fetchall()
        state = json.loads(start["previous"]) if start["previous"] else None
        for row in rows:
            if row["rowid"] != start["rowid"]:
                db.execute(
                    "UPDATE commands SET previous = ? WHERE id = ?",
                    (None if state is None else json.dumps(state), row["id"]),
                )
            body = json.loads(row["body"])
            if row["state"] != "failed":
                state = _fold(state, row["type"], body)
            elif row["type"] == ReminderAdd.TYPE and (
                not _active(state) or row["requested_by"] == RESTORE
            ):
                state = {"state": "failed", "body": body}  # not on the device: add it again
        _write(db, start["household"], start["reminder_id"], state, now)

    def _result(
        self,
        household: str,
        member: str,
        request_id: str,
        status: str,
        reminder_id: str | None,
        detail: str | None = None,
    ) -> Planned:
        body = MemberCommandResult(
            command_id=request_id, status=status, reminder_id=reminder_id, detail=detail
        )
        message = create(body, household, member)
        message = dataclasses.replace(message, id=stable_id(request_id, "result", status))
        return Planned.message(message, "command_result", member=member)

    def done(self, done: CommandDone, household: str) -> list[str]:
        """The device's confirmation of a command; the ids to send now. A command that
        failed because the device did not confirm it in time still takes the device's word
        when it comes (the broker may have kept it for the device all along)."""
        now = time.time()
        state = "confirmed" if done.ok else "failed"
        with self.store.write() as db:
            row = db.execute(
                "SELECT rowid, * FROM commands WHERE id = ? AND household = ?",
                (done.command_id, household),
            ).fetchone()
            if row is None:
                raise HouseholdError(UNKNOWN_COMMAND, "no command of that id was sent here")
            late = row["state"] == "failed" and row["detail"] == NOT_CONFIRMED
            if row["state"] != "sent" and not late:
                return []
            db.execute(
                "UPDATE commands SET state = ?, done_at = ?, detail = ? WHERE id = ?",
                (state, now, done.detail, row["id"]),
            )
            if state == "failed" and late:
                return []  # undone and told already
            self._rebuild(db, row, now)
            if state == "failed" and row["requested_by"] == RESTORE:
                return self._tell_not_restored(db, [row])
            if row["request_id"] is None or row["requested_by"] == CLI:
                return []
            planned = self._result(
                household, row["requested_by"], row["request_id"], state, row["reminder_id"],
                done.detail,
            )  # fmt: skip
            return self.outbox.plan(db, [planned], now)

    def expire(self, timeout_s: float, now: float | None = None) -> list[str]:
        """Commands the device has not confirmed `timeout_s` after they were asked for
        (never connected, its broker session expired, its handler failed): `failed`, undone
        in the service's copy, the member told (the family, of reminders sent again to a
        device that lost them); the ids to send now."""
        now = time.time() if now is None else now
        with self.store.write() as db:
            rows = db.execute(
                "SELECT rowid, * FROM commands WHERE state = 'sent' AND created <= ?"
                " ORDER BY rowid",
                (now - timeout_s,),
            ).fetchall()
            planned = []
            restores: dict[tuple[str, str], list[sqlite3.Row]] = {}  # by household, device
            for row in rows:
                db.execute(
                    "UPDATE commands SET state = 'failed', done_at = ?, detail = ? WHERE id = ?",
                    (now, NOT_CONFIRMED, row["id"]),
                )
                self._rebuild(db, row, now)
                if row["requested_by"] == RESTORE:
                    restores.setdefault((row["household"], row["device"]), []).append(row)
                member, request_id = row["requested_by"], row["request_id"]
                if request_id is not None and member != CLI:
                    planned.append(
                        self._result(
                            row["household"],
                            member,
                            request_id,
                            "failed",
                            row["reminder_id"],
                            NOT_CONFIRMED,
                        )
                    )
            told = [i for group in restores.values() for i in self._tell_not_restored(db, group)]
            return told + self.outbox.plan(db, planned, now)

    def _tell_not_restored(self, db: sqlite3.Connection, rows: list[sqlite3.Row]) -> list[str]:
        """Tell the family, in its own savepoint: a failure to tell (the household removed
        meanwhile) is logged and does not undo the commands' fate with it (every tick's
        deadline would fail again, for every household)."""
        if self.not_restored is not None:
            db.execute("SAVEPOINT not_restored")
            try:
                ids = self.not_restored(db, rows)
                db.execute("RELEASE not_restored")
                return ids
            except Exception:
                db.execute("ROLLBACK TO not_restored")
                db.execute("RELEASE not_restored")
                log.exception("the family could not be told of reminders not restored")
        log.error("%d restored reminder(s) not taken back by the device; nobody told", len(rows))
        return []

    def stopped_on_device(
        self, household_id: str, device: str, event_id: str, reminder_id: str
    ) -> None:
        """The senior stopped a caregiver's reminder by voice (the device's event
        `event_id`): kept as a confirmed removal by the senior, so the copy shows it removed,
        later replays keep it so, and it is not sent again after a loss."""
        now = time.time()
        with self.store.write() as db:
            household = households.require(db, household_id)
            row = db.execute(
                "SELECT body, state FROM reminders WHERE household = ? AND id = ?",
                (household.id, reminder_id),
            ).fetchone()
            if device != household.device or row is None or row["state"] != "active":
                return
            before = {"state": row["state"], "body": json.loads(row["body"])}
            body = to_dict(ReminderRemove(reminder_id=reminder_id))
            inserted = db.execute(
                "INSERT OR IGNORE INTO commands (id, household, device, type, reminder_id,"
                " requested_by, state, created, done_at, body, previous)"
                " VALUES (?, ?, ?, ?, ?, ?, 'confirmed', ?, ?, ?, ?)",
                (event_id, household.id, device, ReminderRemove.TYPE, reminder_id, BY_VOICE,
                 now, now, json.dumps(body), json.dumps(before)),
            ).rowcount  # fmt: skip
            if inserted:
                _write(db, household.id, reminder_id, _fold(before, ReminderRemove.TYPE, body), now)

    def restore(self, household_id: str, device: str, lost_notice_id: str) -> list[str]:
        """`device` lost its reminders (its notice `lost_notice_id`): send it again, as new
        adds, every reminder this copy holds as active, but a one-off whose time has passed
        in the household's time zone. Done once per notice (the adds' ids come from it,
        so a notice handled twice restores once); the ids to send now."""
        now = time.time()
        with self.store.write() as db:
            household = households.require(db, household_id)
            if device != household.device:
                return []  # reminders are kept on the household's first device only
            local_now = dt.datetime.fromtimestamp(now, ZoneInfo(household.timezone))
            planned = []
            for row in db.execute(
                "SELECT id, body FROM reminders WHERE household = ? AND state = 'active'"
                " ORDER BY id",
                (household.id,),
            ).fetchall():
                copy = json.loads(row["body"])
                body = from_dict(ReminderAdd, copy)
                if _passed(body, local_now):
                    continue
                command = dataclasses.replace(
                    create(body, household.id, device),
                    id=stable_id(lost_notice_id, "restore", row["id"]),
                )
                kept = json.dumps(to_dict(body))
                previous = json.dumps({"state": "active", "body": copy})
                inserted = db.execute(
                    "INSERT OR IGNORE INTO commands (id, household, device, type, reminder_id,"
                    " requested_by, state, created, body, previous)"
                    " VALUES (?, ?, ?, ?, ?, ?, 'sent', ?, ?, ?)",
                    (command.id, household.id, device, command.type, row["id"], RESTORE, now,
                     kept, previous),
                )  # fmt: skip
                if inserted.rowcount:
                    planned.append(Planned.message(command, "command"))
            return self.outbox.plan(db, planned, now)

    def resend(self, household: str, device: str, now: float | None = None) -> list[str]:
        """The device came online: send it again every command it has not confirmed (the
        same message, so a device that has it already drops the copy by its id); one the
        broker dropped (the device had never connected, or its session had expired) reaches
        it now. The ids this worker claimed, to send now."""
        now = time.time() if now is None else now
        outbox = self.outbox
        with self.store.write() as db:
            return [
                r[0]
                for r in db.execute(
                    "UPDATE outbox SET state = 'pending', not_before = ?, claimed_by = ?,"
                    " claim_until = ? WHERE purpose = 'command' AND state = 'sent' AND id IN ("
                    " SELECT id FROM commands WHERE household = ? AND device = ?"
                    " AND state = 'sent') RETURNING id",
                    (now, outbox.worker, now + outbox.claim_s, household, device),
                )
            ]


def _same_dose(db: sqlite3.Connection, household: str, body: dict, besides: str) -> str | None:
    """The id of an active reminder other than `besides` that would ask for the same dose
    at the same times as `body` (protocol/reminder_twins.py: the device's rule too); None:
    there is none."""
    wanted = dose_key_of_add(body)
    for row in db.execute(
        "SELECT id, body FROM reminders WHERE household = ? AND state = 'active' AND id != ?",
        (household, besides),
    ):
        if same_dose(dose_key_of_add(json.loads(row["body"])), wanted):
            return row["id"]
    return None


def _passed(body: ReminderAdd, local_now: dt.datetime) -> bool:
    """A one-off whose time has passed (a date makes a reminder a one-off at `at` on the
    device, whatever else it gives: assistant/schedule.schedule_of): it would refuse it."""
    if body.date is None:
        return False
    day = dt.date.fromisoformat(body.date)
    if day != local_now.date():
        return day < local_now.date()
    hour, minute = (int(part) for part in body.at.split(":"))
    return (hour, minute) <= (local_now.hour, local_now.minute)


def _fold(before: dict | None, type_: str, body: dict) -> dict | None:
    """A reminder ({state, body}, None: never added) after one command that went through,
    as the device applies it (assistant/announcer.py): an add puts the whole reminder (the
    device replaces one of the same id); a change replaces the fields it gives, and a new
    kind of repeat (weekdays, every N hours, a date) replaces the old one; a change or
    removal of a reminder that is not active changes nothing."""
    if type_ == ReminderAdd.TYPE:
        return {"state": "active", "body": body}
    if not _active(before):
        return before
    if type_ == ReminderChange.TYPE:
        given = {k: v for k, v in body.items() if v is not None}
        data = {**before["body"], **given}
        if REPEATS & set(given):
            data = {k: v for k, v in data.items() if k not in REPEATS or k in given}
        return {"state": "active", "body": data}
    return {"state": "removed", "body": before["body"]}


def _active(reminder: dict | None) -> bool:
    return reminder is not None and reminder["state"] == "active"


def _write(
    db: sqlite3.Connection, household: str, reminder_id: str, state: dict | None, now: float
) -> None:
    if state is None:
        db.execute("DELETE FROM reminders WHERE household = ? AND id = ?", (household, reminder_id))
        return
    db.execute(
        "INSERT INTO reminders (household, id, body, state, updated) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (household, id) DO UPDATE SET body = excluded.body,"
        " state = excluded.state, updated = excluded.updated",
        (household, reminder_id, json.dumps(state["body"]), state["state"], now),
    )


def untracked(reminder: dict[str, Any]) -> bool:
    """A medication reminder without the medicine's name (a `listing` entry): the device
    says it once, never asks whether it was taken, and so never reports a miss."""
    kind = reminder.get("kind", "")
    return kind == "medication" and not asked_until_answered(kind, reminder.get("medication"))


def listing(db: sqlite3.Connection, household: str) -> list[dict[str, Any]]:
    """A household's reminders (`state` active, removed, or failed: an add the device
    refused or did not confirm) with the state, type and detail (why it failed) of the last
    command about each."""
    rows = db.execute(
        "SELECT r.id, r.body, r.state, c.state AS command, c.type AS command_type,"
        " c.detail AS command_detail FROM reminders r LEFT JOIN commands c ON c.rowid = ("
        " SELECT l.rowid FROM commands l WHERE l.household = r.household AND l.reminder_id ="
        " r.id ORDER BY l.rowid DESC LIMIT 1) WHERE r.household = ? ORDER BY r.id",
        (household,),
    ).fetchall()
    return [
        {**{k: r[k] for k in ("id", "state", "command", "command_type", "command_detail")},
         **json.loads(r["body"])}
        for r in rows
    ]  # fmt: skip
