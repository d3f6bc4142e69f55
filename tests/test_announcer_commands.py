"""A caregiver's commands on the device: what is changed is what was asked, and whatever
goes wrong is reported back (the caregiver never waits on "sent" for ever)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from assistant.announcer import Announcer
from assistant.reminders import Reminder, ReminderStore
from assistant.schedule import DAYS, HOURS, local_moment, schedule_of, time_zone
from protocol import ReminderAdd, ReminderChange, ReminderRemove, Volume, create

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 23, 7, 0, tzinfo=BERLIN)


@pytest.fixture
def device(tmp_path: Path):
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    done: list[tuple[str, bool, str | None]] = []
    announcer = Announcer(
        store, on_done=lambda m, ok, why: done.append((m.type, ok, why)), clock=lambda: NOW
    )
    yield store, announcer, done
    store.close()


def command(body):
    return create(body, "h1", "d1")


def test_a_change_of_repeat_replaces_the_old_repeat(device) -> None:
    store, announcer, done = device
    add = ReminderAdd(reminder_id="ins", kind="medication", text="take your insulin",
                      at="06:00", medication="insulin", every_hours=8)  # fmt: skip
    announcer.handle(command(add))
    assert store.get("ins").schedule.kind == HOURS
    announcer.handle(command(ReminderChange(reminder_id="ins", days=["mon", "thu"])))
    schedule = store.get("ins").schedule
    assert (schedule.kind, schedule.days, schedule.every_hours) == (DAYS, ("mon", "thu"), None)
    assert [ok for _, ok, _ in done] == [True, True]


def test_a_caregivers_reminder_takes_over_the_seniors_own_for_the_same_dose(device) -> None:
    """Mum set up her ramipril at 8 by voice (her family's had not come back yet after a
    loss); Carla's for the same dose arrives: one reminder, so one dose, is left. Another
    medication, or another time, is left alone."""
    store, announcer, done = device
    own = store.add_medication("Ramipril", schedule_of("08:00", None, None, None), NOW)
    other_time = store.add_medication("ramipril", schedule_of("20:00", None, None, None), NOW)
    other_medicine = store.add_medication("aspirin", schedule_of("08:00", None, None, None), NOW)
    add = ReminderAdd(reminder_id="morning-pills", kind="medication", text="Morning pills",
                      at="08:00", medication="ramipril", dose="5 mg")  # fmt: skip
    said = []
    announcer.queue = lambda sentence, urgent=False: said.append(sentence)
    announcer.handle(command(add))
    assert {r.id for r in store.all()} == {"morning-pills", other_time.id, other_medicine.id}
    assert own.id not in {r.id for r in store.all()}
    assert said == [
        "A new reminder was set up for you: Morning pills, at 8 o'clock in the morning. "
        "It replaces the one you set up for the same time."
    ]
    assert done == [("command.reminder.add", True, None)]


def test_a_caregivers_reminder_without_the_medicine_does_not_take_over_a_tracked_one(
    device,
) -> None:
    """Carla types "Ramipril" at 8 without naming the medicine: the same dose as Mum's own
    reminder, which asks until answered and reports a miss. Taking over, hers would be said
    once and a miss never reported; beside it, the dose would be asked for twice. Refused,
    saying what to do; Mum's stays. (Giving hers Mum's medicine name instead was tried: the
    family's copy would not have it, and a later change of the text would keep asking for
    the old medicine.)"""
    store, announcer, done = device
    own = store.add_medication("Ramipril", schedule_of("08:00", None, None, None), NOW)
    add = ReminderAdd(reminder_id="care", kind="medication", text="Ramipril", at="08:00")
    announcer.handle(command(add))
    assert [r.id for r in store.all()] == [own.id] and store.get(own.id).answered
    ((kind, ok, why),) = done
    assert (kind, ok) == ("command.reminder.add", False) and "medicine's name" in why
    named = ReminderAdd(reminder_id="care", kind="medication", text="Ramipril", at="08:00",
                        medication="Ramipril")  # fmt: skip
    announcer.handle(command(named))
    assert [r.id for r in store.all()] == ["care"] and store.get("care").answered


def test_a_voice_reminder_for_the_familys_unnamed_one_is_not_added_twice(device) -> None:
    """The other way round: Carla's "Ramipril" at 8 came first, unnamed; Mum asks by voice
    for her ramipril at 8: one reminder, the family's (a second would ask for the dose)."""
    store, announcer, _ = device
    add = ReminderAdd(reminder_id="care", kind="medication", text="Ramipril", at="08:00")
    announcer.handle(command(add))
    kept = store.add_medication("ramipril", schedule_of("08:00", None, None, None), NOW)
    assert kept.id == "care" and [r.id for r in store.all()] == ["care"]


