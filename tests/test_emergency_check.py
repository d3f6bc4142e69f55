"""An unanswered "do you need help?" survives a restart and alerts (assistant/emergency_check.py):
real SQLite files, the real dialog and speech output, and the real command run twice."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from assistant import replies
from assistant.config import SpeechOutputConfig
from assistant.emergency_check import CHECK_FILE, EmergencyCheckStore, alert_left_open
from assistant.loop import Assistant
from assistant.pcm import write_wav
from assistant.reminders import Reminder, ReminderStore
from assistant.routines import CareRoutines
from assistant.schedule import DAILY, Schedule
from assistant.speech.tts import SpeechSynthesizer
from assistant.voice import Voice, WavRecorder
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.cli import run_cli, turn_lines
from tests.clock import Clock

ASKED_AT = dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def synthesizer() -> SpeechSynthesizer:
    return SpeechSynthesizer(SpeechOutputConfig())


def assistant_with(engine, synthesizer, checks: EmergencyCheckStore, tmp_path) -> Assistant:
    voice = Voice(synthesizer, WavRecorder(tmp_path / "reply.wav"))
    actions: list = []
    assistant = Assistant(engine, voice, checks=checks, on_action=lambda a, _: actions.append(a))
    assistant.actions = actions  # type: ignore[attr-defined]
    return assistant


def test_an_open_check_is_on_disk_for_the_next_start(tmp_path) -> None:
    path = tmp_path / "state" / CHECK_FILE
    store = EmergencyCheckStore(path)
    assert store.left_open() is None
    store.asked({"kind": "fall"}, ASKED_AT)
    store.close()
    again = EmergencyCheckStore(path)
    assert again.left_open() == ({"kind": "fall"}, ASKED_AT)
    again.settled()
    assert again.left_open() is None
    again.close()
    assert os.stat(path).st_mode & 0o777 == 0o600  # what kind of emergency is health data


def test_an_unreadable_check_still_counts_as_open(tmp_path) -> None:
    path = tmp_path / CHECK_FILE
    EmergencyCheckStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO open_check VALUES (1, 'not json', 'not a time')")
    slots, _ = EmergencyCheckStore(path).left_open() or ({"no": "row"}, None)
    assert slots == {}  # an alert for "help" rather than none


def test_a_restart_during_the_question_alerts_at_the_next_start(
    engine, synthesizer, tmp_path
) -> None:
    path = tmp_path / CHECK_FILE
    first = assistant_with(engine, synthesizer, EmergencyCheckStore(path), tmp_path)
    turn = first.respond("help")  # a lone "help": the dialog asks before it alerts
    assert turn.reply == replies.EMERGENCY_CHECK and turn.actions == []
    first.checks.close()  # the device stops here: no answer, no silence timed out
    second = assistant_with(engine, synthesizer, EmergencyCheckStore(path), tmp_path)
    resumed = second.resume_emergency_check()
    assert resumed is not None
    assert [(a.kind, a.slots) for a in second.actions] == [("emergency", {"kind": "help"})]
    assert resumed.reply == replies.EMERGENCY_SENT["help"]
    second.checks.close()
    third = assistant_with(engine, synthesizer, EmergencyCheckStore(path), tmp_path)
    assert third.resume_emergency_check() is None  # alerted once, not at every start
    assert third.actions == []


def test_only_alerting_clears_a_check_a_previous_run_left(engine, synthesizer, tmp_path) -> None:
    path = tmp_path / CHECK_FILE
    store = EmergencyCheckStore(path)
    store.asked({"kind": "fall"}, ASKED_AT)
    store.close()
    later = assistant_with(engine, synthesizer, EmergencyCheckStore(path), tmp_path)
    later.respond("what time is it")  # a turn of its own does not settle the old question
    resumed = later.resume_emergency_check()
    assert resumed is not None and resumed.reply == replies.EMERGENCY_SENT["fall"]
    assert [(a.kind, a.slots) for a in later.actions] == [("emergency", {"kind": "fall"})]
    assert later.checks.left_open() is None
    later.checks.close()


def test_an_answered_check_is_not_alerted_after_a_restart(engine, synthesizer, tmp_path) -> None:
    path = tmp_path / CHECK_FILE
    first = assistant_with(engine, synthesizer, EmergencyCheckStore(path), tmp_path)
    first.respond("help")
    assert first.respond("no").actions == []
    first.checks.close()
    second = assistant_with(engine, synthesizer, EmergencyCheckStore(path), tmp_path)
    assert second.resume_emergency_check() is None
    assert second.actions == []


@pytest.mark.parametrize(
    ("first", "answer", "alerts"), [("help", "no", []), ("help, I fell", "yes", ["emergency"])]
)
def test_a_reminder_due_during_do_you_need_help_waits_for_the_answer(
    engine, synthesizer, tmp_path, first, answer, alerts
) -> None:
    """A reminder's question ("have you taken it?") spoken while "do you need help?" (or
    the listening after an alert) waits for her answer took that answer: her "no" to the
    pills stood the emergency down, her "yes" to them recorded nothing. The reminder now
    waits until the question is answered, then comes."""
    berlin = ZoneInfo("Europe/Berlin")
    clock = Clock(dt.datetime(2026, 11, 23, 7, 59, 50, tzinfo=berlin))
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=berlin)
    store.put(Reminder("pills", "medication", "take your metformin", Schedule(DAILY, "08:00"),
                       medication="metformin"), clock())  # fmt: skip
    said: list[str] = []
    voice = Voice(synthesizer, WavRecorder(tmp_path / "reply.wav"))
    actions: list = []
    assistant = Assistant(engine, voice, routines=CareRoutines(store, lambda body: None),
                          clock=clock, on_say=said.append,
                          on_action=lambda action, _: actions.append(action))  # fmt: skip
    try:
        assistant.respond(first)
        clock.advance(seconds=10)
        assert not assistant.speak_pending() and said == []  # 8:00: the reminder waits
        assistant.respond(answer)  # the emergency's answer, not the pills'
        assert [action.kind for action in actions] == alerts
        assert assistant.dialog.pending is None
        assert assistant.speak_pending() and "metformin" in said[0]  # now it comes
    finally:
        store.close()


def test_the_command_alerts_for_a_question_its_last_run_left_open(tmp_path) -> None:
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"))
    reply = str(tmp_path / "r.wav")
    asked = run_cli("run", "--offline", "--text", "help", "--once", "--reply-wav", reply, env=env)
    assert asked.returncode == 0, asked.stderr
    assert turn_lines(asked.stdout)["reply"] == replies.EMERGENCY_CHECK
    # The next start: the alert comes first, before the request typed now.
    later = run_cli(
        "run", "--offline", "--text", "what time is it", "--once", "--reply-wav", reply, env=env
    )
    assert later.returncode == 0, later.stderr
    replies_said = [line.removeprefix("reply: ") for line in later.stdout.splitlines()]
    said = [line for line in replies_said if not line.startswith(("heard:", "intent:"))]
    assert said[0] == replies.EMERGENCY_SENT["help"]
    assert "never answered" in later.stderr


def test_a_check_left_open_alerts_even_when_the_speech_model_will_not_load(
    tmp_path, broker: Mosquitto
) -> None:
    """The power went while "do you need help?" waited; at the next start the recognizer's
    model is missing. The alert used to be raised only once voice, recognizer and wake word
    were set up, so the start failed before it, and at every start after: it never went
    out. It goes out as soon as the device can send, whatever fails after."""
    state = tmp_path / "state"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        '[device]\nhousehold = "h1"\ndevice_id = "d1"\n'
        f'[paths]\nstate_dir = "{state}"\nmodels_dir = "{tmp_path / "no-models"}"\n'
        '[recognizer]\nengine = "vosk"\n'
    )
    store = EmergencyCheckStore(state / CHECK_FILE)
    store.asked({"kind": "fall"}, ASKED_AT)
    store.close()
    silence = tmp_path / "silence.wav"
    write_wav(silence, np.zeros(16000, np.int16))
    with Backend(broker, household="h1") as backend:
        reply = str(tmp_path / "r.wav")
        started = run_cli("--config", str(config), "run", "--input", str(silence),
                          "--no-wake", "--once", "--reply-wav", reply)  # fmt: skip
        assert started.returncode != 0 and "vosk" in started.stderr  # the model is missing
        assert backend.wait_until(lambda: backend.ids("alert.emergency"), timeout=15)
        [alert] = [m for m in backend.handled if m.type == "alert.emergency"]
        assert alert.body.kind == "fall"
    again = EmergencyCheckStore(state / CHECK_FILE)
    assert again.left_open() is None  # alerted once, not at every start
    again.close()


def test_the_alert_at_start_goes_on_when_the_disk_refuses_to_settle_the_check(tmp_path) -> None:
    """The check's file refuses writes at the next start: the alert is raised, and the
    start goes on (it stopped there, at every start, each one alerting again)."""
    checks = EmergencyCheckStore(tmp_path / CHECK_FILE)
    checks.asked({"kind": "fall"}, ASKED_AT)
    checks._db.execute("PRAGMA query_only = ON")
    raised: list[dict[str, str]] = []
    assert alert_left_open(checks, raised.append) == {"kind": "fall"}
    assert raised == [{"kind": "fall"}]
    checks.close()


def test_a_check_the_disk_refuses_is_still_asked_and_acted_on(
    engine, synthesizer, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """The check's file refuses writes (SQLite's own refusal, as on a disk remounted
    read-only): only surviving a restart is lost, not the question or the alert."""
    checks = EmergencyCheckStore(tmp_path / CHECK_FILE)
    checks._db.execute("PRAGMA query_only = ON")
    assistant = assistant_with(engine, synthesizer, checks, tmp_path)
    assert assistant.respond("help").reply == replies.EMERGENCY_CHECK
    assert "the emergency check could not be written down" in caplog.text
    turn = assistant.respond("yes")
    assert [(a.kind, a.slots) for a in assistant.actions] == [("emergency", {"kind": "help"})]
    assert turn.reply == replies.EMERGENCY_SENT["help"]
    checks.close()
