"""Household noise, generated (seeded): white and pink noise, a running tap, the babble of
five talkers, and a TV (one talker with some room noise). The wake-word evaluation set
(tests/wake_set.py) and the wake network's training (assistant/wake_train.py) both use it,
each with its own seed and its own talkers."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from assistant.pcm import RATE

KINDS = ("white", "pink", "babble", "tap", "tv")
Talker = Callable[[int, float], np.ndarray]  # (index, seconds) → float64 speech


class HouseholdNoise:
    """`noise(kind)`: a stretch of one kind, normalised to unit power, made once and kept;
    `talker(index, seconds)` supplies the speech of babble and TV."""

    def __init__(self, seed: int, talker: Talker, seconds: float = 60.0) -> None:
        self.seed = seed
        self.talker = talker
        self.seconds = seconds
        self._made: dict[str, np.ndarray] = {}

    def noise(self, kind: str) -> np.ndarray:
        if kind not in self._made:
            rng = np.random.default_rng([self.seed, sum(map(ord, kind))])
            n = int(RATE * self.seconds)
            if kind == "white":
                out = rng.normal(0, 1, n)
            elif kind == "pink":
                out = shaped(rng.normal(0, 1, n), lambda f: 1 / np.sqrt(np.maximum(f, 20)))
            elif kind == "tap":  # running water: hiss between 400 Hz and 6 kHz, fluttering
                hiss = shaped(rng.normal(0, 1, n), lambda f: ((f > 400) & (f < 6000)) * 1.0)
                flutter = shaped(rng.normal(0, 1, n), lambda f: (f < 8) * 1.0)
                out = hiss * (1 + 0.5 * flutter / (np.abs(flutter).max() + 1e-9))
            elif kind == "babble":  # five talkers at once
                out = np.sum([self.talker(i, self.seconds) for i in range(5)], axis=0)
            elif kind == "tv":  # one talker with some room noise
                out = self.talker(7, self.seconds) + 0.05 * self.noise("pink")[:n]
            else:
                raise ValueError(f"unknown noise kind {kind!r}")
            self._made[kind] = out / (np.sqrt(np.mean(out**2)) + 1e-9)
        return self._made[kind]

    def slice(self, kind: str, length: int, rng: random.Random) -> np.ndarray:
        """`length` samples of one kind from a random place (looped)."""
        noise = self.noise(kind)
        start = rng.randrange(len(noise))
        return noise[(start + np.arange(length)) % len(noise)]


def back_to_back(
    utterance: Callable[[], np.ndarray], rng: random.Random, seconds: float
) -> np.ndarray:
    """A talker's speech for babble or TV: `utterance()` after `utterance()` with 0.1-0.5 s
    between them (drawn from `rng` after each), cut to `seconds`, as float64."""
    parts: list[np.ndarray] = []
    total = 0
    while total < seconds * RATE:
        speech = utterance()
        parts += [speech, np.zeros(int(RATE * rng.uniform(0.1, 0.5)), np.int16)]
        total += len(speech) + len(parts[-1])
    return np.concatenate(parts)[: int(seconds * RATE)].astype(np.float64)


def shaped(white: np.ndarray, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """White noise through a spectral gain `gain(frequency in Hz)`."""
    spectrum = np.fft.rfft(white)
    spectrum *= gain(np.fft.rfftfreq(len(white), 1 / RATE))
    return np.fft.irfft(spectrum, len(white))