def test_a_caregivers_change_onto_the_seniors_own_dose_takes_it_over(device) -> None:
    """Carla's ramipril moved from 9 to 8, where Mum's own is: one reminder is left, and
    Mum is told."""
    store, announcer, done = device
    own = store.add_medication("Ramipril", schedule_of("08:00", None, None, None), NOW)
    add = ReminderAdd(reminder_id="care", kind="medication", text="Morning pills",
                      at="09:00", medication="ramipril")  # fmt: skip
    announcer.handle(command(add))
    said = []
    announcer.queue = lambda sentence, urgent=False: said.append(sentence)
    announcer.handle(command(ReminderChange(reminder_id="care", at="08:00")))
    assert [r.id for r in store.all()] == ["care"] and store.get(own.id) is None
    assert said == [
        "Your family changed a reminder: Morning pills, at 8 o'clock in the morning. "
        "It replaces the one you set up for the same time."
    ]
    assert [ok for _, ok, _ in done] == [True, True]


def test_a_dose_answered_is_not_asked_for_again_by_the_reminder_that_takes_over(
    tmp_path,
) -> None:
    """Mum's own aspirin rang at 9 and she took it; at 9:30 Carla moves hers from 10 to 9.
    One reminder is left, and it does not ask for the 9 o'clock dose again (late)."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    try:
        clock = [dt.datetime(2026, 11, 23, 8, 0, tzinfo=BERLIN)]
        announcer = Announcer(store, on_done=lambda *a: None, clock=lambda: clock[0])
        own = store.add_medication("aspirin", schedule_of("09:00", None, None, None), clock[0])
        add = ReminderAdd(reminder_id="care", kind="medication", text="Aspirin", at="10:00",
                          medication="aspirin")  # fmt: skip
        announcer.handle(command(add))
        clock[0] = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
        (due,) = [d for d in store.tick(clock[0]) if d.reminder.id == own.id]
        store.answer(due, clock[0])
        clock[0] = dt.datetime(2026, 11, 23, 9, 30, tzinfo=BERLIN)
        announcer.handle(command(ReminderChange(reminder_id="care", at="09:00")))
        assert [r.id for r in store.all()] == ["care"]
        later = []
        for minute in range(31, 120):
            later += store.tick(dt.datetime(2026, 11, 23, 9 + minute // 60, minute % 60,
                                            tzinfo=BERLIN))  # fmt: skip
        assert later == [], later
    finally:
        store.close()


def ticks(store: ReminderStore, start: dt.datetime, minutes: int) -> list:
    """What the reminders' clock finds, a minute at a time after `start`."""
    found = []
    for minute in range(1, minutes + 1):
        found += store.tick(start + dt.timedelta(minutes=minute))
    return found


