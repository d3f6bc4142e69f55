"""Reminders with a controllable clock: schedules across daylight-saving changes, the
occurrence life cycle (announce, repeat, snooze, miss) in SQLite across restarts, late
announcements after the device was off."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from assistant.reminders import Reminder, ReminderPolicy, ReminderStore
from assistant.schedule import DAILY, DAYS, HOURS, ONCE, Schedule, ScheduleError, local_moment

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
POLICY = ReminderPolicy(repeat_every=dt.timedelta(minutes=10), repeats=3)


def local(*args: int, tz: dt.tzinfo = BERLIN) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def medication(reminder_id: str, schedule: Schedule, name: str = "metformin") -> Reminder:
    return Reminder(reminder_id, "medication", f"take your {name}", schedule, medication=name)


@pytest.fixture
def store(tmp_path: Path) -> ReminderStore:
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN, policy=POLICY)
    yield store
    store.close()


def fired(store: ReminderStore, start: dt.datetime, hours: float, step_min: int = 1) -> list:
    """Tick every `step_min` for `hours` from `start`; every first announcement, in order."""
    seen = []
    now = start
    while now < start + dt.timedelta(hours=hours):
        seen += [d for d in store.tick(now) if d.event == "announce" and d.attempt == 1]
        now += dt.timedelta(minutes=step_min)
    return seen


# --- schedules across daylight-saving changes ------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [(BERLIN, dt.date(2026, 3, 29), dt.date(2026, 10, 25)),
     (NEW_YORK, dt.date(2026, 3, 8), dt.date(2026, 11, 1))],
)  # fmt: skip
def test_a_daily_reminder_keeps_its_wall_clock_time_across_both_changes(
    tz: dt.tzinfo, spring: dt.date, autumn: dt.date
) -> None:
    schedule = Schedule(DAILY, "08:00")
    for change in (spring, autumn):
        start = dt.datetime.combine(change - dt.timedelta(days=2), dt.time(0), tzinfo=tz)
        found = list(schedule.between(start, start + dt.timedelta(days=5), tz))
        assert [o.at.astimezone(tz).strftime("%H:%M") for o in found] == ["08:00"] * 5
        gaps = {b.at.astimezone(dt.UTC) - a.at.astimezone(dt.UTC) for a, b in pairwise(found)}
        # the day of the change is 23 or 25 hours long: one gap differs from 24 hours
        assert len(gaps) == 2 and dt.timedelta(hours=24) in gaps


def test_a_time_skipped_in_spring_fires_once_after_the_jump_and_a_doubled_one_once() -> None:
    schedule = Schedule(DAILY, "02:30")
    spring = list(schedule.between(local(2026, 3, 28, 12), local(2026, 3, 30, 12), BERLIN))
    assert [o.key for o in spring] == ["2026-03-29T02:30", "2026-03-30T02:30"]
    assert spring[0].at.strftime("%H:%M %Z") == "03:30 CEST"  # 02:30 does not exist
    autumn = list(schedule.between(local(2026, 10, 24, 12), local(2026, 10, 25, 12), BERLIN))
    assert len(autumn) == 1  # 02:30 happens twice that night; the reminder once
    assert autumn[0].at.astimezone(dt.UTC).hour == 0  # the first 02:30 (CEST, UTC+2)
    assert local_moment(dt.date(2026, 10, 25), dt.time(2, 30), BERLIN).utcoffset() == (
        dt.timedelta(hours=2)
    )


def test_weekday_reminders_across_the_autumn_change_fire_on_their_days_only(
    store: ReminderStore,
) -> None:
    store.put(medication("mon-thu", Schedule(DAYS, "09:00", days=("mon", "thu"))),
              local(2026, 10, 20))  # fmt: skip
    seen = fired(store, local(2026, 10, 21, 0), hours=24 * 10, step_min=15)
    assert [(d.at.strftime("%a %d %H:%M")) for d in seen] == [
        "Thu 22 09:00", "Mon 26 09:00", "Thu 29 09:00",
    ]  # fmt: skip
    assert all(d.at.utcoffset() == dt.timedelta(hours=1) for d in seen[1:])  # winter time


def test_every_n_hours_and_one_offs(store: ReminderStore) -> None:
    start = local(2026, 11, 23, 5)
    store.put(medication("insulin", Schedule(HOURS, "06:00", every_hours=8), "insulin"), start)
    store.put(medication("once", Schedule(ONCE, "12:00", date="2026-11-23"), "antibiotic"), start)
    seen = fired(store, start, hours=48, step_min=5)
    assert [(d.reminder.id, d.at.strftime("%d %H:%M")) for d in seen] == [
        ("insulin", "23 06:00"), ("once", "23 12:00"), ("insulin", "23 14:00"),
        ("insulin", "23 22:00"), ("insulin", "24 06:00"), ("insulin", "24 14:00"),
        ("insulin", "24 22:00"),
    ]  # fmt: skip


def test_a_one_off_weeks_ahead_is_kept_and_comes_on_its_day(store: ReminderStore) -> None:
    """A caregiver's dentist appointment a month ahead: not refused as "already passed"
    (the device looked only a week ahead); one a minute ago is."""
    start = local(2026, 11, 23, 12)
    dentist = store.put(Reminder("dentist", "appointment", "the dentist", Schedule(ONCE,
                        "10:00", date="2026-12-23")), start)  # fmt: skip
    upcoming = store.next_time(dentist, start)  # read out: "next ...", not "not due again"
    assert upcoming is not None and upcoming.at == local(2026, 12, 23, 10)
    seen = fired(store, local(2026, 12, 23, 9), hours=2, step_min=5)
    assert [(d.reminder.id, d.at.strftime("%m-%d %H:%M")) for d in seen] == [
        ("dentist", "12-23 10:00")
    ]
    with pytest.raises(ScheduleError, match="has already passed"):
        store.put(medication("late", Schedule(ONCE, "11:59", date="2026-11-23")), start)
    for mistyped in ("2062-11-23", "9999-12-31"):  # not kept silent for decades
        with pytest.raises(ScheduleError, match="more than a year ahead"):
            store.put(medication("far", Schedule(ONCE, "10:00", date=mistyped)), start)


def test_impossible_schedules_are_refused() -> None:
    for bad in (
        lambda: Schedule(DAILY, "25:00"),
        lambda: Schedule(DAILY, "7.30"),
        lambda: Schedule(DAYS, "08:00", days=("monday",)),
        lambda: Schedule(HOURS, "08:00", every_hours=0),
        lambda: Schedule(ONCE, "08:00"),
    ):
        with pytest.raises(ScheduleError):
            bad()


def test_a_reminder_without_text_is_not_stored(store: ReminderStore) -> None:
    with pytest.raises(ScheduleError):
        store.put(Reminder("r", "other", "  ", Schedule(DAILY, "08:00")))
    assert store.all() == []


# --- the life of one occurrence ---------------------------------------------------------


def test_unanswered_it_is_repeated_then_recorded_missed_once(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    events = []
    now = local(2026, 11, 23, 7, 59)
    for _ in range(60):
        events += [(d.event, d.attempt, d.final, d.reason) for d in store.tick(now)]
        now += dt.timedelta(minutes=1)
    assert events == [
        ("announce", 1, False, ""),
        ("announce", 2, False, ""),
        ("announce", 3, True, ""),  # the last one warns that the family will be told
        ("missed", 3, False, "no_answer"),
    ]
    assert store.state_of("m", "2026-11-23T08:00") == "missed"


def test_taken_stops_the_repeats_and_a_snooze_moves_them(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    [first] = store.tick(local(2026, 11, 23, 8, 0))
    open_one = store.latest_asked(local(2026, 11, 23, 8, 1))
    assert open_one is not None and open_one.key == first.key
    assert store.snooze(open_one, 30, local(2026, 11, 23, 8, 1))
    assert store.tick(local(2026, 11, 23, 8, 20)) == []  # not at the usual 10 minutes
    [again] = store.tick(local(2026, 11, 23, 8, 31))
    assert again.event == "announce"
    store.answer(store.latest_asked(local(2026, 11, 23, 8, 32)), local(2026, 11, 23, 8, 32))
    assert store.state_of("m", first.key) == "taken"
    assert store.tick(local(2026, 11, 23, 9, 30)) == []
    assert store.latest_asked(local(2026, 11, 23, 9, 30)) is None


def test_snoozing_is_limited(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    store.tick(local(2026, 11, 23, 8, 0))
    due = store.latest_asked(local(2026, 11, 23, 8, 0))
    results = [store.snooze(due, 5, local(2026, 11, 23, 8, i)) for i in range(5)]
    assert results == [True] * POLICY.max_snoozes + [False] * (5 - POLICY.max_snoozes)


def test_a_restart_with_a_reminder_pending_neither_repeats_it_early_nor_forgets_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "reminders.sqlite3"
    store = ReminderStore(path, tz=BERLIN, policy=POLICY)
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    assert [d.attempt for d in store.tick(local(2026, 11, 23, 8, 0))] == [1]
    store.close()  # the device restarts (or crashed) two minutes later

    store = ReminderStore(path, tz=BERLIN, policy=POLICY)
    assert store.tick(local(2026, 11, 23, 8, 2)) == []  # not announced twice
    assert store.latest_asked(local(2026, 11, 23, 8, 2)) is not None  # still open
    [again] = store.tick(local(2026, 11, 23, 8, 10))
    assert (again.event, again.attempt) == ("announce", 2)
    store.close()


def test_the_device_was_off_at_the_time_late_with_honest_words_or_missed(
    store: ReminderStore,
) -> None:
    store.put(medication("morning", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    store.put(medication("noon", Schedule(DAILY, "12:00"), "aspirin"), local(2026, 11, 22, 12))
    # Off from 07:00 to 12:40: 08:00 is 4 h 40 min ago (past catch-up), 12:00 40 min ago.
    events = store.tick(local(2026, 11, 23, 12, 40))
    by_id = {d.reminder.id: d for d in events}
    assert (by_id["morning"].event, by_id["morning"].reason) == ("missed", "device_off")
    assert by_id["noon"].event == "announce" and by_id["noon"].late
    assert by_id["noon"].late_by == dt.timedelta(minutes=40)
    assert store.tick(local(2026, 11, 23, 12, 41)) == []


def test_a_reminder_set_after_its_time_is_first_due_the_next_day(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 23, 9, 0))
    assert store.tick(local(2026, 11, 23, 9, 1)) == []  # no "missed" for a time before it
    assert [d.at.day for d in store.tick(local(2026, 11, 24, 8, 0))] == [24]


def test_a_changed_reminder_does_not_report_old_times_missed(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 20, 12))
    store.put(medication("m", Schedule(DAILY, "07:00")), local(2026, 11, 23, 9, 0))
    assert store.tick(local(2026, 11, 23, 9, 1)) == []


# --- changes (found in review: a change could erase a dose or give it twice) -------------


def test_a_new_dose_leaves_a_dose_that_is_overdue_due(store: ReminderStore) -> None:
    """The device was off at 08:00; the caregiver's new dose reaches it at 08:40, before
    its first look at the reminders: the 08:00 dose is still said (late)."""
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    changed = Reminder("m", "medication", "take your metformin", Schedule(DAILY, "08:00"),
                       medication="metformin", dose="two tablets")  # fmt: skip
    store.put(changed, local(2026, 11, 23, 8, 40))
    [late] = store.tick(local(2026, 11, 23, 8, 40))
    assert (late.event, late.late, late.reminder.dose) == ("announce", True, "two tablets")


def test_a_new_dose_after_the_catch_up_still_reports_the_miss(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    store.put(medication("m", Schedule(DAILY, "08:00"), "metformin 500"), local(2026, 11, 23, 11))
    [missed] = store.tick(local(2026, 11, 23, 11, 0))
    assert (missed.event, missed.reason) == ("missed", "device_off")


def test_a_time_moved_on_a_day_already_asked_is_not_asked_again(store: ReminderStore) -> None:
    """08:00 taken at 08:02, then moved to 10:00: a second reminder today could mean a
    second dose. From tomorrow, 10:00."""
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    store.tick(local(2026, 11, 23, 8, 0))
    store.answer(store.latest_asked(local(2026, 11, 23, 8, 2)), local(2026, 11, 23, 8, 2))
    store.put(medication("m", Schedule(DAILY, "10:00")), local(2026, 11, 23, 9, 0))
    seen = fired(store, local(2026, 11, 23, 9, 0), hours=26)
    assert [d.at.strftime("%d %H:%M") for d in seen] == ["24 10:00"]


def test_a_time_moved_earlier_is_said_now_when_today_was_not_asked(store: ReminderStore) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    store.put(medication("m", Schedule(DAILY, "07:00")), local(2026, 11, 23, 7, 30))
    seen = fired(store, local(2026, 11, 23, 7, 30), hours=24)
    assert [(d.at.strftime("%d %H:%M"), d.late) for d in seen] == [
        ("23 07:00", True), ("24 07:00", False),
    ]  # fmt: skip


def test_every_n_hours_changed_keeps_the_doses_already_asked(store: ReminderStore) -> None:
    insulin = Schedule(HOURS, "06:00", every_hours=8)
    store.put(medication("i", insulin, "insulin"), local(2026, 11, 22, 12))
    store.tick(local(2026, 11, 23, 6, 0))
    store.put(medication("i", Schedule(HOURS, "06:00", every_hours=6), "insulin"),
              local(2026, 11, 23, 7, 0))  # fmt: skip
    seen = fired(store, local(2026, 11, 23, 7, 0), hours=12)
    assert [d.at.strftime("%H:%M") for d in seen] == ["12:00", "18:00"]


def test_a_miss_already_reported_cannot_be_snoozed_into_a_second_one(
    store: ReminderStore,
) -> None:
    store.put(medication("m", Schedule(DAILY, "08:00")), local(2026, 11, 22, 12))
    events = [d.event for m in range(0, 40) for d in store.tick(local(2026, 11, 23, 8, m))]
    assert events.count("missed") == 1
    due = store.latest_asked(local(2026, 11, 23, 8, 45))
    assert due is not None and due.event == "missed"
    assert not store.snooze(due, 10, local(2026, 11, 23, 8, 45))
    later = [
        d.event
        for m in range(45, 120)
        for d in store.tick(local(2026, 11, 23, 8 + m // 60, m % 60))
    ]
    assert "missed" not in later and store.state_of("m", due.key) == "missed"


def test_copies_are_the_same_medicine_times_and_dose(tmp_path: Path) -> None:
    """What would ask for one dose twice: the days in any order, the name in any case; not
    another dose, time or medicine."""
    store = ReminderStore(tmp_path / "r.sqlite3")

    def ramipril(reminder_id: str, at: str = "08:00", days=("mon", "thu"), **more) -> Reminder:
        schedule = Schedule(DAYS, at, days=days)
        return Reminder(reminder_id, "medication", "take your ramipril", schedule, **more)

    try:
        store.put(ramipril("a", medication="Ramipril", dose="5 mg"))
        store.put(ramipril("b", days=("thu", "mon"), medication="ramipril"))
        store.put(ramipril("c", medication="ramipril", dose="10 mg"))
        store.put(ramipril("d", at="09:00", medication="ramipril"))
        store.put(ramipril("e", medication="aspirin"))
        asked = ramipril("new", medication="RAMIPRIL", dose="5 mg")
        assert sorted(r.id for r in store.copies_of(asked)) == ["a", "b"]
    finally:
        store.close()
