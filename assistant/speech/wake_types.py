"""What every wake-word spotter shares: its detection, its error, and the check that the
phrase is made of words the recognizer's dictionary can spell."""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

from assistant.speech.recognizer import RecognizerError
from intents.grammar import normalize_phrase


class WakeWordError(RecognizerError):
    """The wake phrase cannot be spotted (e.g. a word the dictionary cannot spell)."""


@dataclass(frozen=True)
class WakeDetection:
    phrase: str
    end_sample: int  # where the phrase ended, counted in samples since reset()
    score: float = 0.0  # the spotter's score for it


def checked_phrase(phrase: str) -> str:
    """`phrase` normalised as the recognizer spells it; WakeWordError when it is empty or
    has a word the dictionary lacks (named)."""
    normal = normalize_phrase(phrase)
    if not normal:
        raise WakeWordError("the wake phrase is empty")
    check_spelling(normal)
    return normal


def check_spelling(phrase: str) -> None:
    """Raise WakeWordError naming each word of `phrase` pocketsphinx's dictionary lacks."""
    missing = [word for word in phrase.split() if word not in dictionary_words()]
    if missing:
        raise WakeWordError(
            f"the wake phrase {phrase!r} has words the recognizer cannot spell: "
            + ", ".join(missing)
        )


@functools.cache
def dictionary_words() -> frozenset[str]:
    """The words of the English pronunciation dictionary that ships with pocketsphinx."""
    from assistant.speech.sphinx import model_dir

    words = set()
    with open(os.path.join(model_dir(), "cmudict-en-us.dict"), encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                words.add(_VARIANT.sub("", line.split(maxsplit=1)[0]))  # "read(2)" is "read"
    return frozenset(words)


_VARIANT = re.compile(r"\(\d+\)$")