def test_a_dose_still_being_asked_is_not_dropped_by_the_reminder_that_takes_over(
    tmp_path,
) -> None:
    """Carla's unnamed "Morning pills" at 8 was said once; Mum's own ramipril at 8 is still
    being asked. At 8:05 Carla names the medicine: hers takes over, and goes on asking
    (the furthest of the two records stays), and a miss is still reported."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    try:
        clock = [dt.datetime(2026, 11, 23, 7, 0, tzinfo=BERLIN)]
        announcer = Announcer(store, on_done=lambda *a: None, clock=lambda: clock[0])
        add = ReminderAdd(reminder_id="care", kind="medication", text="Morning pills",
                          at="08:00")  # fmt: skip
        announcer.handle(command(add))
        store.add_medication("ramipril", schedule_of("08:00", None, None, None), clock[0])
        clock[0] = dt.datetime(2026, 11, 23, 8, 5, tzinfo=BERLIN)
        assert len(store.tick(clock[0])) == 2  # both said
        named = ReminderChange(reminder_id="care", medication="Ramipril")
        announcer.handle(command(named))
        assert [r.id for r in store.all()] == ["care"]
        later = [(d.reminder.id, d.event) for d in ticks(store, clock[0], 240)]
        assert ("care", "announce") in later and ("care", "missed") in later, later
    finally:
        store.close()


def test_a_dose_due_but_not_yet_asked_is_asked_by_the_reminder_that_takes_over(
    tmp_path,
) -> None:
    """Mum's own aspirin at 9 had not been asked yet (the device was busy); at 9:20 Carla's
    aspirin at 9 arrives and takes over: the 9 o'clock dose is still asked (late)."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    try:
        clock = [dt.datetime(2026, 11, 23, 7, 0, tzinfo=BERLIN)]
        announcer = Announcer(store, on_done=lambda *a: None, clock=lambda: clock[0])
        store.add_medication("aspirin", schedule_of("09:00", None, None, None), clock[0])
        clock[0] = dt.datetime(2026, 11, 23, 9, 20, tzinfo=BERLIN)
        add = ReminderAdd(reminder_id="care", kind="medication", text="Aspirin", at="09:00",
                          medication="aspirin")  # fmt: skip
        announcer.handle(command(add))
        due = store.tick(clock[0] + dt.timedelta(minutes=1))
        assert [(d.reminder.id, d.event, d.at.strftime("%H:%M")) for d in due] == [
            ("care", "announce", "09:00")
        ]
    finally:
        store.close()


def test_a_dose_put_off_stays_put_off_when_a_twin_takes_over(tmp_path) -> None:
    """At 9 both Carla's aspirin and Mum's own ramipril ring; Mum says "in half an hour"
    to hers. At 9:02 Carla changes hers to ramipril: hers takes over, and the dose is asked
    again at 9:31 as Mum asked, not at once."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    try:
        clock = [dt.datetime(2026, 11, 23, 8, 0, tzinfo=BERLIN)]
        announcer = Announcer(store, on_done=lambda *a: None, clock=lambda: clock[0])
        add = ReminderAdd(reminder_id="care", kind="medication", text="Morning tablet",
                          at="09:00", medication="aspirin")  # fmt: skip
        announcer.handle(command(add))
        own = store.add_medication("ramipril", schedule_of("09:00", None, None, None), clock[0])
        clock[0] = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
        (mine,) = [d for d in store.tick(clock[0]) if d.reminder.id == own.id]
        assert store.snooze(mine, 30, clock[0] + dt.timedelta(minutes=1))
        clock[0] += dt.timedelta(minutes=2)
        announcer.handle(command(ReminderChange(reminder_id="care", medication="ramipril")))
        assert [r.id for r in store.all()] == ["care"]
        asked = []
        for minute in range(1, 31):
            moment = clock[0] + dt.timedelta(minutes=minute)
            asked += [moment.strftime("%H:%M") for d in store.tick(moment)
                      if d.event == "announce"]  # fmt: skip
        assert asked == ["09:31"], asked
    finally:
        store.close()


CARLAS_ASPIRIN = ReminderAdd(reminder_id="care", kind="medication", text="Aspirin",
                             at="09:00", medication="aspirin")  # fmt: skip


@pytest.fixture
def own_aspirin(tmp_path: Path):
    """Mum's own aspirin at 9, set up by voice at 8 (the clock: `clock[0]`), and Carla's
    aspirin at 9 arriving to take it over (`take_over()`)."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    clock = [dt.datetime(2026, 11, 23, 8, 0, tzinfo=BERLIN)]
    announcer = Announcer(store, on_done=lambda *a: None, clock=lambda: clock[0])
    store.add_medication("aspirin", schedule_of("09:00", None, None, None), clock[0])
    yield store, clock, lambda: announcer.handle(command(CARLAS_ASPIRIN))
    store.close()


