"""Text → intent with normalised slots.

Exact template matching (hassil) first. Then, tolerant steps, each tried only when the
one before found nothing:
1. politeness and fillers around the request are set aside ("oh dear, could you call my
   son for me please" → "call my son");
2. words the templates never use are replaced by the nearest word they do use, when it is
   close ("video consolation" → "video consultation"), and the sentence is matched again;
3. the whole sentence is compared with rapidfuzz to the sentences the templates expand to;
   a match that would drop or add a negation ("not feeling well" → "feeling well") is
   refused.
Steps 2 and 3 give a confidence below 1. Below the threshold the answer is None: "not
understood", never a guess.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from hassil import Intents, recognize_all
from hassil.intents import TextSlotList
from hassil.sample import sample_intents
from hassil.util import merge_dict
from rapidfuzz import fuzz, process

from intents.grammar import Grammar, graph_from_templates, normalize_phrase
from intents.normalize import normalise_slots
from intents.repeat import parse_repeat, without_repeat

log = logging.getLogger(__name__)

SENTENCES_DIR = Path(__file__).resolve().parent
EMERGENCY_INTENT = "emergency"
REMINDER_INTENT = "set_medication_reminder"
MAX_TEXT_CHARS = 300  # longer input is not a spoken command
FUZZY_THRESHOLD = 85.0  # rapidfuzz ratio; 80 let "what is the weather" become the time
WORD_THRESHOLD = 80.0  # a word is read as a template word this close (rapidfuzz ratio)
MIN_CORRECTED_CHARS = 4  # shorter words are too easily another word ("cold" → "call")

# Said around a request rather than as part of it; set aside when nothing matched with them.
LEADING_FILLERS = (
    "oh dear",
    "oh",
    "um",
    "uh",
    "er",
    "erm",
    "ah",
    "well",
    "so",
    "and",
    "hello",
    "hi",
    "hey helper",
    "helper",
    "okay",
    "ok",
    "right",
    "excuse me",
    "sorry",
    "dear",
    "please",
    "could you please",
    "could you",
    "can you please",
    "can you",
    "would you please",
    "would you",
    "will you",
    "would you mind",
    "i was wondering if you could",
    "i want you to",
    "i'd like you to",
    "do you think you could",
    "be a dear and",
)
TRAILING_FILLERS = (
    "please",
    "thanks",
    "thank you",
    "thank you very much",
    "thanks very much",
    "dear",
    "love",
    "for me",
    "right now",
    "now",
    "quickly",
    "if you can",
    "if you could",
    "if you would",
    "if you don't mind",
    "would you",
    "could you",
    "will you",
    "then",
    "okay",
    "ok",
    "as well",
    "too",
)
NEGATIONS = frozenset({"not", "no", "never", "nothing", "cannot", "nobody", "none"})
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
    # A clause said aside turns the request down before it ("don't call an ambulance"), or
    # says she is all right after it ("i slipped but i'm fine"): it may not be meant as said.
    hedged: bool = False


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


def _strip_fillers(text: str) -> str:
    """The request without the politeness and fillers around it."""
    words = text.replace(",", " ").replace("!", " ").replace("?", " ").split()
    changed = True
    while changed and words:
        changed = False
        for filler in LEADING_FILLERS:
            f = filler.split()
            if words[: len(f)] == f and len(words) > len(f):
                words, changed = words[len(f) :], True
                break
        for filler in TRAILING_FILLERS:
            f = filler.split()
            if words[-len(f) :] == f and len(words) > len(f):
                words, changed = words[: -len(f)], True
                break
    return " ".join(words).strip(" .")


# How a clause said before a request turns it down ("don't | call an ambulance", "i don't
# think | i need help"): the clause ends in one of these. Other negations before a request
# leave it standing ("i don't feel well, i need help", "no, i fell").
_TURNS_DOWN = re.compile(
    r"(\b(don't|do not|dont|never)|\bno need to|\b(don't|do not) (want|need) (you|anyone|anybody)"
    r" to|\b(don't|do not) think|\bthere's no need to)$"
)


def _aside(result) -> str:
    aside = result.entities.get("aside")
    return normalize_phrase(str(aside.value)) if aside is not None else ""


def _turned_down(result, spoken: str) -> bool:
    """Whether a template match begins with a clause said aside that turns the request
    down ("don't call an ambulance", "i don't think i need help"). Such a reading ranks
    below any other ("i don't need help" is a false alarm before it is a call for help).
    `spoken`: the sentence, `normalize_phrase`d."""
    words = _aside(result)
    return bool(words) and spoken.startswith(words) and bool(_TURNS_DOWN.search(words))


# A clause said after a request that says she is all right, and nothing more ("i slipped
# but | i'm fine"): worth asking about, not an alarm at once. "I'm okay, I can't get up"
# says more, and stays an alarm.
_ALL_RIGHT = re.compile(
    r"(i'm|i am|i think i'm|i feel) (fine|okay|ok|all right|alright|not hurt|unhurt)"
    r"( now| really| though| thanks| thank you| i think)*"
)


def _hedged(result, spoken: str) -> bool:
    """Whether what was matched may not be meant as said: turned down before it, or
    followed by a clause that says she is all right."""
    words = _aside(result)
    reassured = bool(words) and spoken.endswith(words) and _ALL_RIGHT.fullmatch(words) is not None
    return _turned_down(result, spoken) or reassured


def negated(text: str) -> bool:
    """Does the sentence say no, not or never (including "isn't", "can't", "don't")?"""
    return any(w in NEGATIONS or w.endswith("n't") for w in text.replace(",", " ").split())


def _answer_templates(list_names: list[str]) -> Intents:
    """One-slot sentences ("[my|the|by ...] {contact}") for answers to a question."""
    lead = "(my|the|a|an|by|with|on|to|for|it is|it's|about|at|in|please|call|see)"
    intents = {
        f"answer_{name}": {"data": [{"sentences": [f"[<lead>] [<lead>] {{{name}}} [please]"]}]}
        for name in list_names
    }
    return Intents.from_dict(
        {"language": "en", "intents": intents, "expansion_rules": {"lead": lead}}
    )


class IntentEngine:
    def __init__(self, intents: Intents, fuzzy_threshold: float = FUZZY_THRESHOLD) -> None:
        self.intents = intents
        self.fuzzy_threshold = fuzzy_threshold
        self._list_names = [
            name for name, slot_list in intents.slot_lists.items()
            if isinstance(slot_list, TextSlotList)
        ]  # fmt: skip
        try:
            self._samples = self._expand()
            self._graph = graph_from_templates(intents)
            self._urgent_graph = (
                graph_from_templates(intents, only={EMERGENCY_INTENT})
                if EMERGENCY_INTENT in intents.intents
                else None
            )
            self._slot_intents = _answer_templates(self._list_names)
        except Exception as exc:  # hassil parses templates lazily, with assorted errors
            raise IntentsError(f"bad sentence template or list ({exc})") from None
        self._sample_texts = [text for _, text in self._samples]
        self._vocabulary = sorted({w for text in self._sample_texts for w in text.split()})
        self._known = frozenset(self._vocabulary)

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
        return Grammar(
            graph=self._graph,
            phrases=self.phrases(),
            urgent=self.is_emergency,
            urgent_graph=self._urgent_graph,
            understood=self.understands,
        )

    def understands(self, text: str) -> bool:
        return self.recognize(text) is not None

    def is_emergency(self, text: str) -> bool:
        match = self.recognize(text)
        return match is not None and match.intent == EMERGENCY_INTENT

    def slot_value(self, slot: str, text: str, context: dict[str, str] | None = None) -> str | None:
        """An answer to "which ...?" as a slot value: "my daughter" → contact "daughter",
        "half past seven" → time "07:30"; None when the answer does not give one."""
        cleaned = clean_text(text)
        if not cleaned or len(cleaned) > MAX_TEXT_CHARS:
            return None
        wildcard_name = {"minutes": "duration", "value": "reading"}.get(slot, slot)
        if wildcard_name in self._list_names:
            results = recognize_all(cleaned, self._slot_intents, slot_lists=self.intents.slot_lists)
            for result in results:
                if wildcard_name in result.entities:
                    return str(result.entities[wildcard_name].value)
            return None
        slots, invalid = normalise_slots({wildcard_name: cleaned, **(context or {})})
        return None if slot in invalid else slots.get(slot)

    def recognize(self, text: str) -> IntentMatch | None:
        cleaned = clean_text(text)
        if not cleaned or len(cleaned) > MAX_TEXT_CHARS:
            return None
        exact = self._exact(cleaned)
        if exact is not None:
            return exact
        relaxed = _strip_fillers(cleaned)
        if relaxed and relaxed != cleaned:
            exact = self._exact(relaxed)
            if exact is not None:
                return exact
        text = relaxed or cleaned
        return self._corrected(text) or self._fuzzy(text)

    def _corrected(self, text: str) -> IntentMatch | None:
        """Unknown words replaced by their nearest template word, then an exact match."""
        words, scores = text.split(), []
        for i, word in enumerate(words):
            if word in self._known or len(word) < MIN_CORRECTED_CHARS:
                continue
            best = process.extractOne(
                word, self._vocabulary, scorer=fuzz.ratio, score_cutoff=WORD_THRESHOLD
            )
            if best is not None:
                words[i] = best[0]
                scores.append(best[1])
        if not scores:
            return None
        match = self._exact(" ".join(words))
        if match is None:
            return None
        confidence = min(scores) / 100.0
        return dataclasses.replace(match, confidence=confidence, method="fuzzy")

    def _exact(self, text: str) -> IntentMatch | None:
        # Of every way the templates match, the one that explains the most: most slots
        # filled ("remind me to take {medication} at {time}" over "... {medication}"),
        # then most literal words.
        results = list(recognize_all(text, self.intents))
        if not results:
            return None
        # A reading whose negated aside could reverse it comes last ("i don't need help" is
        # a false alarm before it is a call for help with "i don't" aside).
        spoken = normalize_phrase(text)
        result = max(
            results,
            key=lambda r: (not _turned_down(r, spoken), len(r.entities), r.text_chunks_matched),
        )
        raw = {name: str(entity.value) for name, entity in result.entities.items()}
        if result.intent.name == REMINDER_INTENT:  # "... metformin every monday at 8"
            raw = {
                k: without_repeat(v) if k in ("medication", "time") else v for k, v in raw.items()
            }
        slots, invalid = normalise_slots(raw)
        if result.intent.name == REMINDER_INTENT:
            slots["repeat"] = parse_repeat(text)
        return IntentMatch(
            intent=result.intent.name,
            slots=slots,
            confidence=1.0,
            invalid_slots=tuple(invalid),
            hedged=_hedged(result, spoken),
        )

    def _fuzzy(self, text: str) -> IntentMatch | None:
        best = process.extractOne(
            text, self._sample_texts, scorer=fuzz.ratio, score_cutoff=self.fuzzy_threshold
        )
        if best is None:
            return None
        _, score, index = best
        if negated(text) != negated(self._sample_texts[index]):
            log.debug("tolerant match refused: it would change a negation")
            return None
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
