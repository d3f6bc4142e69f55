"""The roster: doctors, their department, hours, languages and state, in the store.

Managed by `doctor-connect doctor add/list/set-status/remove` and by the doctors' own
`doctor.status` messages; the matcher works on the `Doctor` objects built from it.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from protocol import topics
from services.doctor_connect.departments import (
    GENERAL_PRACTICE,
    UnknownDepartment,
    department_id,
)
from services.doctor_connect.hours import AROUND_THE_CLOCK, WorkingHours
from services.doctor_connect.matcher import STATES, Doctor
from services.doctor_connect.store import Store


class RosterError(ValueError):
    """A doctor that cannot be added or changed as asked (the text says why)."""


@dataclass(frozen=True)
class NewDoctor:
    id: str
    name: str
    department: str
    hours: str | None = None  # None: around the clock for GPs, mon-fri 08:00-16:00 else
    languages: tuple[str, ...] = ("en",)
    phone: str | None = None
    state: str = "offline"


def build(new: NewDoctor) -> Doctor:
    """Check a new doctor's fields and build it (RosterError says what is wrong)."""
    if not topics.valid_id(new.id):
        raise RosterError("a doctor id is 1-64 letters, digits, '_', '.', '-'")
    try:
        department = department_id(new.department)
    except UnknownDepartment as exc:
        raise RosterError(str(exc)) from None
    default = AROUND_THE_CLOCK if department == GENERAL_PRACTICE else "mon-fri 08:00-16:00"
    try:
        hours = WorkingHours.parse(new.hours or default)
    except ValueError as exc:
        raise RosterError(str(exc)) from None
    if new.state not in STATES:
        raise RosterError(f"state is one of {', '.join(STATES)}")
    languages = frozenset(lang.strip().lower() for lang in new.languages if lang.strip())
    return Doctor(
        id=new.id,
        name=new.name.strip() or new.id,
        department=department,
        hours=hours,
        languages=languages or frozenset({"en"}),
        state=new.state,
        phone=new.phone,
    )


def save(store: Store, doctor: Doctor) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT INTO doctors (id, name, department, hours, languages, phone, state, served,"
            " updated) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET"
            " name=excluded.name, department=excluded.department, hours=excluded.hours,"
            " languages=excluded.languages, phone=excluded.phone, state=excluded.state,"
            " updated=excluded.updated",
            (
                doctor.id,
                doctor.name,
                doctor.department,
                doctor.hours.text,
                ",".join(sorted(doctor.languages)),
                doctor.phone,
                doctor.state,
                doctor.served,
                time.time(),
            ),
        )


def set_state(store: Store, doctor_id: str, state: str) -> None:
    if state not in STATES:
        raise RosterError(f"state is one of {', '.join(STATES)}")
    with store.transaction() as db:
        cursor = db.execute(
            "UPDATE doctors SET state = ?, updated = ? WHERE id = ?",
            (state, time.time(), doctor_id),
        )
        if cursor.rowcount == 0:
            raise RosterError(f"no doctor {doctor_id!r}")


def set_served(store: Store, doctor: Doctor) -> None:
    with store.transaction() as db:
        db.execute("UPDATE doctors SET served = ? WHERE id = ?", (doctor.served, doctor.id))


def set_passed(store: Store, doctor: Doctor) -> None:
    """Keep when a doctor who let a consultation pass is asked again, and how many in a
    row: a restart of the service must not offer the next one to them first again."""
    until = None if doctor.passed_until == dt.datetime.min else doctor.passed_until.isoformat()
    with store.transaction() as db:
        db.execute(
            "UPDATE doctors SET passed_until = ?, missed = ? WHERE id = ?",
            (until, doctor.missed, doctor.id),
        )


def remove(store: Store, doctor_id: str) -> None:
    with store.transaction() as db:
        if db.execute("DELETE FROM doctors WHERE id = ?", (doctor_id,)).rowcount == 0:
            raise RosterError(f"no doctor {doctor_id!r}")


def load(store: Store) -> list[Doctor]:
    doctors = []
    for row in store.query("SELECT * FROM doctors ORDER BY id"):
        doctors.append(
            Doctor(
                id=row["id"],
                name=row["name"],
                department=row["department"],
                hours=WorkingHours.parse(row["hours"]),
                languages=frozenset(row["languages"].split(",")),
                state=row["state"],
                phone=row["phone"],
                served=row["served"],
                passed_until=(
                    dt.datetime.fromisoformat(row["passed_until"])
                    if row["passed_until"]
                    else dt.datetime.min
                ),
                missed=row["missed"],
            )
        )
    return doctors
