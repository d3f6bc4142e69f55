"""The outbox on a real SQLite file: order, acknowledgement, retry, crash, and `status`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assistant.outbox import Outbox, state_db_path
from assistant.status import read_status, render
from protocol import EmergencyAlert, FamilyMessage, InactivityAlert, ReminderTaken, create
from tests.cli import run_cli

H, D = "household-1", "kitchen-speaker"
TS = "2026-11-23T08:00:00.000Z"


def family(text: str = "hello"):
    return create(FamilyMessage(to="Anna", text=text), H, D)


def alert():
    return create(EmergencyAlert(trigger="sos_button"), H, D)


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(state_db_path(tmp_path / "state"))
    yield box
    box.close()


def test_messages_are_stored_with_their_wire_form(outbox: Outbox) -> None:
    message = family()
    row = outbox.put(message)
    (stored,) = outbox.pending(10)
    assert stored == row
    assert stored.msg_id == message.id and stored.topic == message.topic
    assert json.loads(stored.payload)["id"] == message.id


def test_alerts_leave_first_then_the_order_of_storing(outbox: Outbox) -> None:
    first, second = family("one"), family("two")
    event = create(ReminderTaken(reminder_id="r1", due=TS, taken_at=TS), H, D)
    urgent, quiet = alert(), create(InactivityAlert(quiet_for_s=3600), H, D)
    for message in (first, second, urgent, event, quiet):
        outbox.put(message)
    order = [row.msg_id for row in outbox.pending(10)]
    assert order == [urgent.id, quiet.id, first.id, second.id, event.id]
    assert [row.msg_id for row in outbox.pending(2)] == [urgent.id, quiet.id]


def test_rows_with_the_client_are_not_offered_twice(outbox: Outbox) -> None:
    rows = [outbox.put(family(str(i))) for i in range(5)]
    held = {rows[0].seq, rows[1].seq}
    assert [r.seq for r in outbox.pending(2, exclude=held)] == [rows[2].seq, rows[3].seq]


def test_only_an_acknowledgement_removes_a_message(outbox: Outbox) -> None:
    a, b = outbox.put(family("a")), outbox.put(family("b"))
    assert outbox.remove(a.seq)
    assert not outbox.remove(a.seq)  # a second PUBACK for the same row changes nothing
    assert [r.seq for r in outbox.pending(10)] == [b.seq]
    assert outbox.contains(b.msg_id) and not outbox.contains(a.msg_id)


def test_a_message_cannot_be_stored_twice(outbox: Outbox) -> None:
    message = family()
    outbox.put(message)
    with pytest.raises(sqlite3.IntegrityError):
        outbox.put(message)
    assert len(outbox) == 1


def test_a_refused_message_waits_longer_after_each_refusal(outbox: Outbox) -> None:
    row = outbox.put(family())
    assert outbox.defer(row.seq, "quota exceeded") == 1.0
    assert outbox.pending(10) == []  # waiting for its retry time
    retry_at = outbox.next_retry_at()
    assert retry_at is not None and 0.5 < retry_at - time.time() <= 1.0
    assert outbox.defer(row.seq, "quota exceeded") == 2.0
    assert outbox.defer(row.seq, "quota exceeded") == 4.0
    assert len(outbox) == 1  # kept, never dropped


def test_a_retry_time_left_far_ahead_by_a_clock_put_back_is_due_now(
    outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry times are wall-clock times (they outlive the process). A device clock that ran
    an hour ahead and is then corrected would hold a deferred alert back for that hour."""
    row = outbox.put(alert())
    for _ in range(4):
        wait = outbox.defer(row.seq, "no service listening", 15.0)
    assert wait == 8.0 and outbox.pending(10) == []
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now - 3600)  # the clock put back an hour
    assert [r.seq for r in outbox.pending(10)] == [row.seq]
    assert outbox.next_retry_at() is None
    monkeypatch.undo()
    assert outbox.pending(10) == []  # the clock as it was: still waiting its 8 s


def test_stats_count_alerts_and_the_oldest_age(outbox: Outbox) -> None:
    assert outbox.stats().queued == 0 and outbox.stats().oldest_age_s() is None
    outbox.put(family())
    outbox.put(alert())
    stats = outbox.stats()
    assert (stats.queued, stats.alerts) == (2, 1)
    assert stats.oldest_created is not None
    assert stats.oldest_age_s(now=stats.oldest_created + 42) == pytest.approx(42)


def disk_refuses_writes(outbox: Outbox, refuses: bool = True) -> None:
    """SQLite's own refusal of a write to the file, as a disk remounted read-only after an
    error gives it ("attempt to write a readonly database"); reads still work."""
    outbox._db.execute(f"PRAGMA query_only = {'ON' if refuses else 'OFF'}")


