"""A medication reminder answered out loud: synthesised speech (several flite voices)
through the real loop and recognizer, on a clock that moves with the audio (and jumps
where the test says), so that minutes pass without waiting for them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from assistant import replies
from assistant.config import EndpointConfig, SpeechOutputConfig
from assistant.endpoint import frames_of
from assistant.loop import Assistant, Turn
from assistant.reminders import Reminder, ReminderPolicy, ReminderStore
from assistant.routines import CareRoutines
from assistant.schedule import DAILY, Schedule
from assistant.speech.tts import SpeechSynthesizer
from assistant.speech.wake import WakeWordSpotter
from assistant.voice import Voice, WavRecorder
from protocol import MissedMedicationAlert, ReminderMissed, ReminderTaken
from tests.clock import Clock

BERLIN = ZoneInfo("Europe/Berlin")
FRAME_S = 0.03


class AudioClock(Clock):
    """Local time that moves 30 ms with every frame the loop takes."""

    def frames(self, samples: np.ndarray) -> Iterator[bytes]:
        for frame in frames_of(samples):
            self.advance(seconds=FRAME_S)
            yield frame


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), np.int16)


@pytest.fixture
def parts(tmp_path: Path, engine, command_recognizer):
    clock = AudioClock(dt.datetime(2026, 11, 23, 7, 59, 59, tzinfo=BERLIN))
    store = ReminderStore(tmp_path / "reminders.sqlite3", tz=BERLIN, policy=ReminderPolicy())
    store.put(
        Reminder("bp", "medication", "take your blood pressure pills", Schedule(DAILY, "08:00"),
                 medication="blood pressure pills"),
        dt.datetime(2026, 11, 23, 7, 0, tzinfo=BERLIN),
    )  # fmt: skip
    sent: list = []
    said: list[str] = []
    routines = CareRoutines(store, sent.append)
    voice = Voice(SpeechSynthesizer(SpeechOutputConfig()), WavRecorder(tmp_path / "said.wav"))
    assistant = Assistant(
        engine,
        voice,
        recognizer=command_recognizer,
        wake=WakeWordSpotter("hey helper"),
        endpoint=EndpointConfig(),
        clock=clock,
        routines=routines,
        on_say=said.append,
        chime=False,
    )
    yield assistant, clock, sent, said
    store.close()


def answer_after_reminder(speech, text: str, voice: str) -> np.ndarray:
    """Two seconds of quiet (the reminder is said at 08:00 in there), then the answer."""
    return np.concatenate([silence(2.0), speech.samples(speech.flite(text, voice)), silence(2.0)])


@pytest.mark.parametrize("voice", ["slt", "rms", "awb"])
def test_i_took_it_confirms_the_reminder(parts, speech, voice: str) -> None:
    assistant, clock, sent, said = parts
    audio = answer_after_reminder(speech, "I took it.", voice)
    turns = list(assistant.listen(clock.frames(audio)))  # no wake word: it asked
    assert said == ["It is time to take your blood pressure pills. Have you taken it?"]
    assert [t.intent for t in turns][:1] == ["confirm_medication_taken"]
    assert turns[0].reply == replies.taken("blood pressure pills")
    [taken] = sent
    assert isinstance(taken, ReminderTaken) and taken.reminder_id == "bp"


@pytest.mark.parametrize("voice", ["rms", "kal16"])
def test_remind_me_in_ten_minutes_says_it_again_ten_minutes_later(
    parts, speech, voice: str
) -> None:
    assistant, clock, sent, said = parts
    audio = np.concatenate(
        [answer_after_reminder(speech, "remind me in ten minutes.", voice), silence(10.0)]
    )
    turns: list[Turn] = []
    for turn in assistant.listen(clock.frames(audio)):
        turns.append(turn)
        if turn.intent == "snooze_reminder":
            clock.advance(minutes=10)  # ten minutes pass in the quiet that follows
    assert turns[0].intent == "snooze_reminder" and turns[0].reply == replies.snoozed(10)
    assert said == ["It is time to take your blood pressure pills. Have you taken it?"] * 2
    # ... and the quiet after the second one is taken as no answer, said kindly
    assert turns[-1].end_reason == "no_speech" and turns[-1].reply == replies.REMINDER_SILENCE
    assert sent == []


def test_silence_repeats_it_then_the_family_service_is_told(parts) -> None:
    assistant, clock, sent, said = parts
    turns: list[Turn] = []
    for turn in assistant.listen(clock.frames(silence(40.0))):
        turns.append(turn)
        clock.advance(minutes=10)  # each unanswered question: ten minutes to the next
    assert [t.reply for t in turns] == [replies.REMINDER_SILENCE] * 3
    assert said[0].startswith("It is time to take your blood pressure pills.")
    assert said[2].endswith("If I do not hear from you, I will let your family know.")
    assert said[3].startswith("I have let your family know")
    assert [type(m) for m in sent] == [ReminderMissed, MissedMedicationAlert]
