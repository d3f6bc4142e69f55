"""What the wake-word network hears: log-mel energies of 10 ms frames, and the windows of
them it judges.

Two front ends: `LOG`, the log energies themselves, and `PCEN`, per-channel energy
normalisation (each band divided by its own slowly smoothed level, then compressed: a
steady noise fades out and onsets stand out). The two networks shipped listen through one
each and make different mistakes: the log one takes "hey kelper" in white noise for the
phrase, the PCEN one speech on a TV; the device wakes when both agree
(assistant/speech/wake.py).

The same code computes features for training (whole recordings, `log_mel`) and on the
device (`LogMelStream`, fed as the microphone delivers), so the network sees on the device
exactly what it was trained on. A window is the last `WINDOW_FRAMES` frames, pooled in
pairs and with each band's mean over the window taken away (the microphone's colour and
gain, and a steady noise's level, matter less that way).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from assistant.pcm import RATE

HOP = 160  # 10 ms
WIDTH = 400  # 25 ms analysis window
FFT = 512
BANDS = 40
WINDOW_FRAMES = 150  # 1.5 s: the slowest "hey helper" in the sets lasts about 1.2 s
POOL = 2  # frames averaged in pairs: 75 steps of 20 ms
FLOOR = 1e-7  # log floor, in power of full-scale samples
LEAD_FRAMES = 10  # frames (100 ms) after a reset that make the window's history
LOG, PCEN = "log", "pcen"  # the front ends
# PCEN: smoothing per frame (a time constant of 0.4 s), gain exponent, bias, root
PCEN_SMOOTH, PCEN_ALPHA, PCEN_DELTA, PCEN_ROOT = 0.025, 0.98, 2.0, 0.5
PCEN_EPS = 1e-6


def _mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_filters(low: float = 60.0, high: float = 7600.0) -> np.ndarray:
    """Triangular filters (FFT bins × BANDS), equally spaced on the mel scale."""
    edges_mel = np.linspace(_mel(np.array(low)), _mel(np.array(high)), BANDS + 2)
    edges = 700.0 * (10 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(FFT, 1.0 / RATE)
    filters = np.zeros((len(freqs), BANDS))
    for band in range(BANDS):
        left, centre, right = edges[band : band + 3]
        rising = (freqs - left) / (centre - left)
        falling = (right - freqs) / (right - centre)
        filters[:, band] = np.clip(np.minimum(rising, falling), 0.0, None)
    return filters


_FILTERS = _mel_filters()
_HAMMING = np.hamming(WIDTH)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(frames × BANDS) float32 for int16 audio: frame k covers samples [k*HOP, k*HOP+WIDTH)."""
    audio = samples.astype(np.float64) / 32768.0
    count = 0 if len(audio) < WIDTH else 1 + (len(audio) - WIDTH) // HOP
    if count == 0:
        return np.zeros((0, BANDS), np.float32)
    index = np.arange(WIDTH)[None, :] + HOP * np.arange(count)[:, None]
    spectrum = np.abs(np.fft.rfft(audio[index] * _HAMMING, FFT)) ** 2
    return np.log(spectrum @ _FILTERS + FLOOR).astype(np.float32)


