"""Household noise (assistant/household_noise.py): slices loop the made noise, so a scene
longer than it, or starting near its end, gets the noise from its start again."""

from __future__ import annotations

import random

import numpy as np

from assistant.household_noise import HouseholdNoise
from assistant.pcm import RATE


def talker(index: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(index)
    return rng.normal(0, 1, int(RATE * seconds))


def test_a_slice_is_the_looped_noise_from_a_random_place() -> None:
    noise = HouseholdNoise(3, talker, seconds=0.5)
    made = noise.noise("pink")
    assert len(made) == RATE // 2 and abs(np.mean(made**2) - 1) < 1e-6
    for length in (10, len(made) - 1, len(made) + 7, 5 * len(made) // 2):
        rng = random.Random(length)
        start = random.Random(length).randrange(len(made))
        piece = noise.slice("pink", length, rng)
        looped = np.concatenate([made] * (3 + length // len(made)))
        assert np.array_equal(piece, looped[start : start + length])


def test_babble_is_five_talkers_and_the_same_seed_makes_the_same_noise() -> None:
    first, again = HouseholdNoise(5, talker, 0.25), HouseholdNoise(5, talker, 0.25)
    assert np.array_equal(first.noise("babble"), again.noise("babble"))
    summed = np.sum([talker(i, 0.25) for i in range(5)], axis=0)
    assert np.allclose(first.noise("babble"), summed / np.sqrt(np.mean(summed**2)))
    assert not np.array_equal(first.noise("white"), HouseholdNoise(6, talker, 0.25).noise("white"))
