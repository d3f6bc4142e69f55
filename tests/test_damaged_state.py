"""A damaged state file (a disk fault, a power cut in the wrong place) must not keep the
device from starting, and so from calling for help; and what it held must not be lost in
silence: the senior hears what was lost, and the family is told so a caregiver can set
the reminders up again.

Real SQLite files damaged on disk, the real device, a real Mosquitto and a real
`family-notify serve` worker with the apps' inboxes."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from assistant.device import Device
from assistant.emergency_check import CHECK_FILE
from assistant.lost_state import LOST_KEYS, lost_stores, spoken
from assistant.outbox import STATE_DB_NAME
from assistant.reminders import REMINDERS_FILE, Reminder, ReminderStore
from assistant.schedule import Schedule
from assistant.unanswered_alerts import ALERTS_FILE, UNCONFIRMED_FILE
from protocol import MemberAlert, Message, WellnessAlert
from protocol.sqlite import open_or_set_aside
from services.family.alerts import wording
from services.family.households import Household
from tests.broker import Mosquitto
from tests.device_process import _wait as wait_for
from tests.family_process import D, FamilyWorker, H, apps_standin, setup_household, write_config
from tests.test_device import device_config

ALL_FILES = (REMINDERS_FILE, CHECK_FILE, STATE_DB_NAME, ALERTS_FILE, UNCONFIRMED_FILE)
GARBAGE = b"this is not a database " * 200


def _table(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)")


def test_a_healthy_store_is_opened_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    db, aside = open_or_set_aside(path, _table)
    db.execute("INSERT INTO t (v) VALUES ('kept')")
    db.close()
    db, aside = open_or_set_aside(path, _table)
    assert aside is None
    assert db.execute("SELECT v FROM t").fetchall() == [("kept",)]
    db.close()
    assert not list(tmp_path.glob("*.unreadable-*"))


def test_a_file_that_is_no_database_is_moved_aside_and_a_new_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_bytes(GARBAGE)
    with caplog.at_level(logging.ERROR):
        db, aside = open_or_set_aside(path, _table)
    assert aside is not None and aside.read_bytes() == GARBAGE  # kept for whoever looks
    assert aside.name.startswith("s.sqlite3.unreadable-")
    assert "s.sqlite3 is damaged" in caplog.text and aside.name in caplog.text
    db.execute("INSERT INTO t (v) VALUES ('new')")  # prepared, and in use
    db.close()


def test_a_database_damaged_inside_is_found_by_the_quick_check(tmp_path: Path) -> None:
    """The header is intact, so SQLite opens it and reads its first page; the damage is
    only where the rows are. Without the check the device would start on it and fail later,
    at a reminder or an alert."""
    path = tmp_path / "s.sqlite3"
    db = sqlite3.connect(path)
    db.execute("PRAGMA page_size=1024")
    _table(db)
    db.executemany("INSERT INTO t (v) VALUES (?)", [("x" * 200,)] * 200)
    db.commit()
    db.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 20 * 1024
    data[5 * 1024 : 15 * 1024] = bytes(range(256)) * 40  # pages 6 to 15 overwritten
    path.write_bytes(bytes(data))
    db, aside = open_or_set_aside(path, _table)
    assert aside is not None  # as it was (but the header's journal mode, set on opening)
    assert aside.read_bytes()[1024:] == bytes(data[1024:])
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    db.close()


def test_a_store_that_cannot_be_opened_is_not_moved_aside(tmp_path: Path) -> None:
    """A fault that is not damage (here no permission to open it: a directory in its place)
    raises as it is: the data may be fine and must not be pushed out of use."""
    path = tmp_path / "s.sqlite3"
    path.mkdir()
    with pytest.raises(sqlite3.OperationalError):
        open_or_set_aside(path, _table)
    assert path.is_dir() and not list(tmp_path.glob("*.unreadable-*"))


def test_damaged_reminders_are_set_aside_and_the_store_works(tmp_path: Path) -> None:
    path = tmp_path / REMINDERS_FILE
    path.write_bytes(GARBAGE)
    store = ReminderStore(path)
    try:
        assert store.set_aside is not None
        reminder = Reminder("r1", "medication", "Take your aspirin", Schedule("daily", "08:00"))
        store.put(reminder)
        assert [r.id for r in store.all()] == ["r1"]
    finally:
        store.close()


def test_what_the_senior_hears() -> None:
    assert spoken(["reminders"], family_told=True) == (
        "Something went wrong with my memory, so I started afresh. I have lost your "
        "reminders. Your reminders need to be set up again. I am letting your family know."
    )
    words = spoken(["outbox", "emergency_check"], family_told=False)
    assert "messages I had not sent yet and a question I had asked you" in words
    assert "If you need help, please ask for it again." in words
    assert "family" not in words  # not promised when it cannot be sent
    with pytest.raises(ValueError, match="unknown stores"):
        lost_stores({"calendar": Path("calendar.sqlite3.unreadable-1")})
    assert lost_stores({key: None for key in LOST_KEYS}) == []


def test_the_family_reads_what_was_lost_in_their_language() -> None:
    household = Household(H, "Mum", (D,))
    body = WellnessAlert(concern="device", severity="high", detail="reminders,outbox")
    english = wording(body, "wellness", household, "en")
    assert english == (
        "Mum's care assistant found part of its memory damaged and started afresh. It lost "
        "its reminders and messages it had not sent yet. Please set up the reminders again. "
        "Please call Mum to make sure they do not need help."
    )
    german = wording(body, "wellness", household, "de")
    assert "Verloren: seine Erinnerungen und noch nicht gesendete Nachrichten." in german
    calm = wording(WellnessAlert(concern="device", severity="medium", detail="reminders"),
                   "wellness", household, "en")  # fmt: skip
    assert "Please call" not in calm
    # a key this service does not know (a newer device) is still reported, with the call
    odd = wording(WellnessAlert(concern="device", severity="medium", detail="photos"),
                  "wellness", household, "en")  # fmt: skip
    assert "It lost some of what it kept." in odd and "Please call Mum" in odd


def told(handled: list[Message], alert_id: str) -> dict[str, str]:
    """member device id → the text their app got for the alert."""
    return {
        m.device: m.body.text
        for m in handled
        if isinstance(m.body, MemberAlert) and m.body.alert_id == alert_id
    }


def told_any(handled: list[Message]) -> set[str]:
    return {m.body.alert_id for m in handled if isinstance(m.body, MemberAlert)}


def test_every_state_file_damaged_the_device_starts_says_so_and_the_family_is_told(
    tmp_path: Path, broker: Mosquitto
) -> None:
    family = write_config(tmp_path / "family", broker)
    setup_household(family)
    state = tmp_path / "state"
    state.mkdir()
    for name in ALL_FILES:
        (state / name).write_bytes(GARBAGE)
    config = device_config(broker, state, H, D)
    with FamilyWorker(family), apps_standin(broker) as apps, Device(config) as device:
        assert device.link is not None and device.link.wait_connected(10)
        (words,) = device.announcer.take()
        for lost in ("your reminders", "messages I had not sent yet", "calls for help still",
                     "messages to your family", "a question I had asked you"):  # fmt: skip
            assert lost in words
        assert "please ask for it again" in words and "letting your family know" in words
        # the notice is confirmed as stored (not sent again), and the family reads it
        assert device.unconfirmed is not None
        assert wait_for(lambda: len(device.unconfirmed) == 0, 20), "never confirmed"
        assert apps.wait_until(lambda: told_any(apps.handled), 20)
        (notice_id,) = told_any(apps.handled)
        assert apps.wait_until(lambda: {"anna", "ben"} <= set(told(apps.handled, notice_id)), 20)
        texts = told(apps.handled, notice_id)
        assert "It lost its reminders, messages it had not sent yet" in texts["anna"]
        assert "Please call Mum" in texts["anna"]
        assert "Erinnerungen" in texts["ben"]
        # the device works on its new files: a reminder is kept
        device.reminders.put(
            Reminder("r1", "medication", "Take your aspirin", Schedule("daily", "08:00"))
        )
    for name in ALL_FILES:
        (aside,) = state.glob(f"{name}.unreadable-*")
        assert aside.read_bytes() == GARBAGE
    with Device(config) as device:  # the new files are sound: nothing more to tell
        assert device.lost == []
        assert device.announcer.take() == []
        assert "r1" in [r.id for r in device.reminders.all()]
