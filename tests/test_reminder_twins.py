"""The device and family-notify take the same reminders for twins (one dose asked twice):
each pair below is set up on a real reminder store of the device and through the family
service's caregiver request on its real SQLite file, and both must give the same answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from assistant.reminders import Reminder, ReminderStore
from assistant.schedule import schedule_of
from protocol import ReminderAdd
from services.family import households
from services.family.households import HouseholdError
from services.family.outbox import Outbox
from services.family.reminders import Reminders
from services.family.store import Store
from tests.test_family_commands import HOUSEHOLD, H, Recording, answer, ask

FIRST = dict(reminder_id="first", kind="medication", text="Morning pills", at="08:00",
             medication="Ramipril", dose="5 mg", days=["mon", "thu"])  # fmt: skip
PAIRS = [
    # (what the second changes, twins?)
    (dict(days=["thu", "mon"], medication="RAMIPRIL "), True),
    (dict(dose=None), True),  # a dose on one only does not tell them apart
    (dict(text="Ramipril", medication=None), True),  # the words are the medicine's name
    (dict(dose="10 mg"), False),
    (dict(at="09:00"), False),
    (dict(medication="Aspirin"), False),
    (dict(kind="other"), False),
    (dict(days=["mon"]), False),
]
EVERY_DAY = dict(days=None)
SEVEN_DAYS = dict(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
DAY = (dt.date.today() + dt.timedelta(days=30)).isoformat()
ONE_OFF = dict(date=DAY, days=None)
ONE_OFF_WITH_DAYS = dict(date=DAY, days=["mon"])  # the date decides: a one-off
PAIRS_OF_TIMES = [
    (EVERY_DAY, SEVEN_DAYS, True),
    (ONE_OFF, ONE_OFF_WITH_DAYS, True),
    (ONE_OFF, EVERY_DAY, False),
    (dict(every_hours=4, days=None), dict(every_hours=4, days=["mon"]), True),
    (dict(every_hours=4, days=None), dict(every_hours=6, days=None), False),
]


def as_device_keeps(body: ReminderAdd) -> Reminder:
    """A caregiver's add as the device stores it (assistant/announcer.py)."""
    schedule = schedule_of(body.at, body.days, body.every_hours, body.date)
    return Reminder(body.reminder_id, body.kind, body.text, schedule, medication=body.medication,
                    dose=body.dose, source="caregiver")  # fmt: skip


def device_twins(tmp_path: Path, first: ReminderAdd, second: ReminderAdd) -> bool:
    store = ReminderStore(tmp_path / "device" / "reminders.sqlite3")
    try:
        store.put(as_device_keeps(first))
        return bool(store.copies_of(as_device_keeps(second)))
    finally:
        store.close()


def service_twins(tmp_path: Path, first: ReminderAdd, second: ReminderAdd) -> bool:
    store = Store(tmp_path / "family.sqlite3")
    try:
        households.add(store, HOUSEHOLD)
        service = Reminders(store, Outbox(store, {"mqtt": Recording()}, "w1"))
        answer(service, ask(service, first), first, ok=True)
        try:
            service.request(second, H, "carla")
        except HouseholdError as refused:
            assert refused.reason == "reminder_exists", refused
            return True
        return False
    finally:
        store.close()


@pytest.mark.parametrize(("changes", "twins"), PAIRS)
def test_both_sides_agree_on_what_is_the_same_dose(tmp_path, changes, twins) -> None:
    first = ReminderAdd(**FIRST)
    second = ReminderAdd(**{**FIRST, "reminder_id": "second", **changes})
    assert device_twins(tmp_path, first, second) is twins
    assert service_twins(tmp_path, first, second) is twins


@pytest.mark.parametrize(("one", "other", "twins"), PAIRS_OF_TIMES)
def test_both_sides_compare_times_as_the_device_keeps_them(tmp_path, one, other, twins) -> None:
    first = ReminderAdd(**{**FIRST, **one})
    second = ReminderAdd(**{**FIRST, "reminder_id": "second", **other})
    assert device_twins(tmp_path, first, second) is twins
    assert service_twins(tmp_path, first, second) is twins
