"""Training the wake network (assistant/wake_train.py): what it trains on keeps the
evaluation set's voices out, the confusables it must refuse, and how windows are labelled.
The whole training (~10 min) is not run here; the shipped network it made is judged by
tests/test_wake.py."""

from __future__ import annotations

import json

import numpy as np

from assistant.speech.wake_features import HOP, WINDOW_FRAMES
from assistant.wake_train import (
    FLITE_STRETCHES,
    POSITIVE_AFTER,
    Scene,
    Windows,
    confusables,
    frame_ending,
    training_voices,
)
from tests.wake_set import SPEC


def test_no_voice_of_the_evaluation_set_is_trained_on() -> None:
    spec = json.loads(SPEC.read_text())
    voices = training_voices(7)
    assert len(voices) == 64 + 160
    espeak = {v.voice for v in voices if v.engine == "espeak"}
    for voice in spec["voices"]:
        if voice["engine"] == "espeak":
            assert voice["voice"] not in espeak, voice
        else:
            assert voice.get("stretch", 1.0) not in FLITE_STRETCHES, voice


def test_confusables_of_any_phrase_and_the_curated_ones() -> None:
    made = confusables("hello computer")
    assert {"hello", "computer", "a computer", "say computer"} <= set(made)
    assert "hello computer" not in made
    ours = confusables("hey helper")
    assert {"hey helen", "help her", "a helper", "helper", "hey"} <= set(ours)


def test_windows_ending_just_after_the_phrase_are_the_positives() -> None:
    frames = np.zeros((400, 40), np.float32)
    start, end = 100 * HOP, 180 * HOP  # the phrase: frames ~100..180
    windows = Windows([Scene(frames, (start, end)), Scene(frames)])
    last = frame_ending(end)
    positive_ends = {t - WINDOW_FRAMES for k, t in windows.positives}
    assert positive_ends == set(range(last - 2, last + POSITIVE_AFTER + 1))
    negatives = {(k, t - WINDOW_FRAMES) for k, t in windows.negatives}
    # none of the first scene's negatives holds the phrase's end or most of it
    assert all(t < frame_ending(start) + 20 or t > last + 150 for k, t in negatives if k == 0)
    assert sum(k == 1 for k, _ in negatives) == len(range(0, 400, 3))
