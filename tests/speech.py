"""Test speech: flite's four recorded voices (the main test speakers) and espeak-ng via
pyttsx3 (the stress case), plus noise mixing. Files are cached per test session."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from assistant.config import SpeechOutputConfig
from assistant.pcm import read_wav, write_wav
from assistant.speech.tts import SpeechSynthesizer

FLITE_VOICES = ("slt", "rms", "awb", "kal16")


class SpeechMaker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        if shutil.which("flite") is None:
            raise RuntimeError("flite is not installed: run `make install` (Debian package flite)")

    def _path(self, kind: str, voice: str, text: str) -> Path:
        digest = hashlib.sha1(f"{kind}|{voice}|{text}".encode()).hexdigest()[:12]
        return self.directory / f"{kind}-{voice}-{digest}.wav"

    def flite(self, text: str, voice: str = "slt") -> Path:
        path = self._path("flite", voice, text)
        if not path.exists():
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
        return path

    def espeak(self, text: str, rate_wpm: int = 150) -> Path:
        """espeak-ng through pyttsx3, the assistant's own voice engine."""
        path = self._path("espeak", str(rate_wpm), text)
        if not path.exists():
            SpeechSynthesizer(SpeechOutputConfig(rate_wpm=rate_wpm)).to_file(text, path)
        return path

    def samples(self, path: Path, lead_s: float = 0.5, tail_s: float = 0.0) -> np.ndarray:
        """16 kHz mono samples with silence before (and after) the speech."""
        speech = read_wav(path)
        lead = np.zeros(int(16000 * lead_s), np.int16)
        tail = np.zeros(int(16000 * tail_s), np.int16)
        return np.concatenate([lead, speech, tail])

    def write(self, name: str, samples: np.ndarray) -> Path:
        path = self.directory / name
        write_wav(path, samples)
        return path


def mix_noise(speech: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    """White noise at `snr_db` below the speech's power (measured where it is not silent)."""
    rng = np.random.default_rng(seed)
    signal = speech.astype(np.float64)
    active = signal[np.abs(signal) > 100]
    power = float(np.mean(active**2)) if active.size else 1.0
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), size=signal.shape)
    return np.clip(signal + noise, -32768, 32767).astype(np.int16)
