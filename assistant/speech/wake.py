"""Wake-word spotting on the device.

The spotter is a small network trained for the phrase (assistant/speech/wake_net.py) that
judges, every 30 ms, the last 1.5 s of log-mel frames (assistant/speech/wake_features.py):
how likely the phrase has just ended. Its log-odds are averaged over the last `SMOOTH`
judgements (150 ms), because a real phrase keeps the score up for a while and a brief
likeness does not; the device wakes when that average reaches `[wake] threshold`,
calibrated from data (`senior-assistant eval --wake PHRASE --calibrate`; README, "Wake
word").

A phrase with no trained network is spotted by pocketsphinx instead (`KeyphraseSpotter`,
assistant/speech/keyphrase.py), with a warning: it misses far more. `senior-assistant
wake-train PHRASE` trains a network for any phrase the dictionary can spell.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

from assistant.config import WakeConfig
from assistant.speech.keyphrase import KeyphraseSpotter
from assistant.speech.wake_features import HOP, WIDTH, LogMelStream
from assistant.speech.wake_net import DEFAULT_MODEL, WakeModelError, WakeNet
from assistant.speech.wake_types import WakeDetection, WakeWordError, checked_phrase
from intents.grammar import normalize_phrase

__all__ = ["Spotter", "WakeDetection", "WakeWordError", "WakeWordSpotter", "spotter_for"]

log = logging.getLogger(__name__)

JUDGE_EVERY = 3  # frames (30 ms) between judgements
SMOOTH = 5  # judgements averaged
CANDIDATE_FLOOR = -4.0  # a run of averaged scores above this is a candidate (calibration)
# Where the phrase ended, relative to the end of the window that woke it: the time-delay
# network wakes as the phrase ends (on the 40 dB positives: median -0.01 s, 10-90% -0.11 to
# +0.23 s), so none; the perceptron before it woke about 0.1 s after the end.
LAG_SAMPLES = 0


class WakeWordSpotter:
    """`feed(pcm)` returns a WakeDetection once the network hears the phrase.

    `on_candidate(score, end_sample)` (optional) is told the best averaged score of every
    run above CANDIDATE_FLOOR, woken or not: what calibration needs."""

    def __init__(
        self,
        phrase: str,
        threshold: float | None = None,
        model: WakeNet | None = None,
        on_candidate: Callable[[float, int], None] | None = None,
    ) -> None:
        self.phrase = checked_phrase(phrase)
        self.model = model or WakeNet.load(DEFAULT_MODEL)
        if self.model.phrase != self.phrase:
            raise WakeWordError(
                f"the wake model was trained for {self.model.phrase!r}, not {self.phrase!r}"
            )
        self.threshold = WakeConfig().threshold if threshold is None else threshold
        self.on_candidate = on_candidate
        self._stream = LogMelStream()
        self.reset()

    def reset(self) -> None:
        """Forget everything heard; sample counting starts again at zero."""
        self._stream.reset()
        self._samples = 0
        self._recent: deque[float] = deque(maxlen=SMOOTH)
        self._run_best: float | None = None
        self._run_end = 0

    def feed(self, pcm: bytes) -> WakeDetection | None:
        self._samples += len(pcm) // 2
        detection = None
        for frames in self._stream.feed_windows(pcm, JUDGE_EVERY):
            score = float(self.model.logits(frames[None, :])[0])
            self._recent.append(score)
            smoothed = sum(self._recent) / len(self._recent)
            end = self._frame_end(self._stream.count)
            if self._judge(smoothed, end) and detection is None:
                detection = WakeDetection(self.phrase, max(0, end - LAG_SAMPLES), smoothed)
        return detection

    def _judge(self, smoothed: float, end: int) -> bool:
        """Track candidate runs; True when a run's averaged score first reaches the
        threshold (one wake per run)."""
        if smoothed >= CANDIDATE_FLOOR:
            best = self._run_best
            self._run_best = smoothed if best is None else max(best, smoothed)
            self._run_end = end
            return smoothed >= self.threshold and (best is None or best < self.threshold)
        self.finish()
        return False

    def finish(self) -> None:
        """Close the candidate run, reporting it: when the score falls below the floor,
        and when the audio ends (evaluation)."""
        if self._run_best is not None and self.on_candidate is not None:
            self.on_candidate(self._run_best, self._run_end)
        self._run_best = None

    @staticmethod
    def _frame_end(count: int) -> int:
        return (count - 1) * HOP + WIDTH


Spotter = WakeWordSpotter | KeyphraseSpotter  # what the loop listens with


def spotter_for(config: WakeConfig) -> Spotter:
    """The network for the configured phrase (`[wake] model`, or the one shipped for
    "hey helper"), or, when there is none for it, pocketsphinx with a warning."""
    phrase = normalize_phrase(config.phrase)
    path = Path(config.model) if config.model else DEFAULT_MODEL
    try:
        model = WakeNet.load(path)
    except WakeModelError:
        if config.model:
            raise
        model = None
    if model is not None and model.phrase == phrase:
        return WakeWordSpotter(phrase, config.threshold, model)
    if model is not None and config.model:
        raise WakeWordError(f"{path} was trained for {model.phrase!r}, not {phrase!r}")
    log.warning(
        "no wake model for %r: pocketsphinx spots it, and misses far more; train one with "
        "`senior-assistant wake-train %r`",
        phrase,
        phrase,
    )
    return KeyphraseSpotter(phrase, config.keyphrase_threshold)
