"""pocketsphinx on real human recordings that nobody here wrote (Debian pocketsphinx-testdata)."""

from __future__ import annotations

import itertools
import re

import pytest

from assistant.pcm import read_wav
from tests.conftest import POCKETSPHINX_TESTDATA as DATA

pytestmark = pytest.mark.skipif(
    not DATA.is_dir(), reason="Debian package pocketsphinx-testdata is not installed"
)

# Measured on this machine: 28% word error rate (streamed in 0.1 s chunks). The floor
# leaves room for small differences between pocketsphinx builds, not for a broken path.
MAX_WORD_ERROR_RATE = 0.35
MIN_CARDS_SENTENCE_ACCURACY = 0.8


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, 1):
        previous, row[0] = row[:], i
        for j, hyp_word in enumerate(hypothesis, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
    return row[-1]


def normalise(text: str) -> list[str]:
    return ["mister" if w in ("mr", "mr.") else w for w in text.lower().split()]


def free_speech_cases() -> list[tuple[str, bytes, str]]:
    cases = []
    for line in (DATA / "librivox" / "transcription").read_text().splitlines():
        match = re.match(r"<s> (.*) </s> \((.*)\)", line)
        assert match, line
        wav = DATA / "librivox" / f"{match[2]}.wav"
        cases.append((wav.name, read_wav(wav).tobytes(), match[1]))
    for name, text in [
        ("goforward.raw", "go forward ten meters"),
        ("something.raw", "go somewhere and do something"),
        ("tidigits/dhd.2934z.raw", "two nine three four zero"),
    ]:
        cases.append((name, (DATA / name).read_bytes(), text))
    return cases


def test_free_recognition_of_human_speech_meets_the_floor(sphinx_recognizer) -> None:
    sphinx_recognizer.set_grammar(None)
    errors = words = 0
    for _name, pcm, reference in free_speech_cases():
        transcript = sphinx_recognizer.transcribe(pcm)
        assert transcript.final
        errors += word_errors(normalise(reference), normalise(transcript.text))
        words += len(reference.split())
    assert words > 80
    assert errors / words <= MAX_WORD_ERROR_RATE, f"word error rate {errors / words:.2%}"


def card_phrases() -> list[str]:
    """The cards task of the test data as a phrase list: one card, two ranks, a rank and a
    card, and the three-card sentence of the set (over 1,500 phrases)."""
    ranks = "ace two three four five six seven eight nine ten jack queen king".split()
    suits = "clubs hearts diamonds spades".split()
    cards = [f"{r} {o}{s}" for r in ranks for s in suits for o in ("of ", "")]
    phrases = list(cards)
    phrases += [f"{a} {b}" for a, b in itertools.product(ranks, ranks)]
    phrases += [f"{r} {c}" for r in ranks for c in cards]
    phrases.append("eight of spades four of clubs seven of hearts")
    return phrases


def test_grammar_recognition_of_human_speech(tmp_path) -> None:
    from assistant.speech.sphinx import PocketsphinxRecognizer

    recognizer = PocketsphinxRecognizer()
    kept = recognizer.set_grammar(card_phrases())
    assert len(kept) > 1500
    references = {}
    for line in (DATA / "cards" / "cards.transcription").read_text().splitlines():
        match = re.match(r"<s> (.*?)\s*</s> \((\d+)\)", line)
        assert match, line
        references[match[2]] = match[1].strip()
    right = 0
    for number, reference in references.items():
        pcm = read_wav(DATA / "cards" / f"{number}.wav").tobytes()
        right += recognizer.transcribe(pcm).text == reference
    assert right / len(references) >= MIN_CARDS_SENTENCE_ACCURACY
