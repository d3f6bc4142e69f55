"""The fallback wake-word spotter, for a phrase with no trained network
(assistant/speech/wake.py): pocketsphinx in two stages. Far less reliable than a trained
network (README, "Wake word": it misses most phrases at 10 dB SNR), but it needs no
training, so any phrase the dictionary can spell works at once.

1. pocketsphinx's keyphrase search streams over everything the microphone hears, with a
   low threshold (`SPOT_THRESHOLD`): it proposes candidates, catching as many real wake
   phrases as it can and many false ones.
2. Each candidate is confirmed or rejected on the audio around it (from a little before
   the spotted start to a little after its end), normalised over that window alone: the
   acoustic score of a decode constrained to the phrase against a free phone-loop decode
   of the same frames, per frame of the phrase (a log-likelihood ratio; near zero when the
   phrase explains the audio as well as any phone sequence). The threshold on it (`[wake]
   threshold`) is calibrated from data: `senior-assistant eval --wake PHRASE --calibrate`
   (README, "Wake word": the figures, and why the default favours waking).

Candidates are rare, so the second stage costs little; idle listening is the first stage
(bench: `python -m bench --only wake`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.config import WakeConfig
from assistant.speech.sphinx import model_dir, new_decoder
from assistant.speech.wake_types import WakeDetection, WakeWordError, checked_phrase

log = logging.getLogger(__name__)

RATE = 16000
FRAME_SAMPLES = 160  # pocketsphinx analyses 10 ms frames at 16 kHz
RESTART_SAMPLES = RATE * 30  # start a fresh search now and then so state stays small
SPOT_THRESHOLD = 1e-40  # first stage: high recall, the second stage judges
BEFORE_S = 0.3  # the window judged: this much before the spotted start...
AFTER_S = 0.25  # ...and after its end (the detection waits for it)
HISTORY_S = 4.0  # audio kept for the second stage
REJECTED = -1e9  # the score when the constrained decode does not find the phrase at all


@dataclass(frozen=True)
class Candidate:
    start_sample: int
    end_sample: int


class KeyphraseSpotter:
    """`feed(pcm)` returns a WakeDetection once the phrase is heard and confirmed.

    `on_candidate(score, end_sample)` (optional) is told every first-stage candidate and
    its second-stage score, confirmed or not: what calibration needs."""

    def __init__(
        self,
        phrase: str,
        threshold: float | None = None,
        spot_threshold: float = SPOT_THRESHOLD,
        on_candidate: Callable[[float, int], None] | None = None,
    ) -> None:
        self.phrase = checked_phrase(phrase)
        self.threshold = WakeConfig().keyphrase_threshold if threshold is None else threshold
        self.on_candidate = on_candidate
        self._decoder = new_decoder(lm=False, kws_threshold=spot_threshold)
        self._decoder.add_keyphrase("wake", self.phrase)
        self._decoder.activate_search("wake")
        self._verifier = PhraseVerifier(self.phrase)
        self._started = False
        self.reset()

    def reset(self) -> None:
        """Forget everything heard; sample counting starts again at zero."""
        if self._started:
            self._decoder.end_utt()
        self._decoder.start_utt()
        self._started = True
        self._samples = 0  # since reset
        self._utt_offset = 0  # samples before the current decoder utterance
        self._history = bytearray()
        self._history_start = 0  # the sample number of the history's first sample
        self._pending: Candidate | None = None

    def feed(self, pcm: bytes) -> WakeDetection | None:
        self._decoder.process_raw(pcm, full_utt=False)
        self._samples += len(pcm) // 2
        self._remember(pcm)
        if self._decoder.hyp() is not None:
            segments = list(self._decoder.seg())
            start = end = self._samples
            if segments:
                start = self._utt_offset + segments[-1].start_frame * FRAME_SAMPLES
                end = self._utt_offset + (segments[-1].end_frame + 1) * FRAME_SAMPLES
            self._restart_utterance()
            if self._pending is None:
                self._pending = Candidate(start, min(end, self._samples))
        elif self._samples - self._utt_offset >= RESTART_SAMPLES:
            self._restart_utterance()
        if self._pending is not None and self._samples >= self._pending.end_sample + int(
            AFTER_S * RATE
        ):
            return self._confirm(self._pending)
        return None

    def _confirm(self, candidate: Candidate) -> WakeDetection | None:
        self._pending = None
        begin = max(self._history_start, candidate.start_sample - int(BEFORE_S * RATE))
        end = candidate.end_sample + int(AFTER_S * RATE)
        offset = (begin - self._history_start) * 2
        window = np.frombuffer(bytes(self._history[offset : offset + (end - begin) * 2]), np.int16)
        score = self._verifier.score(window)
        if self.on_candidate is not None:
            self.on_candidate(score, candidate.end_sample)
        if score < self.threshold:
            log.debug("wake candidate rejected (score %.2f)", score)
            return None
        return WakeDetection(self.phrase, candidate.end_sample, score)

    def _remember(self, pcm: bytes) -> None:
        self._history += pcm
        excess = len(self._history) - int(HISTORY_S * RATE) * 2
        if excess > 0:
            del self._history[:excess]
            self._history_start += excess // 2

    def _restart_utterance(self) -> None:
        self._decoder.end_utt()
        self._decoder.start_utt()
        self._utt_offset = self._samples


class PhraseVerifier:
    """The second stage: how much better the phrase explains a window than free phones."""

    def __init__(self, phrase: str) -> None:
        self.phrase = phrase
        self._constrained = new_decoder(lm=False, cmn="batch")
        words = phrase.split()
        transitions = [(i, i + 1, 1.0, w) for i, w in enumerate(words)]
        try:
            fsg = self._constrained.create_fsg("phrase", 0, len(words), transitions)
            self._constrained.add_fsg("phrase", fsg)
        except (RuntimeError, ValueError) as exc:
            raise WakeWordError(f"pocketsphinx rejected the wake phrase: {exc}") from None
        self._constrained.activate_search("phrase")
        self._words = set(words)
        phones = os.path.join(model_dir(), "en-us-phone.lm.bin")
        self._phones = new_decoder(lm=False, allphone=phones, cmn="batch")

    def score(self, window: np.ndarray) -> float:
        if len(window) // FRAME_SAMPLES < 10:
            return REJECTED
        phrase = _segments(self._constrained, window)
        words = [seg for seg in phrase if seg[0] in self._words]
        if not words:
            return REJECTED
        start, end = words[0][1], words[-1][2]
        phones = _segments(self._phones, window)
        if not phones:
            return REJECTED
        phrase_ll = sum(seg[3] for seg in words)
        phones_ll = 0.0
        for _, first, last, ll in phones:  # the phones' share of the phrase's frames
            overlap = min(last, end) - max(first, start) + 1
            if overlap > 0:
                phones_ll += ll * overlap / (last - first + 1)
        return (phrase_ll - phones_ll) / (end - start + 1)


def _segments(decoder, window: np.ndarray) -> list[tuple[str, int, int, float]]:
    """(word, first frame, last frame, acoustic log-likelihood) of the best path."""
    decoder.start_utt()
    decoder.process_raw(window.tobytes(), full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return []
    # Segment.ascore is a density: its log, floored where a float underflows
    return [
        (seg.word, seg.start_frame, seg.end_frame, math.log(max(seg.ascore, 1e-320)))
        for seg in decoder.seg()
    ]
