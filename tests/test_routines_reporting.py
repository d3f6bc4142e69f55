"""A missed reminder or an inactivity alert whose report cannot be stored for sending is
not lost: it is noted as told only once the link's outbox has it, so the next tick (or
the next start) stores it, exactly once; the failure is logged with its traceback and the
listening loop goes on.

Real SQLite files in tmp_path: the reminders store and the link's outbox (a `Link` that is
never started, so nothing leaves it). A full disk cannot be produced here, so a publish
that raises on chosen calls stands in for the outbox's `put` failing.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from assistant.config import MqttConfig, SpeechOutputConfig
from assistant.endpoint import frames_of
from assistant.link import Link
from assistant.loop import Assistant
from assistant.reminders import Reminder, ReminderPolicy, ReminderStore
from assistant.routines import FAILURE_LOG_EVERY, CareRoutines
from assistant.schedule import DAILY, Schedule
from assistant.speech.tts import SpeechSynthesizer
from assistant.voice import Voice, WavRecorder
from protocol import InactivityAlert, MissedMedicationAlert, ReminderMissed
from tests.clock import Clock

BERLIN = ZoneInfo("Europe/Berlin")
DAY = dt.datetime(2026, 11, 23, 7, 0, tzinfo=BERLIN)
MISS_REPORT = [ReminderMissed.TYPE, MissedMedicationAlert.TYPE]


class FlakyPublish:
    """The link's publish, raising on the calls numbered in `failing` (1 is the first) as
    the outbox's put does when the disk is full."""

    def __init__(self, link: Link, failing: set[int]) -> None:
        self.link = link
        self.failing = failing
        self.calls = 0

    def __call__(self, body: Any) -> Any:
        self.calls += 1
        if self.calls in self.failing:
            raise sqlite3.OperationalError("database or disk is full")
        return self.link.publish(body)


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    link = Link(MqttConfig(port=1), household="h1", device="d1", state_dir=tmp_path / "state")
    yield link
    link.close()


def stored(link: Link) -> list[str]:
    """The types in the outbox, in the order they were stored."""
    return [row.type for row in sorted(link.outbox.pending(100), key=lambda row: row.seq)]


def open_store(tmp_path: Path, repeats: int = 3) -> ReminderStore:
    return ReminderStore(
        tmp_path / "reminders.sqlite3", tz=BERLIN, policy=ReminderPolicy(repeats=repeats)
    )


def add_metformin(store: ReminderStore) -> None:
    store.put(
        Reminder("metformin-am", "medication", "take your metformin", Schedule(DAILY, "08:00"),
                 medication="metformin"),
        DAY,
    )  # fmt: skip


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.levelno == logging.ERROR and r.name == "assistant.routines"
    ]


def miss(routines: CareRoutines, how: str) -> tuple[dt.datetime, list[str]]:
    """Make the 08:00 metformin a miss; (when it was recorded, what was said then)."""
    if how == "device_off":  # the device comes back long after it was due
        now = DAY.replace(hour=12)
        return now, [p.text for p in routines.tick(now)]
    now = DAY.replace(hour=8)  # asked once (repeats=1), then no answer
    [asked] = routines.tick(now)
    assert asked.expects == "reminder"
    now += dt.timedelta(minutes=10)
    return now, [p.text for p in routines.tick(now)]


