"""Endpointing that suits older speakers, on a fixed part of tests/endpoint_set.py (the
whole of it: `python -m bench --only wake --wake-full`): every request is answered within
0.5 s of its last word, and a pause of 1.0-1.2 s inside a request does not cut it.

The part: a slowed voice (slt at stretch 1.35), awb and kal16, the voices the recognizer
mishears most (README, "Wake word and endpointing"); 24 utterances, about 30 s."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from assistant.config import EndpointConfig
from assistant.endpoint import CompleteRequest
from assistant.speech.recognizer import Recognizer, Transcript
from assistant.speech.sphinx import SAMPLES_PER_FRAME, _words_before_the_pause
from tests.endpoint_set import measure
from tests.wake_set import WakeSet

PART = (("slt", 1.35), ("awb", 1.0), ("kal16", 1.0))


@pytest.fixture(scope="module")
def fresh_recognizer(engine):
    """pocketsphinx as `run` builds it, used by no other test: what a decoder heard before
    can change its answer at the margin (assistant/speech/sphinx.py)."""
    from assistant.speech.sphinx import PocketsphinxRecognizer

    recognizer = PocketsphinxRecognizer()
    recognizer.set_grammar(engine.grammar())
    return recognizer


def test_prompt_end_and_no_cut_at_a_mid_sentence_pause(engine, fresh_recognizer) -> None:
    wake_set = WakeSet()
    cut, not_ended, slow, ended = [], [], [], 0
    for voice, stretch in PART:
        figures = measure(wake_set, fresh_recognizer, engine, voices=(voice,), stretches=(stretch,))
        cut += figures["cut"]
        not_ended += figures["not_ended"]
        slow += figures["slower_than_0.5_s"]
        ended += figures["whole"]["ended"] + figures["paused"]["ended"]
    assert cut == [] and not_ended == [] and ended == 24
    # Ended at the short pause (300 ms), not the long one (1.5 s), also where the recognizer
    # mishears the request and it is answered "sorry?" (at first 9 of these 24 waited 1.5 s,
    # kal16's "help, I fell" among them; then 2). Not yet every one: where the grammar hears
    # neither a whole phrase nor words the intents understand, the long pause decides. Here
    # one request with a pause: kal16's "I need ... a doctor", "i'm a bit fed up for" to the
    # grammar and "i made that offer" to the free model.
    assert len(slow) <= 1, slow
    assert all("..." in label for label in slow), slow  # every whole request was prompt


def test_without_the_check_a_long_pause_still_holds_the_utterance(engine) -> None:
    """The pause alone (no recognizer to say a request is whole) never cuts at 1.2 s."""
    from assistant.endpoint import Endpointer, frames_of
    from tests.endpoint_set import spoken_cases

    config = EndpointConfig()
    for case in spoken_cases(WakeSet(), voices=("awb",), stretches=(1.0,)):
        endpointer = Endpointer(config)
        for frame in frames_of(case.samples):
            utterance = endpointer.feed(frame)
            if utterance is not None:
                assert utterance.decided_s > case.speech_end_s, case.label
                break
        else:
            raise AssertionError(f"{case.label}: never ended")


class _Heard(Recognizer):
    """Hears what it is told to."""

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript

    def set_grammar(self, grammar) -> list[str]:
        return []

    def start(self) -> None:
        pass

    def accept(self, pcm: bytes) -> Transcript | None:
        return None

    def finish(self) -> Transcript:
        return self.transcript


@pytest.mark.parametrize(
    ("text", "whole_phrase", "grammar_words", "ends"),
    [
        ("call my daughter", True, None, True),  # understood
        ("help i fell", None, None, True),  # understood, whatever the grammar said
        ("fall nine dollar", True, None, True),  # misheard, but the grammar heard a whole phrase
        ("call my", False, None, False),  # the start of a request: wait for the rest
        ("coal mine", False, None, False),
        ("coal mine", False, "call my", False),  # confirmed, but only the start of a request
        ("coal mine", None, None, False),  # no grammar to ask: only what is understood ends
        # Misheard by the free model, off every phrase to the grammar, but the grammar's
        # words are confirmed and understood: they end it, and they are what is answered.
        ("call my vote for", False, "call my girl for", True),
    ],
)
def test_a_short_pause_ends_unless_only_the_start_of_a_request_was_heard(
    engine, text: str, whole_phrase: bool | None, grammar_words: str | None, ends: bool
) -> None:
    heard = Transcript(text, 0.5, True, whole_phrase=whole_phrase, grammar_words=grammar_words)
    check = CompleteRequest(_Heard(heard), engine)
    check.start()
    check.accept(b"\0\0" * 1600)
    assert check() is ends
    assert (check.transcript is not None) is ends  # reused, not decoded again
    if ends and grammar_words:
        assert check.transcript is not None and check.transcript.text == grammar_words


def test_an_emergency_in_the_grammars_words_alone_is_asked_about(engine) -> None:
    """Out-of-domain speech whose grammar words only resemble the free transcript by their
    letters: the dialog asks "do you need help?" instead of alerting the family at once."""
    heard = Transcript(
        "my neighbor had to fall last week",
        0.5,
        True,
        whole_phrase=False,
        grammar_words="my neighbor has had a fall off stool please",
    )
    check = CompleteRequest(_Heard(heard), engine)
    check.start()
    check.accept(b"\0\0" * 1600)
    assert check() is True
    assert check.transcript is not None
    assert check.transcript.text == "my neighbor has had a fall off stool please"
    assert check.transcript.verified is False


@dataclass
class _Segment:
    word: str
    start_frame: int
    end_frame: int


class _Decoded:
    """A decoder's word segments (pocketsphinx counts 100 frames a second)."""

    def __init__(self, *segments: tuple[str, int, int]) -> None:
        self.segments = [_Segment(word, start, end) for word, start, end in segments]

    def seg(self) -> list[_Segment]:
        return self.segments


