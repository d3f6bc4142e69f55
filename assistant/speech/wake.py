"""Wake-word spotting on the device.

The spotter is a small network trained for the phrase (assistant/speech/wake_net.py) that
judges, every 30 ms, the last 1.5 s of log-mel frames (assistant/speech/wake_features.py):
how likely the phrase has just ended. Its log-odds are averaged over the last `SMOOTH`
judgements (150 ms), because a real phrase keeps the score up for a while and a brief
likeness does not. For "hey helper" a second network, trained the same way but hearing
the frames through another front end (PCEN), judges the same windows, and the score is the
lower of the two averages: both must agree. They fail on different sounds ("hey kelper" in
white noise fools the first, speech on a TV the second), so together they wake by
themselves far less at the same misses (README, "Wake word": at 10 dB 2/48 missed with no
false alarm, against 3/48 for the first alone). The device wakes when that score reaches
`[wake] threshold`, calibrated from data (`senior-assistant eval --wake PHRASE
--calibrate`).

A phrase with no trained network is spotted by pocketsphinx instead (`KeyphraseSpotter`,
assistant/speech/keyphrase.py), with a warning: it misses far more. `senior-assistant
wake-train PHRASE` trains a network for any phrase the dictionary can spell.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from assistant.config import WakeConfig
from assistant.speech.keyphrase import KeyphraseSpotter
from assistant.speech.wake_features import HOP, WIDTH, LogMelStream
from assistant.speech.wake_net import DEFAULT_CONFIRM, DEFAULT_MODEL, WakeModelError, WakeNet
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


class _Judge:
    """One network over its own front end's stream, and its last SMOOTH scores."""

    def __init__(self, model: WakeNet) -> None:
        self.model = model
        self.stream = LogMelStream(model.front_end)
        self.recent: deque[float] = deque(maxlen=SMOOTH)

    def reset(self) -> None:
        self.stream.reset()
        self.recent.clear()

    def feed(self, pcm: bytes) -> list[tuple[int, float]]:
        """(frames heard, averaged score) after each new judgement."""
        out = []
        for frames in self.stream.feed_windows(pcm, JUDGE_EVERY):
            self.recent.append(float(self.model.logits(frames[None, :])[0]))
            out.append((self.stream.count, sum(self.recent) / len(self.recent)))
        return out


class WakeWordSpotter:
    """`feed(pcm)` returns a WakeDetection once the network (or both, with `confirm`) hears
    the phrase. Without `model`, the networks shipped for "hey helper".

    `on_candidate(score, end_sample)` (optional) is told the best score of every run above
    CANDIDATE_FLOOR, woken or not: what calibration needs."""

    def __init__(
        self,
        phrase: str,
        threshold: float | None = None,
        model: WakeNet | None = None,
        on_candidate: Callable[[float, int], None] | None = None,
        confirm: WakeNet | None = None,
    ) -> None:
        self.phrase = checked_phrase(phrase)
        if model is None:
            model, confirm = WakeNet.load(DEFAULT_MODEL), WakeNet.load(DEFAULT_CONFIRM)
        self.model = model
        self.confirm = confirm
        for net in (model, confirm):
            if net is not None and net.phrase != self.phrase:
                raise WakeWordError(
                    f"the wake model was trained for {net.phrase!r}, not {self.phrase!r}"
                )
        self.threshold = WakeConfig().threshold if threshold is None else threshold
        self.on_candidate = on_candidate
        self._judges = [_Judge(net) for net in (model, confirm) if net is not None]
        self.reset()

    def reset(self) -> None:
        """Forget everything heard; sample counting starts again at zero."""
        for judge in self._judges:
            judge.reset()
        self._samples = 0
        self._run_best: float | None = None
        self._run_end = 0

    def feed(self, pcm: bytes) -> WakeDetection | None:
        self._samples += len(pcm) // 2
        detection = None
        judged = [judge.feed(pcm) for judge in self._judges]  # the same frames, in step
        for same in zip(*judged, strict=True):
            end = self._frame_end(same[0][0])
            agreed = min(score for _, score in same)
            if self._judge(agreed, end) and detection is None:
                detection = WakeDetection(self.phrase, max(0, end - LAG_SAMPLES), agreed)
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
    """The networks for the configured phrase: `[wake] model` (with `confirm_model`, when
    set, as the second), or the two shipped for "hey helper"; when there is none for the
    phrase, pocketsphinx with a warning. One network alone is judged by `single_threshold`,
    two by `threshold` (the lower of two scores is on another scale)."""
    phrase = normalize_phrase(config.phrase)
    if config.confirm_model and not config.model:
        raise WakeWordError("[wake] confirm_model needs [wake] model, the network it confirms")
    if config.model:
        model = WakeNet.load(config.model)
        if model.phrase != phrase:
            raise WakeWordError(f"{config.model} was trained for {model.phrase!r}, not {phrase!r}")
        if config.confirm_model:
            confirm = WakeNet.load(config.confirm_model)
            return WakeWordSpotter(phrase, config.threshold, model, confirm=confirm)
        return WakeWordSpotter(phrase, config.single_threshold, model)
    try:
        shipped: WakeNet | None = WakeNet.load(DEFAULT_MODEL)
    except WakeModelError:
        shipped = None
    if shipped is not None and shipped.phrase == phrase:
        try:
            confirm = WakeNet.load(DEFAULT_CONFIRM)
        except WakeModelError as exc:
            log.warning("the second wake network cannot be used (%s): the first listens "
                        "alone, and wakes by itself more often", exc)  # fmt: skip
            return WakeWordSpotter(phrase, config.single_threshold, shipped)
        return WakeWordSpotter(phrase, config.threshold, shipped, confirm=confirm)
    log.warning(
        "no wake model for %r: pocketsphinx spots it, and misses far more; train one with "
        "`senior-assistant wake-train %r`",
        phrase,
        phrase,
    )
    return KeyphraseSpotter(phrase, config.keyphrase_threshold)