def test_an_answer_found_before_a_hand_over_is_stored_under_the_reminder_that_took_over(
    own_aspirin,
) -> None:
    """Mum says "I took it" for her own aspirin at 9; between the device finding the dose
    she answers and storing her answer, Carla's aspirin at 9 takes over. The answer lands
    on Carla's reminder: the dose is not asked for again, and no miss is reported."""
    store, clock, take_over = own_aspirin
    clock[0] = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
    store.tick(clock[0])
    due = store.latest_asked(clock[0])
    take_over()
    assert store.answer(due, clock[0]) == "care"
    assert store.state_of("care", due.key) == "taken"
    assert ticks(store, clock[0], 240) == []


def test_a_snooze_found_before_a_hand_over_puts_off_the_reminder_that_took_over(
    own_aspirin,
) -> None:
    """Mum says "remind me in ten minutes" as Carla's aspirin at 9 takes over hers: the
    dose is put off, not asked again at once and then put off to nothing."""
    store, clock, take_over = own_aspirin
    clock[0] = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
    store.tick(clock[0])
    due = store.latest_asked(clock[0])
    take_over()
    assert store.snooze(due, 10, clock[0])
    asked = [(d.reminder.id, d.at.strftime("%H:%M")) for d in ticks(store, clock[0], 12)
             if d.event == "announce"]  # fmt: skip
    assert asked == [("care", "09:00")]  # at 9:10, once


def test_a_miss_found_before_a_hand_over_is_reported_once(own_aspirin) -> None:
    """Mum's own aspirin at 9 was missed; between the device finding the unreported miss
    and noting its report stored, Carla's aspirin at 9 takes over. The note lands on
    Carla's reminder: the family is not told of the miss a second time."""
    store, clock, take_over = own_aspirin
    found = ticks(store, clock[0], 240)
    assert [d.event for d in found][-1] == "missed"
    clock[0] += dt.timedelta(minutes=240)
    (miss,) = store.unreported(clock[0])
    take_over()
    store.mark_reported(miss, None)
    assert store.unreported(clock[0]) == []