def _speech_then_pause(speech_frames: int, frames: int = 120) -> np.ndarray:
    """Loud noise for `speech_frames` 10 ms frames, then a faint floor to `frames`."""
    rng = np.random.default_rng(3)
    samples = rng.normal(0, 30, frames * SAMPLES_PER_FRAME)
    samples[: speech_frames * SAMPLES_PER_FRAME] *= 100
    return samples.astype(np.int16)


@pytest.mark.parametrize(
    ("segments", "speech_frames", "text", "before"),
    [
        # "wife" runs on to the end of the 1.2 s heard with 0.13 s of it before the 0.4 s
        # pause: fitted into the pause, left out
        ((("call", 10, 40), ("my", 41, 66), ("wife", 67, 119)), 80, "call my wife", "call my"),
        # a whole phrase padded with the start of a longer one
        (
            (("find", 0, 30), ("the", 31, 45), ("doctor(2)", 46, 80), ("with(2)", 81, 119)),
            85,
            "find the doctor with",
            "find the doctor",
        ),
        # the last word ended 0.4 s before the end: said, and kept
        (
            (("call", 0, 45), ("my", 46, 60), ("girl", 61, 70), ("for(2)", 71, 80)),
            80,
            "call my girl for",
            "call my girl for",
        ),
        # runs on to the end, but 0.35 s of it is before the pause: said and stretched, kept
        ((("no", 5, 30), ("i", 31, 49), ("don't", 50, 119)), 85, "no i don't", "no i don't"),
        # the same word with a longer pause (measured, not assumed): fitted, left out
        ((("no", 5, 30), ("i", 31, 49), ("don't", 50, 119)), 60, "no i don't", "no i"),
        ((), 80, "", ""),
    ],
)
def test_a_last_word_fitted_into_the_pause_is_left_out(
    segments: tuple[tuple[str, int, int], ...], speech_frames: int, text: str, before: str
) -> None:
    samples = _speech_then_pause(speech_frames)  # 1.2 s
    assert _words_before_the_pause(_Decoded(*segments), text, samples) == before.split()
