"""The one interface every speech recognizer offers the loop.

Feed 16 kHz mono 16-bit PCM, get partial and final transcripts with a confidence, and
optionally constrain recognition to a list of phrases (the intents' sentences).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from intents.grammar import Grammar, normalize_phrase

log = logging.getLogger(__name__)


class RecognizerError(Exception):
    """A recognizer cannot be created or used (missing or damaged model, bad grammar)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float  # 0..1, engine-specific but monotone: higher is surer
    final: bool
    # False: the grammar's answer, kept although free recognition did not confirm it,
    # because it is urgent (an emergency); the dialog asks before it acts on it.
    verified: bool = True
    # With a grammar: did the grammar's search place the audio as a whole phrase (True), or
    # only as the start of one, or nowhere (False)? A last word fitted into a pause at the
    # end is left out first. Not the same as being understood: the endpointer asks it to
    # tell a senior who has finished from one who paused mid-request.
    # None: the recognizer has no grammar search to ask.
    whole_phrase: bool | None = None
    # With a grammar: the grammar search's words (before the pause, as for whole_phrase) when
    # free recognition confirms them, whole phrase or not: slowed speech often ends off every
    # phrase ("call my girl for"), and the endpointer asks the intents about them too.
    # None: no words confirmed, or no grammar search.
    grammar_words: str | None = None


def unique_phrases(phrases: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for phrase in phrases:
        norm = normalize_phrase(phrase)
        if norm:
            seen.setdefault(norm, None)
    return list(seen)


def sayable_phrases(phrases: Iterable[str], knows: Callable[[str], bool], model: str) -> list[str]:
    """The normalised phrases whose every word the model `knows`; the rest are logged.

    Raises RecognizerError when none is left: a recognizer listening for nothing would
    answer every request with silence."""
    candidates = unique_phrases(phrases)
    if not candidates:
        raise RecognizerError("the grammar is empty")
    kept, missing = [], set()
    for phrase in candidates:
        unknown = [word for word in phrase.split() if not knows(word)]
        missing.update(unknown)
        if not unknown:
            kept.append(phrase)
    if missing:
        log.warning(
            "grammar phrases with words the %s lacks are left out: %s",
            model,
            ", ".join(sorted(missing)[:20]),
        )
    if not kept:
        raise RecognizerError(
            f"none of the grammar phrases can be said with the {model} "
            "(is it a model for this language?)"
        )
    return kept


class Recognizer(abc.ABC):
    """Streaming recognizer: start(), accept() any number of times, finish()."""

    name: str = "recognizer"

    @abc.abstractmethod
    def set_grammar(self, grammar: Grammar | Sequence[str] | None) -> list[str]:
        """Listen only for this grammar or these phrases (None: free recognition).

        Returns the phrases kept (for a Grammar: those of its phrase list the model can say).
        A refused grammar leaves the recognizer as it was."""

    @abc.abstractmethod
    def start(self) -> None:
        """Begin a new utterance."""

    @abc.abstractmethod
    def accept(self, pcm: bytes) -> Transcript | None:
        """Take more audio; returns a partial transcript when it changed."""

    @abc.abstractmethod
    def finish(self) -> Transcript:
        """End the utterance and return the final transcript (empty text: nothing heard)."""

    def transcribe(self, pcm: bytes, chunk_bytes: int = 3200) -> Transcript:
        """Recognise a whole utterance, fed in chunks as a stream would be."""
        self.start()
        for i in range(0, len(pcm), chunk_bytes):
            self.accept(pcm[i : i + chunk_bytes])
        return self.finish()
