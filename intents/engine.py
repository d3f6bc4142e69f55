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
from hassil import Intents, recognize_all
from hassil.sample import sample_intents
from hassil.util import merge_dict
from rapidfuzz import fuzz, process

from intents.grammar import Grammar, graph_from_templates
from intents.normalize import normalise_slots

log = logging.getLogger(__name__)

SENTENCES_DIR = Path(__file__).resolve().parent
MAX_TEXT_CHARS = 300  # longer input is not a spoken command
FUZZY_THRESHOLD = 85.0  # rapidfuzz ratio; 80 let "what is the weather" become the time
SAMPLES_PER_INTENT = 1500  # sentences per intent kept for tolerant matching and vosk


class IntentsError(Exception):
    """Sentence files that cannot be loaded; the message names the file."""


@dataclass(frozen=True)
class IntentMatch:
    intent: str
    slots: dict[str, str] = field(default_factory=dict)  # normalised values
    confidence: float = 1.0
    method: str = "exact"  # or "fuzzy"
    invalid_slots: tuple[str, ...] = ()  # said, but not understood ("25 o'clock")


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
    def __init__(self, intents: Intents, fuzzy_threshold: float = FUZZY_THRESHOLD) -> None:
        self.intents = intents
        self.fuzzy_threshold = fuzzy_threshold
        try:
            self._samples = self._expand()
            self._graph = graph_from_templates(intents)
        except Exception as exc:  # hassil parses templates lazily, with assorted errors
            raise IntentsError(f"bad sentence template or list ({exc})") from None
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
        samples = sample_intents(self.intents, max_sentences_per_intent=SAMPLES_PER_INTENT)
        return [(intent, clean_text(text)) for intent, text in samples]

    def phrases(self) -> list[str]:
        """Sentences the templates can say, up to SAMPLES_PER_INTENT per intent."""
        return list(dict.fromkeys(self._sample_texts))

    def grammar(self) -> Grammar:
        """What the recognizers should listen for: every closed sentence as a graph, and
        the sampled sentences as a phrase list."""
        return Grammar(graph=self._graph, phrases=self.phrases())

    def recognize(self, text: str) -> IntentMatch | None:
        cleaned = clean_text(text)
        if not cleaned or len(cleaned) > MAX_TEXT_CHARS:
            return None
        exact = self._exact(cleaned)
        if exact is not None:
            return exact
        return self._fuzzy(cleaned)

    def _exact(self, text: str) -> IntentMatch | None:
        # Of every way the templates match, the one that explains the most: most slots
        # filled ("remind me to take {medication} at {time}" over "... {medication}"),
        # then most literal words.
        results = list(recognize_all(text, self.intents))
        if not results:
            return None
        result = max(results, key=lambda r: (len(r.entities), r.text_chunks_matched))
        raw = {name: str(entity.value) for name, entity in result.entities.items()}
        slots, invalid = normalise_slots(raw)
        return IntentMatch(
            intent=result.intent.name, slots=slots, confidence=1.0, invalid_slots=tuple(invalid)
        )

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
        invalid = exact.invalid_slots if exact else ()
        return IntentMatch(
            intent=intent,
            slots=slots,
            confidence=score / 100.0,
            method="fuzzy",
            invalid_slots=invalid,
        )