def pcen(frames: np.ndarray, smooth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """PCEN of log-mel frames, and the smoother's state to go on from (None: start from the
    first frame's level). Causal, so a stream fed in pieces gets what the whole gets."""
    energy = np.exp(frames.astype(np.float64))
    level = energy[0].copy() if smooth is None else smooth.copy()
    levels = np.empty_like(energy)
    for t in range(len(energy)):
        level = (1 - PCEN_SMOOTH) * level + PCEN_SMOOTH * energy[t]
        levels[t] = level
    gain = energy / (PCEN_EPS + levels) ** PCEN_ALPHA
    return ((gain + PCEN_DELTA) ** PCEN_ROOT - PCEN_DELTA**PCEN_ROOT).astype(np.float32), level


def front_end(frames: np.ndarray, kind: str) -> np.ndarray:
    """What a network of front end `kind` hears of a whole recording's log-mel frames
    (training: after digital silence)."""
    return pcen(frames)[0] if kind == PCEN else frames


def as_streamed(frames: np.ndarray, kind: str) -> np.ndarray:
    """What `LogMelStream` holds for a whole recording's log-mel frames: its `lead_in`,
    then the frames, through the front end (PCEN running over both)."""
    return front_end(np.concatenate([lead_in(frames), frames]), kind)


def lead_in(frames: np.ndarray) -> np.ndarray:
    """What a window holds before the first frames of a stream: its first LEAD_FRAMES
    frames over again (the room as it sounds), WINDOW_FRAMES of them."""
    head = frames[:LEAD_FRAMES]
    return np.tile(head, (-(-WINDOW_FRAMES // LEAD_FRAMES), 1))[:WINDOW_FRAMES]


def silence_frames(count: int = WINDOW_FRAMES, kind: str = LOG) -> np.ndarray:
    """Frames of digital silence: what the stream holds before it has heard anything."""
    return front_end(np.full((count, BANDS), np.log(FLOOR), np.float32), kind)


def window_vector(frames: np.ndarray) -> np.ndarray:
    """The network's input for a window of WINDOW_FRAMES frames (or a batch of them:
    (..., WINDOW_FRAMES, BANDS)) → (..., WINDOW_FRAMES // POOL * BANDS)."""
    shape = frames.shape[:-2]
    pooled = frames.reshape(*shape, WINDOW_FRAMES // POOL, POOL, BANDS).mean(axis=-2)
    pooled = pooled - pooled.mean(axis=-2, keepdims=True)
    return pooled.reshape(*shape, -1)


class LogMelStream:
    """Log-mel frames of a stream fed in pieces of any size, identical to those of the
    whole stream (`as_streamed`: through the front end `kind`, after its `lead_in`); keeps
    the last WINDOW_FRAMES.

    Nothing is judged until LEAD_FRAMES frames have come after a reset; the window's
    history before them is then their `lead_in`, not digital silence: the loop resets the
    spotter after every exchange, and a window rising from silence to the room's noise
    looked to the network like speech starting (a false wake in a TV's noise just after
    a reset)."""

    def __init__(self, kind: str = LOG) -> None:
        if kind not in (LOG, PCEN):
            raise ValueError(f"no front end {kind!r}")
        self.kind = kind
        self.reset()

    def reset(self) -> None:
        self._smooth: np.ndarray | None = None  # PCEN's level per band
        self._pending = np.zeros(0, np.int16)
        self.frames: np.ndarray | None = None  # None: the lead-in has not come yet
        self._early = np.zeros((0, BANDS), np.float32)  # frames before it has
        self.count = 0  # frames computed since reset

    def feed_windows(self, pcm: bytes, every: int) -> Iterator[np.ndarray]:
        """Take audio; yield the window (window_vector) ending at each new frame whose
        count is a multiple of `every`."""
        self._pending = np.concatenate([self._pending, np.frombuffer(pcm, np.int16)])
        new = log_mel(self._pending)
        if len(new) == 0:
            return
        self._pending = self._pending[len(new) * HOP :]
        first = self.count
        if self.frames is None:
            self._early = np.concatenate([self._early, new])
            if len(self._early) < LEAD_FRAMES:
                self.count = first + len(new)
                return
            new, first = self._early, 0
            self.frames, new = self._history(new)
            self._early = np.zeros((0, BANDS), np.float32)
        elif self.kind == PCEN:
            new, self._smooth = pcen(new, self._smooth)
        frames = np.concatenate([self.frames, new])
        self.frames = frames[-WINDOW_FRAMES:]
        for i in range(len(new)):
            if (first + i + 1) % every == 0:
                end = WINDOW_FRAMES + i + 1
                self.count = first + i + 1
                yield window_vector(frames[end - WINDOW_FRAMES : end])
        self.count = first + len(new)

    def _history(self, early: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window's history (the first frames over again) and the first frames, through
        the front end. PCEN runs over the history too, so its level is the room's when the
        first window is judged: started from one frame and repeated, its first frames made
        a rhythm of onsets the network took for speech (a score of 18 in TV noise just
        after a reset)."""
        history = lead_in(early)
        if self.kind != PCEN:
            return history, early
        both, self._smooth = pcen(np.concatenate([history, early]))
        return both[:WINDOW_FRAMES], both[WINDOW_FRAMES:]