def test_a_message_the_disk_refuses_is_held_in_memory_and_sent_all_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = state_db_path(tmp_path / "state")
    outbox = Outbox(path)
    on_disk = family("on disk")
    stored = outbox.put(on_disk)
    disk_refuses_writes(outbox)
    urgent = alert()
    held = outbox.put(urgent)
    assert f"alert.emergency {urgent.id} held in memory (attempt to write" in caplog.text
    assert [r.msg_id for r in outbox.pending(10)] == [urgent.id, stored.msg_id]
    assert outbox.contains(urgent.id) and outbox.stats().in_memory == 1 and len(outbox) == 2
    with pytest.raises(sqlite3.IntegrityError):  # queued already, on disk or not
        outbox.put(urgent)
    with pytest.raises(sqlite3.IntegrityError):
        outbox.put(on_disk)
    assert outbox.defer(held.seq, "no service listening") == 1.0
    assert outbox.next_retry_at() is not None
    assert outbox.remove(held.seq) and not outbox.contains(urgent.id)
    outbox.close()
    reopened = Outbox(path)  # what was on disk is still there; what was held is not
    assert [r.msg_id for r in reopened.pending(10)] == [stored.msg_id]
    reopened.close()


def test_a_full_disk_keeps_every_message_in_the_order_stored(tmp_path: Path) -> None:
    """The file may not grow (SQLite's own "database or disk is full"): the messages after
    the last that fitted are held in memory, and all leave in the order they were stored."""
    outbox = Outbox(state_db_path(tmp_path / "state"))
    (pages,) = outbox._db.execute("PRAGMA page_count").fetchone()
    outbox._db.execute(f"PRAGMA max_page_count = {pages + 2}")
    messages = [family(f"{i:03d} " + "x" * 1500) for i in range(30)]
    for message in messages:
        outbox.put(message)
    stats = outbox.stats()
    assert stats.queued == 30 and 0 < stats.in_memory < 30
    assert [r.msg_id for r in outbox.pending(50)] == [m.id for m in messages]
    outbox.close()


def test_an_acknowledgement_the_disk_refuses_is_kept_until_it_can_be_written(
    tmp_path: Path,
) -> None:
    path = state_db_path(tmp_path / "state")
    outbox = Outbox(path)
    a, b, c = (outbox.put(family(text)) for text in "abc")
    disk_refuses_writes(outbox)
    assert outbox.remove_many([a.seq]) == 1
    assert not outbox.contains(a.msg_id) and len(outbox) == 2  # not offered again
    assert [r.seq for r in outbox.pending(10)] == [b.seq, c.seq]
    assert outbox.remove(a.seq) is False  # a second PUBACK for it changes nothing
    disk_refuses_writes(outbox, False)
    assert outbox.remove(b.seq)  # written with the one owed
    outbox.close()
    reopened = Outbox(path)
    assert [r.seq for r in reopened.pending(10)] == [c.seq]
    reopened.close()


def test_messages_stored_after_the_disk_recovers_wait_for_those_held_before(
    outbox: Outbox,
) -> None:
    """While memory holds messages, new ones join them there: an older alert held in
    memory is not overtaken by a newer one the recovered disk took."""
    disk_refuses_writes(outbox)
    first = outbox.put(alert())
    disk_refuses_writes(outbox, False)
    second = outbox.put(alert())
    assert [r.seq for r in outbox.pending(10)] == [first.seq, second.seq]
    assert outbox.stats().in_memory == 2
    outbox.remove_many([first.seq, second.seq])
    third = outbox.put(family())  # memory is empty again: back to the disk
    assert outbox.stats().in_memory == 0 and outbox.contains(third.msg_id)


def test_an_alert_sent_again_after_a_refused_deletion_is_queued_again(outbox: Outbox) -> None:
    """An unanswered alert is sent again with the same id (assistant/resend.py); the broker
    took the first copy but the disk would not forget it. It is queued again, not refused
    as a duplicate (which stopped the alert being sent again)."""
    message = alert()
    row = outbox.put(message)
    disk_refuses_writes(outbox)
    outbox.remove(row.seq)
    assert not outbox.contains(message.id)
    again = outbox.put(message)
    assert again.seq == row.seq and outbox.contains(message.id)
    assert [r.seq for r in outbox.pending(10)] == [row.seq]
    disk_refuses_writes(outbox, False)
    assert outbox.remove(row.seq) and not outbox.contains(message.id)


