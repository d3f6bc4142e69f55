"""Training the wake network (assistant/wake_train.py): what it trains on keeps the
evaluation set's voices out, the confusables it must refuse, and how windows are labelled.
The whole training (~10 min) is not run here; the shipped network it made is judged by
tests/test_wake.py."""

from __future__ import annotations

import json

import numpy as np

from assistant.speech.wake_features import HOP, WINDOW_FRAMES
from assistant.speech.wake_net import DEFAULT_CONFIRM, DEFAULT_MODEL, WakeNet
from assistant.wake_train import (
    FLITE_STRETCHES,
    POSITIVE_AFTER,
    Network,
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


def test_the_training_gradient_is_the_loss_slope() -> None:
    """Backpropagation through the time convolutions and dense layers agrees with the
    loss's measured slope (central differences) for every layer's weights and biases."""
    rng = np.random.default_rng(3)
    net = Network([(5, 2, 6), (3, 2, 5)], [4], rng)
    net.weights = [w.astype(np.float64) for w in net.weights]  # slopes measured finely
    net.biases = [b.astype(np.float64) + 0.1 for b in net.biases]
    x = rng.normal(size=(6, 75 * 40))
    y = np.array([1, 0, 1, 0, 0, 1], np.float64)
    weight = np.array([1, 2, 1, 1, 3, 1], np.float64)

    def loss() -> float:
        p = 1 / (1 + np.exp(-net.logits(x).astype(np.float64)))
        return float(-np.sum(weight * (y * np.log(p) + (1 - y) * np.log(1 - p))) / weight.sum())

    _, grads = net.gradients(x, y, weight, rng, dropout=0.0, l2=0.0)
    for param, grad in zip(net.weights + net.biases, grads, strict=True):
        assert param.shape == grad.shape
        for flat in rng.choice(param.size, min(3, param.size), replace=False):
            at = np.unravel_index(flat, param.shape)
            param[at] += 1e-6
            up = loss()
            param[at] -= 2e-6
            down = loss()
            param[at] += 1e-6
            assert abs((up - down) / 2e-6 - grad[at]) < 1e-6 + 1e-3 * abs(grad[at])


def test_a_saved_network_gives_the_same_scores(tmp_path) -> None:
    rng = np.random.default_rng(4)
    net = Network([(5, 2, 8)], [6], rng)
    x = rng.normal(size=(5, 75 * 40)).astype(np.float32)
    mean, scale = np.zeros(x.shape[1], np.float32), np.ones(x.shape[1], np.float32)
    WakeNet("hey helper", mean, scale, net.weights, net.biases, {}, net.convolutions).save(
        tmp_path / "n.npz"
    )
    loaded = WakeNet.load(tmp_path / "n.npz")
    assert loaded.convolutions == [(5, 2)]
    assert np.allclose(loaded.logits(x), net.logits(x), atol=2e-2)  # float16 weights


def test_a_saved_network_keeps_its_front_end(tmp_path) -> None:
    """The second network hears PCEN: saved and loaded so, and the stream it is given
    computes PCEN (a log network's file is as it was: the shipped one still loads)."""
    from assistant.speech.wake_features import LOG, PCEN

    rng = np.random.default_rng(5)
    net = Network([(5, 2, 8)], [6], rng)
    mean, scale = np.zeros(75 * 40, np.float32), np.ones(75 * 40, np.float32)
    WakeNet("hey helper", mean, scale, net.weights, net.biases, {}, net.convolutions,
            PCEN).save(tmp_path / "p.npz")  # fmt: skip
    assert WakeNet.load(tmp_path / "p.npz").front_end == PCEN
    assert WakeNet.load(DEFAULT_MODEL).front_end == LOG
    assert WakeNet.load(DEFAULT_CONFIRM).front_end == PCEN