def fill_the_disk(store: ReminderStore) -> None:
    """SQLite's own "database or disk is full" from the next write that needs a page."""
    (pages,) = store._db.execute("PRAGMA page_count").fetchone()
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def test_a_twin_taking_over_on_a_disk_that_fills_is_done_in_memory(tmp_path) -> None:
    """The disk fills inside the transaction in which Carla's aspirin at 9 takes over
    Mum's own: the store goes on in memory and the hand-over is done there, whole (before,
    the caregiver's command failed: "the device could not carry it out"); the 9 o'clock
    dose is asked by hers alone."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    try:
        own = store.add_medication("aspirin", schedule_of("09:00", None, None, None), NOW)
        fill_the_disk(store)
        care = Reminder(
            "care",
            "medication",
            "Aspirin, " + "with a glass of water " * 300,  # words that need a page of their own
            schedule_of("09:00", None, None, None),
            medication="aspirin",
            source="caregiver",
        )
        assert store.put_replacing(care, [own], NOW).id == "care"
        assert store._db.in_memory and [r.id for r in store.all()] == ["care"]
        asked = [(d.reminder.id, d.event) for d in ticks(store, NOW, 125)]
        assert asked[0] == ("care", "announce") and {rid for rid, _ in asked} == {"care"}
    finally:
        store.close()


def test_the_reminders_clock_does_not_miss_a_beat_when_the_disk_fills(tmp_path) -> None:
    """The disk fills on the very write that records a dose as asked: that tick is done
    again in memory, so the dose is said at 9, not a minute late (the clock's tick would
    have raised)."""
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN)
    try:
        store.add_medication("aspirin", schedule_of("09:00", None, None, None), NOW)
        store._db.execute("CREATE TABLE pad (b BLOB)")  # recording an occurrence needs pages
        store._db.execute("CREATE TRIGGER fill AFTER INSERT ON occurrences BEGIN"
                          " INSERT INTO pad VALUES (zeroblob(100000)); END")  # fmt: skip
        fill_the_disk(store)
        nine = dt.datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN)
        assert [(d.event, d.at) for d in store.tick(nine)] == [("announce", nine)]
        assert store._db.in_memory
        assert store.tick(nine + dt.timedelta(minutes=1)) == []  # recorded: not said again
    finally:
        store.close()


def test_a_reminder_the_family_stops_is_said(device) -> None:
    store, announcer, done = device
    said = []
    announcer.queue = lambda sentence, urgent=False: said.append(sentence)
    add = ReminderAdd(reminder_id="walk", kind="other", text="Go for a walk", at="15:00")
    announcer.handle(command(add))
    announcer.handle(command(ReminderRemove(reminder_id="walk")))
    announcer.handle(command(ReminderRemove(reminder_id="walk")))  # gone already: nothing
    assert store.get("walk") is None
    assert said[1:] == [
        "Your family stopped a reminder: Go for a walk, at 3 o'clock in the afternoon."
    ]
    assert [ok for _, ok, _ in done] == [True, True, True]


def test_a_command_that_breaks_on_the_device_is_reported_failed(device) -> None:
    _, announcer, done = device

    def broken(message):
        raise OSError(5, "Input/output error")

    announcer.on_command = broken
    announcer.handle(command(Volume(level=0.5)))
    assert done == [("command.volume", False, "the device could not carry it out")]


def test_the_machines_zone_follows_its_clock_changes(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    tz = time_zone("")
    summer = local_moment(dt.date(2026, 7, 1), dt.time(12), tz)
    winter = local_moment(dt.date(2026, 12, 1), dt.time(12), tz)
    assert (summer.utcoffset(), winter.utcoffset()) == (
        dt.timedelta(hours=2),
        dt.timedelta(hours=1),
    )


def test_one_answer_to_two_folded_calls_is_said_once() -> None:
    from protocol import AlertAck

    announcer = Announcer()
    for alert_id in (
        "0f4ad3a4-5b6e-4c1f-9a43-5b1d0c2f8e11",
        "6c1e5e0a-0c9b-4a77-8f5e-2d9a3c4b7f21",
    ):
        announcer.handle(command_to_device(AlertAck(alert_id=alert_id, by="Anna", action="seen")))
    assert len(announcer.take()) == 1


def test_a_very_long_sentence_is_cut_before_it_goes_out() -> None:
    from assistant.actions import MAX_SAID, message_body
    from assistant.dialog import Action

    body = message_body(Action("emergency", {"kind": "fall"}), "help " * 1000)
    assert len(body.said) == MAX_SAID


def command_to_device(body):
    return create(body, "h1", "d1")


def test_an_emergency_refused_again_is_said_again_a_calm_alert_once() -> None:
    """Each copy of an unconfirmed alert the device sends again is refused while the cause
    lasts: the senior hears of a calm alert once, of her emergency every time."""
    from protocol import ServiceRefused

    emergency, calm = "0f4ad3a4-5b6e-4c1f-9a43-5b1d0c2f8e11", "6c1e5e0a-0c9b-4a77-8f5e-2d9a3c4b7f21"
    types = {emergency: "alert.emergency", calm: "alert.wellness"}
    announcer = Announcer(sent_type=types.get)
    said = []
    for _ in range(2):
        for refused_id in (emergency, calm):
            refusal = ServiceRefused(reason="unknown_device", refused_id=refused_id)
            announcer.handle(command_to_device(refusal))
        said.append(announcer.take())
    assert [len(each) for each in said] == [2, 1], said
    assert "call for help" in said[1][0]


def test_the_refusals_told_are_bounded_and_the_oldest_forgotten(monkeypatch) -> None:
    """The ids of refusals told are kept to the latest REFUSALS_KEPT, not for ever."""
    import uuid

    import assistant.announcer as announcer_module
    from protocol import ServiceRefused

    monkeypatch.setattr(announcer_module, "REFUSALS_KEPT", 3)
    ids = [str(uuid.UUID(int=i + 1)) for i in range(4)]
    announcer = Announcer(sent_type=lambda _: "alert.wellness")

    def told(refused_id: str) -> bool:
        refusal = ServiceRefused(reason="unknown_device", refused_id=refused_id)
        announcer.handle(command_to_device(refusal))
        return bool(announcer.take())

    assert all(told(refused_id) for refused_id in ids)
    assert len(announcer._refusals_told) == 3
    assert not told(ids[-1])  # the latest is still known
    assert told(ids[0])  # the oldest was forgotten