def test_an_unreadable_file_never_passes_an_alert_for_acknowledged(outbox: Outbox) -> None:
    """The file cannot be read at all: what memory holds still goes out, and whether an
    alert is still queued is an error, not a "no" (the senior would hear it had gone out)."""
    stored = outbox.put(alert())
    disk_refuses_writes(outbox)
    held = outbox.put(alert())
    outbox._db.close()  # the file's connection fails every statement from now on
    assert [r.seq for r in outbox.pending(10)] == [held.seq]
    with pytest.raises(sqlite3.Error):
        outbox.contains(stored.msg_id)
    assert outbox.contains(held.msg_id)


def test_the_outbox_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = state_db_path(tmp_path)
    box = Outbox(path)
    stored = [box.put(family(str(i))).msg_id for i in range(3)]
    box.close()
    again = Outbox(path)
    assert [r.msg_id for r in again.pending(10)] == stored
    again.close()
    assert (path.stat().st_mode & 0o777) == 0o600


def test_every_message_stored_before_a_kill_is_still_there(tmp_path: Path) -> None:
    """A real SIGKILL while the process stores as fast as it can: each id it reported as
    stored (put() had returned) must be in the file afterwards."""
    path = state_db_path(tmp_path)
    code = textwrap.dedent(
        f"""
        from assistant.outbox import Outbox
        from protocol import FamilyMessage, create
        box = Outbox({str(path)!r})
        while True:
            message = create(FamilyMessage(to="Anna", text="hello"), "h", "d")
            box.put(message)
            print(message.id, flush=True)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)),
    )
    assert child.stdout is not None
    reported = [child.stdout.readline().strip() for _ in range(100)]
    child.send_signal(signal.SIGKILL)
    child.wait()
    reported += [line.strip() for line in child.stdout if line.strip()]
    box = Outbox(path)
    assert all(box.contains(message_id) for message_id in reported)
    assert len(box) >= len(reported)
    box.close()


def test_link_state_keeps_its_since_while_the_state_does_not_change(outbox: Outbox) -> None:
    outbox.set_link_state("connected", "broker:1883", session_present=True)
    db = sqlite3.connect(outbox.path)
    since = db.execute("SELECT since FROM link_state").fetchone()[0]
    time.sleep(0.01)
    outbox.set_link_state("connected", "broker:1883")
    assert db.execute("SELECT since, session_present FROM link_state").fetchone() == (since, 1)
    outbox.set_link_state("disconnected", "broker:1883", error="lost: keepalive")
    row = db.execute("SELECT state, since, last_error FROM link_state").fetchone()
    assert row[0] == "disconnected" and row[1] > since and row[2] == "lost: keepalive"
    db.close()


# --- senior-assistant status ----------------------------------------------------------------


def test_status_without_a_state_file_says_never_started(tmp_path: Path) -> None:
    status = read_status(tmp_path / "nothing")
    assert status.state == "never started"
    assert "outbox: empty" in render(status)
    assert not (tmp_path / "nothing").exists()  # looking creates nothing


def test_status_shows_state_queue_age_and_rejections(outbox: Outbox) -> None:
    outbox.put(family())
    outbox.put(alert())
    outbox.set_link_state("connected", "broker.example:8883", session_present=True)
    outbox.count_rejection("not_json")
    outbox.count_rejection("not_json")
    status = read_status(outbox.path.parent)
    assert status.state == "connected"  # this process wrote it and is alive
    text = render(status, now=status.outbox.oldest_created + 90)
    assert "link: connected, broker broker.example:8883" in text
    assert "session kept" in text
    assert "outbox: 2 queued (1 alert), oldest 90 s old" in text
    assert "rejected incoming: not_json 2" in text


def test_status_of_a_process_that_died_connected_says_not_running(outbox: Outbox) -> None:
    outbox.set_link_state("connected", "broker:1883")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    db = sqlite3.connect(outbox.path)
    db.execute("UPDATE link_state SET pid = ?", (child.pid,))  # a pid that is gone
    db.commit()
    db.close()
    status = read_status(outbox.path.parent)
    assert status.state == "not running"
    assert f"was connected when pid {child.pid} stopped" in render(status)


def test_the_status_command_reads_the_configured_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    box = Outbox(state_db_path(state))
    box.put(family())
    box.put(family())
    box.close()
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nstate_dir = "{state}"\n')
    result = run_cli("--config", str(config), "status")
    assert result.returncode == 0, result.stderr
    assert "outbox: 2 queued, oldest" in result.stdout
    result = run_cli("--config", str(config), "status", "--json")
    data = json.loads(result.stdout)
    assert data["queued"] == 2 and data["queued_alerts"] == 0
    assert data["oldest_age_s"] >= 0
    assert data["state"] == "never started"  # messages queued, the link never ran


def test_a_damaged_state_file_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    state_db_path(tmp_path).write_bytes(b"this is not SQLite " * 100)
    config = tmp_path / "config.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path}"\n')
    result = run_cli("--config", str(config), "status")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("senior-assistant: the link's state in")