@pytest.mark.parametrize("how", ["device_off", "no_answer"])
def test_a_miss_whose_report_fails_is_sent_at_the_next_tick(
    tmp_path: Path, link: Link, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    store = open_store(tmp_path, repeats=1)
    add_metformin(store)
    publish = FlakyPublish(link, failing={1})
    routines = CareRoutines(store, publish)
    try:
        caplog.set_level(logging.INFO, logger="assistant.routines")
        now, said = miss(routines, how)
        # the senior is still told, and the miss is recorded, but nothing is stored yet
        assert len(said) == 1 and said[0].startswith(("I have let", "While I was switched off"))
        assert store.state_of("metformin-am", "2026-11-23T08:00") == "missed"
        assert stored(link) == []
        [error] = errors(caplog)
        assert "missed reminder metformin-am" in error.getMessage()
        assert error.exc_info is not None  # with the traceback
        assert "database or disk is full" in caplog.text

        assert routines.tick(now + dt.timedelta(seconds=0.5)) == []  # nothing said twice
        assert stored(link) == MISS_REPORT
        assert "stored for sending after all" in caplog.text
        for minutes in (1, 10, 60):  # and never again
            routines.tick(now + dt.timedelta(minutes=minutes))
        assert stored(link) == MISS_REPORT
        assert publish.calls == 3
    finally:
        store.close()


def test_a_report_half_stored_sends_only_the_rest(tmp_path: Path, link: Link) -> None:
    """The event went into the outbox, the alert did not: the next tick stores the alert
    alone, so the family service does not get the event twice."""
    store = open_store(tmp_path)
    add_metformin(store)
    publish = FlakyPublish(link, failing={2})
    routines = CareRoutines(store, publish)
    try:
        now, _ = miss(routines, "device_off")
        assert stored(link) == [ReminderMissed.TYPE]
        routines.tick(now + dt.timedelta(seconds=0.5))
        routines.tick(now + dt.timedelta(seconds=1))
        assert stored(link) == MISS_REPORT
        assert publish.calls == 3
        [alert] = [row for row in link.outbox.pending(100) if row.type == "alert.missed_medication"]
        assert b'"medication":"metformin"' in alert.payload
    finally:
        store.close()


def test_a_miss_not_reported_before_a_restart_is_reported_after_it(
    tmp_path: Path, link: Link
) -> None:
    """The report failed and the device stopped: the miss is on disk as owed."""
    store = open_store(tmp_path)
    add_metformin(store)
    now, said = miss(CareRoutines(store, FlakyPublish(link, failing={1})), "device_off")
    assert said and stored(link) == []
    store.close()

    store = open_store(tmp_path)
    try:
        routines = CareRoutines(store, link.publish)
        assert routines.tick(now + dt.timedelta(minutes=1)) == []
        assert stored(link) == MISS_REPORT
        routines.tick(now + dt.timedelta(minutes=2))
        assert stored(link) == MISS_REPORT
    finally:
        store.close()


def test_a_miss_answered_before_its_report_was_stored_is_not_reported(
    tmp_path: Path, link: Link
) -> None:
    """ "I took it" after the miss: the family hears of the dose taken, not of a miss that
    would then stay open at the service."""
    store = open_store(tmp_path, repeats=1)
    add_metformin(store)
    routines = CareRoutines(store, FlakyPublish(link, failing={1}))
    try:
        now, _ = miss(routines, "no_answer")
        assert routines.taken(now + dt.timedelta(seconds=0.2)) is not None
        routines.tick(now + dt.timedelta(seconds=0.5))
        assert stored(link) == ["event.reminder.taken"]
    finally:
        store.close()


def test_an_inactivity_alert_that_fails_is_sent_at_the_next_tick(
    tmp_path: Path, link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path)
    publish = FlakyPublish(link, failing={1, 2})
    routines = CareRoutines(store, publish, inactivity=dt.timedelta(hours=12))
    try:
        routines.tick(DAY)  # the quiet period starts
        quiet = DAY + dt.timedelta(hours=12, minutes=1)
        with caplog.at_level(logging.DEBUG, logger="assistant.routines"):
            routines.tick(quiet)
            routines.tick(quiet + dt.timedelta(seconds=0.5))  # fails again: not logged again
        assert stored(link) == []
        [error] = errors(caplog)
        assert "inactivity alert" in error.getMessage() and error.exc_info is not None

        routines.tick(quiet + dt.timedelta(seconds=1))
        assert stored(link) == [InactivityAlert.TYPE]
        for hours in (1, 6, 11):  # one alert per quiet period
            routines.tick(quiet + dt.timedelta(hours=hours))
        assert stored(link) == [InactivityAlert.TYPE]
        assert publish.calls == 3
    finally:
        store.close()


def test_a_report_failing_for_long_is_logged_again_now_and_then(
    tmp_path: Path, link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(tmp_path)
    add_metformin(store)
    routines = CareRoutines(store, FlakyPublish(link, failing=set(range(1, 1000))))
    try:
        with caplog.at_level(logging.INFO):
            now, _ = miss(routines, "device_off")
            for step in range(1, 20):  # a tick every half second: logged once
                routines.tick(now + dt.timedelta(seconds=step / 2))
            assert len(errors(caplog)) == 1
            routines.tick(now + FAILURE_LOG_EVERY)
            assert len(errors(caplog)) == 2
        assert stored(link) == []
    finally:
        store.close()


def test_misses_recorded_by_an_older_version_are_not_reported_again(
    tmp_path: Path, link: Link
) -> None:
    """A store from before misses were tracked until reported: its misses were reported
    when they were found."""
    store = open_store(tmp_path)
    add_metformin(store)
    store.close()
    db = sqlite3.connect(tmp_path / "reminders.sqlite3")
    db.executescript(
        "DROP TABLE occurrences;"
        "CREATE TABLE occurrences (reminder_id TEXT NOT NULL, key TEXT NOT NULL,"
        " due TEXT NOT NULL, state TEXT NOT NULL, asked INTEGER NOT NULL, next_at TEXT,"
        " snoozes INTEGER NOT NULL DEFAULT 0, answered_at TEXT, PRIMARY KEY (reminder_id, key));"
        "INSERT INTO occurrences VALUES"
        " ('metformin-am', '2026-11-23T08:00', '2026-11-23T07:00:00+00:00', 'missed', 3,"
        " NULL, 0, NULL);"
    )
    db.close()
    store = open_store(tmp_path)
    try:
        routines = CareRoutines(store, link.publish)
        assert routines.tick(DAY.replace(hour=12)) == []
        assert stored(link) == []
        assert store.state_of("metformin-am", "2026-11-23T08:00") == "missed"
    finally:
        store.close()


def test_the_loop_keeps_listening_when_a_report_fails(
    tmp_path: Path, link: Link, engine, sphinx_recognizer, caplog: pytest.LogCaptureFixture
) -> None:
    """The miss is found at the first pause, its report fails there, and the loop runs on
    to the next pause, where it is stored."""
    store = open_store(tmp_path)
    add_metformin(store)
    clock = Clock(DAY.replace(hour=12))  # back long after the 08:00 dose
    routines = CareRoutines(store, FlakyPublish(link, failing={1}))
    said: list[str] = []
    assistant = Assistant(
        engine,
        Voice(SpeechSynthesizer(SpeechOutputConfig()), WavRecorder(tmp_path / "said.wav")),
        recognizer=sphinx_recognizer,
        clock=clock,
        routines=routines,
        on_say=said.append,
        chime=False,
    )
    quiet = list(frames_of(np.zeros(16000 * 2, np.int16)))  # two seconds: four pauses
    taken = 0

    def frames() -> Iterator[bytes]:
        nonlocal taken
        for frame in quiet:
            clock.advance(seconds=0.03)
            taken += 1
            yield frame

    try:
        with caplog.at_level(logging.INFO):
            turns = list(assistant.listen(frames(), button=lambda: False))
        assert turns == [] and taken == len(quiet)  # all heard
        assert len(said) == 1 and said[0].startswith("While I was switched off")
        assert len(errors(caplog)) == 1
        assert stored(link) == MISS_REPORT
    finally:
        store.close()


def test_i_took_it_is_recorded_when_its_news_cannot_be_stored(
    tmp_path: Path, link: Link, caplog: pytest.LogCaptureFixture
) -> None:
    """'I took it' answers the reminder even when the outbox cannot store the news for the
    family (it used to raise out of the dialog and end the listening loop)."""
    store = open_store(tmp_path, repeats=2)
    add_metformin(store)
    routines = CareRoutines(store, FlakyPublish(link, failing={1}))
    try:
        now = DAY.replace(hour=8)
        [asked] = routines.tick(now)
        assert asked.expects == "reminder"
        due = routines.taken(now + dt.timedelta(minutes=1))
        assert due is not None and due.reminder.id == "metformin-am"
        assert store.state_of("metformin-am", "2026-11-23T08:00") == "taken"
        [error] = errors(caplog)
        assert "ReminderTaken could not be stored" in error.getMessage() and error.exc_info
        assert stored(link) == []
        routines.tick(now + dt.timedelta(hours=2))  # answered: never reported missed
        assert stored(link) == []
    finally:
        store.close()
