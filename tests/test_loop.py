"""The loop in process: wake → listen → recognise → understand → answer, on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.config import EndpointConfig, SpeechOutputConfig
from assistant.endpoint import frames_of
from assistant.loop import Assistant
from assistant.pcm import read_wav, rms_dbfs
from assistant.speech.tts import SpeechSynthesizer
from assistant.speech.wake import WakeWordSpotter
from assistant.voice import Voice, WavRecorder
from tests.speech import FLITE_VOICES

WAKE_AND_COMMAND = "hey helper. I need a video consultation."


@pytest.fixture(scope="module")
def synthesizer() -> SpeechSynthesizer:
    return SpeechSynthesizer(SpeechOutputConfig())


@pytest.fixture(scope="module")
def wake() -> WakeWordSpotter:
    return WakeWordSpotter("hey helper")


def make_assistant(engine, recognizer, synthesizer, wake, reply_path) -> Assistant:
    voice = Voice(synthesizer, WavRecorder(reply_path))
    return Assistant(engine, voice, recognizer=recognizer, wake=wake, endpoint=EndpointConfig())


def run_turns(
    assistant: Assistant, samples: np.ndarray, wake_required: bool = True, tail_s: float = 2.0
):
    tail = np.zeros(int(16000 * tail_s), np.int16)
    return list(assistant.listen(frames_of(np.concatenate([samples, tail])), wake_required))


@pytest.mark.parametrize("voice", FLITE_VOICES)
def test_wake_then_consultation_request_is_answered(
    voice, speech, engine, command_recognizer, synthesizer, wake, tmp_path
) -> None:
    samples = speech.samples(speech.flite(WAKE_AND_COMMAND, voice))
    reply = tmp_path / "reply.wav"
    turns = run_turns(make_assistant(engine, command_recognizer, synthesizer, wake, reply), samples)
    assert len(turns) == 1
    turn = turns[0]
    assert "video consultation" in turn.heard
    assert turn.intent == "request_consultation"
    assert turn.slots == {"mode": "video"}
    assert turn.end_reason == "end_of_speech"
    spoken = read_wav(reply, rate=22050)
    assert len(spoken) > 22050 * 2  # a sentence, not a blip
    assert rms_dbfs(spoken) > -40


def test_two_requests_in_a_row_each_need_the_wake_phrase(
    speech, engine, command_recognizer, synthesizer, wake, tmp_path
) -> None:
    first = speech.samples(speech.flite("hey helper. what time is it?", "rms"), tail_s=1.5)
    unwoken = speech.samples(speech.flite("call my daughter.", "rms"), tail_s=1.5)
    second = speech.samples(speech.flite("hey helper. help, I fell.", "rms"))
    assistant = make_assistant(engine, command_recognizer, synthesizer, wake, tmp_path / "r.wav")
    # The tail outlasts the no-speech timeout of the follow-up listening after the alert.
    turns = run_turns(assistant, np.concatenate([first, unwoken, second]), tail_s=8.0)
    assert [t.intent for t in turns[:2]] == ["what_time", "emergency"]
    assert turns[1].slots == {"kind": "fall"}
    assert [a.kind for a in turns[1].actions] == ["emergency"]
    # After an alert the assistant keeps listening without the wake phrase; silence there
    # is answered with reassurance and no second alert.
    assert turns[2].end_reason == "no_speech" and turns[2].actions == []
    assert "still here" in turns[2].reply


def test_a_question_is_answered_without_the_wake_phrase(
    speech, engine, command_recognizer, synthesizer, wake, tmp_path
) -> None:
    request = speech.samples(speech.flite("hey helper. call my daughter.", "slt"), tail_s=1.2)
    answer = speech.samples(speech.flite("yes.", "slt"))
    assistant = make_assistant(engine, command_recognizer, synthesizer, wake, tmp_path / "r.wav")
    turns = run_turns(assistant, np.concatenate([request, answer]))
    assert turns[0].intent == "call_family" and turns[0].expects_answer
    assert turns[0].actions == []
    assert turns[1].intent == "yes"
    assert [(a.kind, a.slots) for a in turns[1].actions] == [
        ("call_family", {"contact": "daughter"})
    ]


def test_silence_is_answered_with_nothing_heard(
    engine, command_recognizer, synthesizer, tmp_path
) -> None:
    assistant = make_assistant(engine, command_recognizer, synthesizer, None, tmp_path / "r.wav")
    turns = run_turns(assistant, np.zeros(16000 * 8, np.int16), wake_required=False)
    assert turns[0].end_reason == "no_speech"
    assert turns[0].intent is None
    assert "did not hear" in turns[0].reply


def test_white_noise_never_becomes_a_command(
    engine, command_recognizer, synthesizer, tmp_path
) -> None:
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 4000, 16000 * 6).astype(np.int16)
    assistant = make_assistant(engine, command_recognizer, synthesizer, None, tmp_path / "r.wav")
    turns = run_turns(assistant, noise, wake_required=False)
    assert turns, "the loop must answer, not hang"
    assert all(t.intent is None for t in turns)


def test_white_noise_does_not_wake(speech, engine, command_recognizer, synthesizer, wake, tmp_path):
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 3000, 16000 * 20).astype(np.int16)
    assistant = make_assistant(engine, command_recognizer, synthesizer, wake, tmp_path / "r.wav")
    assert run_turns(assistant, noise) == []


def test_clipped_speech_is_not_mistaken_for_another_request(
    speech, engine, command_recognizer, synthesizer, tmp_path
) -> None:
    """A shout into the microphone, badly clipped. Since the grammar answer needs
    similarity 70 with the free transcript (measured: out-of-domain false accepts 26/48 at
    50, 4/48 at 70), this one is sometimes not understood; it must then be a request to say
    it again, never another action."""
    clean = speech.samples(speech.flite("I need a video consultation.", "kal16"))
    clipped = np.clip(clean.astype(np.int32) * 16, -32768, 32767).astype(np.int16)
    assert np.mean(np.abs(clipped.astype(np.int32)) >= 32767) > 0.02  # really clipped
    assistant = make_assistant(engine, command_recognizer, synthesizer, None, tmp_path / "r.wav")
    turns = run_turns(assistant, clipped, wake_required=False)
    assert turns[0].intent in ("request_consultation", None)
    assert turns[0].intent or turns[0].reply.startswith("Sorry, I did not understand")
    assert not turns[0].actions


def test_out_of_domain_speech_gets_not_understood(
    speech, engine, command_recognizer, synthesizer, tmp_path
) -> None:
    assistant = make_assistant(engine, command_recognizer, synthesizer, None, tmp_path / "r.wav")
    for text, voice in [("play some music.", "slt"), ("good morning, how are you?", "awb")]:
        turns = run_turns(assistant, speech.samples(speech.flite(text, voice)), False)
        assert turns[0].intent is None, (text, turns[0].heard)
        assert turns[0].reply.startswith("Sorry")


def test_repeat_says_the_last_answer_again(engine, synthesizer, tmp_path) -> None:
    assistant = make_assistant(engine, None, synthesizer, None, tmp_path / "r.wav")
    first = assistant.respond("I need a phone consultation")
    again = assistant.respond("say that again")
    assert again.reply == first.reply


def test_an_unconfirmed_emergency_is_checked_then_alerted_on_silence(
    engine, synthesizer, tmp_path
) -> None:
    """The recognizer keeps an emergency phrase its free model could not confirm (noise):
    the assistant asks first, and alerts when no answer comes."""
    assistant = make_assistant(engine, None, synthesizer, None, tmp_path / "r.wav")
    turn = assistant.respond("help i fell", verified=False)
    assert turn.intent == "emergency" and turn.actions == [] and turn.expects_answer
    later = assistant.no_answer()
    assert [(a.kind, a.slots) for a in later.actions] == [("emergency", {"kind": "fall"})]


def test_a_confirmed_emergency_alerts_at_once(engine, synthesizer, tmp_path) -> None:
    assistant = make_assistant(engine, None, synthesizer, None, tmp_path / "r.wav")
    turn = assistant.respond("help i fell")
    assert [a.kind for a in turn.actions] == ["emergency"]


def test_a_groan_after_the_emergency_check_still_alerts(engine, synthesizer, tmp_path) -> None:
    """Speech was heard but no word made out (the transcript is empty): the unclear
    answer to "do you need help?" alerts, and the alert is stored, not a crash."""
    from assistant.actions import ActionHandler
    from assistant.config import MqttConfig
    from assistant.link import Link

    link = Link(MqttConfig(port=1), household="h1", device="d1", state_dir=tmp_path / "state")
    try:
        handler = ActionHandler(link.publish)
        voice = Voice(synthesizer, WavRecorder(tmp_path / "r.wav"))
        assistant = Assistant(engine, voice, on_action=handler)
        assert assistant.respond("help").expects_answer
        turn = assistant.respond("")
        assert [a.kind for a in turn.actions] == ["emergency"]
        assert len(link.outbox) == 1 and list(handler.sent.values()) == ["alert.emergency"]
    finally:
        link.close()


def test_an_action_that_cannot_be_stored_does_not_stop_the_assistant(
    engine, synthesizer, tmp_path, caplog
) -> None:
    from assistant.actions import ActionHandler

    def full_disk(body):
        raise OSError(28, "No space left on device")

    voice = Voice(synthesizer, WavRecorder(tmp_path / "r.wav"))
    assistant = Assistant(engine, voice, on_action=ActionHandler(full_disk))
    turn = assistant.respond("help i fell")
    assert [a.kind for a in turn.actions] == ["emergency"]
    assert "could not be stored" in caplog.text
    assert assistant.respond("what time is it").reply  # still serving
