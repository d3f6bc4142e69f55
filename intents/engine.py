"""Text → intent with normalised slots.

Exact template matching (hassil) first; then tolerant matching with rapidfuzz against the
sentences the templates expand to, so a recogniser's slip ("video consolation") still lands
on the right intent, with a confidence. Below the threshold the answer is None: "not
understood", never a guess.
"""

from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hassil import Intents, recognize
from hassil.sample import sample_intents
from hassil.util import merge_dict
from rapidfuzz import fuzz, process

log = logging.getLogger(__name__)

SENTENCES_DIR = Path(__file__).resolve().parent
MAX_TEXT_CHARS = 300  # longer input is not a spoken command
MAX_PHRASES = 20000


class IntentsError(Exception):
    """Sentence files that cannot be loaded; the message names the file."""


@dataclass(frozen=True)
class IntentMatch:
    intent: str
    slots: dict[str, str] = field(default_factory=dict)
    confidence: float = 1.0
    method: str = "exact"  # or "fuzzy"


def clean_text(text: str) -> str:
    """Drop control characters and fold white space and case."""
    kept = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    return " ".join(kept.lower().split())


def load_sentence_files(directory: Path) -> Intents:
    files = sorted(Path(directory).glob("*.yaml"))
    if not files:
        raise IntentsError(f"no sentence files (*.yaml) in {directory}")
    merged: dict = {}
    for path in files:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise IntentsError(f"{path}: cannot be read as YAML ({exc})") from None
        if not isinstance(data, dict):
            raise IntentsError(f"{path}: must hold a mapping")
        merge_dict(merged, data)
    try:
        return Intents.from_dict(merged)
    except Exception as exc:  # hassil reports template errors with assorted types
        raise IntentsError(f"{directory}: bad sentence template ({exc})") from None


class IntentEngine:
    def __init__(self, intents: Intents, fuzzy_threshold: float = 80.0) -> None:
        self.intents = intents
        self.fuzzy_threshold = fuzzy_threshold
        self._samples = self._expand()
        self._sample_texts = [text for _, text in self._samples]

    @classmethod
    def from_dir(cls, directory: str | Path, **kwargs: float) -> IntentEngine:
        return cls(load_sentence_files(Path(directory)), **kwargs)

    @classmethod
    def for_language(cls, language: str = "en", **kwargs: float) -> IntentEngine:
        directory = SENTENCES_DIR / language
        if not directory.is_dir():
            raise IntentsError(f"no sentences for language {language!r} in {SENTENCES_DIR}")
        return cls.from_dir(directory, **kwargs)

    def _expand(self) -> list[tuple[str, str]]:
        samples: list[tuple[str, str]] = []
        for intent, text in sample_intents(self.intents):
            samples.append((intent, clean_text(text)))
            if len(samples) >= MAX_PHRASES:
                log.warning(
                    "templates expand to more than %d sentences; the rest are not used "
                    "for tolerant matching or the grammar",
                    MAX_PHRASES,
                )
                break
        return samples

    def phrases(self) -> list[str]:
        """Every sentence the templates can say (for the recognizers' grammars)."""
        return list(dict.fromkeys(self._sample_texts))

    def recognize(self, text: str) -> IntentMatch | None:
        cleaned = clean_text(text)
        if not cleaned or len(cleaned) > MAX_TEXT_CHARS:
            return None
        exact = self._exact(cleaned)
        if exact is not None:
            return exact
        return self._fuzzy(cleaned)

    def _exact(self, text: str) -> IntentMatch | None:
        result = recognize(text, self.intents)
        if result is None:
            return None
        slots = {name: str(entity.value) for name, entity in result.entities.items()}
        return IntentMatch(intent=result.intent.name, slots=slots, confidence=1.0)

    def _fuzzy(self, text: str) -> IntentMatch | None:
        best = process.extractOne(
            text, self._sample_texts, scorer=fuzz.ratio, score_cutoff=self.fuzzy_threshold
        )
        if best is None:
            return None
        _, score, index = best
        exact = self._exact(self._sample_texts[index])
        intent = exact.intent if exact else self._samples[index][0]
        slots = exact.slots if exact else {}
        return IntentMatch(intent=intent, slots=slots, confidence=score / 100.0, method="fuzzy")
