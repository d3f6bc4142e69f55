"""Households: the senior's devices and up to eight members, each with a role, contact
channels in escalation order, quiet hours and a language. Checked here, stored in `Store`."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from protocol import ServiceReason, topics
from services.family.store import Store
from services.family.texts import LANGUAGES

MAX_MEMBERS = 8
ROLES = ("senior", "family", "caregiver")
CHANNELS = ("sms", "phone")  # beyond the MQTT inbox every member has
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{2,30}")
_QUIET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


class HouseholdError(ValueError):
    """A refused change or lookup; `reason` is a ServiceReason or `bad_input`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


BAD_INPUT = "bad_input"


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    role: str = "family"
    relation: str | None = None  # "daughter"
    contacts: tuple[str, ...] = ()  # "sms:+49...", "phone:+49...", in escalation order
    quiet: str | None = None  # "22:00-07:00", the household's local time
    language: str = "en"

    @property
    def label(self) -> str:
        """Who answered, as the device tells the senior: "your daughter", or the name."""
        return f"your {self.relation}" if self.relation else self.name

    def check(self) -> None:
        if not topics.valid_id(self.id):
            raise HouseholdError(BAD_INPUT, "member id: letters, digits, _ . - (up to 64)")
        if not self.name.strip() or len(self.name) > 100:
            raise HouseholdError(BAD_INPUT, "member name: 1 to 100 characters")
        if self.role not in ROLES:
            raise HouseholdError(BAD_INPUT, f"role: one of {', '.join(ROLES)}")
        if self.relation is not None and not (0 < len(self.relation) <= 50):
            raise HouseholdError(BAD_INPUT, "relation: 1 to 50 characters")
        for contact in self.contacts:
            channel, _, address = contact.partition(":")
            if channel not in CHANNELS or not _PHONE.fullmatch(address):
                raise HouseholdError(BAD_INPUT, "contact: sms:NUMBER or phone:NUMBER")
        if self.quiet is not None and not _QUIET.fullmatch(self.quiet):
            raise HouseholdError(BAD_INPUT, "quiet hours: HH:MM-HH:MM")
        if self.language not in LANGUAGES:
            raise HouseholdError(BAD_INPUT, f"language: one of {', '.join(LANGUAGES)}")

    def quiet_until(self, now: float, timezone: str) -> float | None:
        """When this member's quiet hours end, if `now` is within them; else None."""
        if not self.quiet:
            return None
        match = _QUIET.fullmatch(self.quiet)
        assert match is not None
        start = int(match[1]) * 60 + int(match[2])
        end = int(match[3]) * 60 + int(match[4])
        local = dt.datetime.fromtimestamp(now, ZoneInfo(timezone))
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start <= end else (minute >= start or minute < end)
        if start == end or not inside:
            return None
        ends = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
        if ends <= local:
            ends += dt.timedelta(days=1)
        return ends.timestamp()


