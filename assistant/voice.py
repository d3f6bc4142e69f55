"""The assistant's voice: synthesised speech sent to a loudspeaker or recorded to a file."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.audio_io import Loudspeaker
from assistant.pcm import write_wav
from assistant.speech.tts import SpeechSynthesizer

log = logging.getLogger(__name__)

OUTPUT_RATE = 22050  # espeak-ng's own rate


class AudioSink(Protocol):
    def play(self, samples: np.ndarray, rate: int) -> None: ...


class WavRecorder:
    """Keeps everything the assistant says in one WAV file (for machines without a speaker)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._chunks: list[np.ndarray] = []

    def play(self, samples: np.ndarray, rate: int) -> None:
        if rate != OUTPUT_RATE:
            raise ValueError(f"WavRecorder takes {OUTPUT_RATE} Hz audio")
        self._chunks.append(samples)
        gap = np.zeros(OUTPUT_RATE // 4, np.int16)
        write_wav(
            self.path,
            np.concatenate([c for chunk in self._chunks for c in (chunk, gap)]),
            OUTPUT_RATE,
        )


def earcon(rate: int = OUTPUT_RATE) -> np.ndarray:
    """A soft two-tone chime that says "I am listening" without words."""
    t = np.arange(int(0.12 * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    tones = [np.sin(2 * np.pi * f * t) * fade for f in (660.0, 880.0)]
    return (np.concatenate(tones) * 0.3 * 32767).astype(np.int16)


class Voice:
    def __init__(self, synthesizer: SpeechSynthesizer, sink: AudioSink | Loudspeaker) -> None:
        self.synthesizer = synthesizer
        self.sink = sink

    def say(self, text: str) -> np.ndarray:
        samples = self.synthesizer.synthesize(text, rate=OUTPUT_RATE)
        self.sink.play(samples, OUTPUT_RATE)
        return samples

    def chime(self) -> None:
        self.sink.play(earcon(), OUTPUT_RATE)