@dataclass(frozen=True)
class Household:
    id: str
    senior: str  # how the family calls the senior: "Mum", "Grandpa Joe"
    devices: tuple[str, ...] = ()
    timezone: str = "UTC"
    emergency_number: str | None = None
    members: tuple[Member, ...] = field(default=())

    def check(self) -> None:
        if not topics.valid_id(self.id):
            raise HouseholdError(BAD_INPUT, "household id: letters, digits, _ . - (up to 64)")
        if not self.senior.strip() or len(self.senior) > 100:
            raise HouseholdError(BAD_INPUT, "senior: 1 to 100 characters")
        if not self.devices or not all(topics.valid_id(d) for d in self.devices):
            raise HouseholdError(BAD_INPUT, "a household needs a device id (letters, digits...)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise HouseholdError(BAD_INPUT, "timezone: an IANA name like Europe/Berlin") from None
        if self.emergency_number is not None and not _PHONE.fullmatch(self.emergency_number):
            raise HouseholdError(BAD_INPUT, "emergency number: a phone number")

    @property
    def others(self) -> tuple[Member, ...]:
        """Everyone the service tells things: the members but the senior."""
        return tuple(m for m in self.members if m.role != "senior")

    def member(self, member_id: str) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    @property
    def device(self) -> str:
        """The device commands go to (the first one registered)."""
        return self.devices[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- reading ----------------------------------------------------------------------------


def get(db: sqlite3.Connection, household_id: str) -> Household | None:
    row = db.execute("SELECT * FROM households WHERE id = ?", (household_id,)).fetchone()
    if row is None:
        return None
    devices = db.execute(
        "SELECT id FROM devices WHERE household = ? ORDER BY rowid", (household_id,)
    ).fetchall()
    members = db.execute(
        "SELECT * FROM members WHERE household = ? ORDER BY position", (household_id,)
    ).fetchall()
    return Household(
        id=row["id"],
        senior=row["senior"],
        devices=tuple(d["id"] for d in devices),
        timezone=row["timezone"],
        emergency_number=row["emergency_number"],
        members=tuple(_member(m) for m in members),
    )


def require(db: sqlite3.Connection, household_id: str) -> Household:
    household = get(db, household_id)
    if household is None:
        raise HouseholdError(ServiceReason.UNKNOWN_HOUSEHOLD, "no household of that id here")
    return household


def require_member(household: Household, member_id: str) -> Member:
    member = household.member(member_id)
    if member is None:
        raise HouseholdError(ServiceReason.NOT_A_MEMBER, "not a member of this household")
    return member


def ids(db: sqlite3.Connection) -> list[str]:
    return [r["id"] for r in db.execute("SELECT id FROM households ORDER BY id")]


def _member(row: sqlite3.Row) -> Member:
    return Member(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        relation=row["relation"],
        contacts=tuple(json.loads(row["contacts"])),
        quiet=row["quiet"],
        language=row["language"],
    )


# --- changing -----------------------------------------------------------------------------


def add(store: Store, household: Household) -> None:
    """A new household with its devices and members, in one transaction."""
    household.check()
    for member in household.members:
        member.check()
    member_ids = [m.id for m in household.members]
    if len(set(member_ids)) != len(member_ids):
        raise HouseholdError(BAD_INPUT, "member ids must differ")
    if len(member_ids) > MAX_MEMBERS:
        raise HouseholdError(BAD_INPUT, f"a household has at most {MAX_MEMBERS} members")
    with store.write() as db:
        if get(db, household.id) is not None:
            raise HouseholdError(BAD_INPUT, f"household {household.id} exists already")
        db.execute(
            "INSERT INTO households (id, senior, timezone, emergency_number, created)"
            " VALUES (?, ?, ?, ?, ?)",
            (household.id, household.senior, household.timezone, household.emergency_number,
             time.time()),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO devices (household, id) VALUES (?, ?)",
            [(household.id, d) for d in dict.fromkeys(household.devices)],
        )
        for position, member in enumerate(household.members, 1):
            _write_member(db, household.id, member, position)


def change(store: Store, household_id: str, **changes: Any) -> Household:
    """Change senior, timezone, emergency_number or devices."""
    with store.write() as db:
        household = replace(require(db, household_id), **changes)
        household.check()
        db.execute(
            "UPDATE households SET senior = ?, timezone = ?, emergency_number = ? WHERE id = ?",
            (household.senior, household.timezone, household.emergency_number, household_id),
        )
        if "devices" in changes:
            db.execute("DELETE FROM devices WHERE household = ?", (household_id,))
            db.executemany(
                "INSERT INTO devices (household, id) VALUES (?, ?)",
                [(household_id, d) for d in dict.fromkeys(household.devices)],
            )
    return household


def remove(store: Store, household_id: str) -> None:
    with store.write() as db:
        require(db, household_id)
        db.execute("DELETE FROM households WHERE id = ?", (household_id,))


def add_member(store: Store, household_id: str, member: Member) -> None:
    member.check()
    with store.write() as db:
        household = require(db, household_id)
        if household.member(member.id) is not None:
            raise HouseholdError(BAD_INPUT, f"member {member.id} exists already")
        if len(household.members) >= MAX_MEMBERS:
            raise HouseholdError(BAD_INPUT, f"a household has at most {MAX_MEMBERS} members")
        position = db.execute(
            "SELECT COALESCE(MAX(position), 0) + 1 FROM members WHERE household = ?",
            (household_id,),
        ).fetchone()[0]
        _write_member(db, household_id, member, position)


def change_member(store: Store, household_id: str, member_id: str, **changes: Any) -> Member:
    with store.write() as db:
        member = replace(require_member(require(db, household_id), member_id), **changes)
        member.check()
        db.execute(
            "UPDATE members SET name = ?, relation = ?, role = ?, contacts = ?, quiet = ?,"
            " language = ? WHERE household = ? AND id = ?",
            (member.name, member.relation, member.role, json.dumps(list(member.contacts)),
             member.quiet, member.language, household_id, member_id),
        )  # fmt: skip
    return member


def remove_member(store: Store, household_id: str, member_id: str) -> None:
    """Without what was waiting to be sent to them: see `Alerts.remove_member`, which also
    hands their open alerts to the members who remain."""
    with store.write() as db:
        remove_member_in(db, household_id, member_id)


def remove_member_in(db: sqlite3.Connection, household_id: str, member_id: str) -> None:
    """Remove a member in the caller's transaction, and cancel what waits to be sent to
    them (an alert's notice held for a grace period or their quiet hours must not reach
    someone no longer of the household)."""
    require_member(require(db, household_id), member_id)
    db.execute("DELETE FROM members WHERE household = ? AND id = ?", (household_id, member_id))
    db.execute(  # not the device's copy of an answer they gave (`ack`: to the device)
        "UPDATE outbox SET state = 'cancelled' WHERE household = ? AND member = ?"
        " AND state = 'pending' AND purpose != 'ack'",
        (household_id, member_id),
    )


def _write_member(db: sqlite3.Connection, household_id: str, member: Member, position: int) -> None:
    db.execute(
        "INSERT INTO members (household, id, name, relation, role, contacts, quiet, language,"
        " position) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (household_id, member.id, member.name, member.relation, member.role,
         json.dumps(list(member.contacts)), member.quiet, member.language, position),
    )  # fmt: skip
