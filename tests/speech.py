"""Test speech: flite's four recorded voices (the main test speakers) and espeak-ng via
pyttsx3 (the stress case), plus noise mixing. Files are cached per test session."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np

from assistant.config import SpeechOutputConfig
from assistant.pcm import mix_at_snr, read_wav, write_wav
from assistant.speech.tts import SpeechSynthesizer

FLITE_VOICES = ("slt", "rms", "awb", "kal16")
# espeak-ng voices of different accents (American, British, Scottish, Caribbean).
ESPEAK_VOICES = ("gmw/en-us", "gmw/en", "gmw/en-gb-scotland", "gmw/en-029")


class SpeechMaker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._synthesizers: dict[tuple[int, str], SpeechSynthesizer] = {}
        if shutil.which("flite") is None:
            raise RuntimeError("flite is not installed: run `make install` (Debian package flite)")

    def _path(self, kind: str, voice: str, text: str) -> Path:
        digest = hashlib.sha1(f"{kind}|{voice}|{text}".encode()).hexdigest()[:12]
        return self.directory / f"{kind}-{voice}-{digest}.wav"

    def flite(self, text: str, voice: str = "slt", stretch: float = 1.0) -> Path:
        """`stretch` above 1 speaks slower (flite's duration_stretch)."""
        tag = voice if stretch == 1.0 else f"{voice}x{stretch:g}"
        path = self._path("flite", tag, text)
        if not path.exists():
            command = ["flite", "-voice", voice, "-t", text, "-o", str(path)]
            if stretch != 1.0:
                command += ["--setf", f"duration_stretch={stretch:g}"]
            subprocess.run(command, check=True)
        return path

    def espeak_ng(self, text: str, voice: str = "en-us", rate_wpm: int = 150) -> Path:
        """espeak-ng's command line, for its voice variants (`en-us+f3`, `en+grandpa`)."""
        path = self._path("espeakng", f"{voice.replace('+', '_')}{rate_wpm}", text)
        if not path.exists():
            command = ["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-w", str(path), text]
            subprocess.run(command, check=True)
        return path

    def espeak(self, text: str, rate_wpm: int = 150, voice: str = "") -> Path:
        """espeak-ng through pyttsx3, the assistant's own voice engine (`voice`: an id from
        ESPEAK_VOICES; empty: espeak-ng's default)."""
        path = self._path("espeak", f"{voice.replace('/', '_')}{rate_wpm}", text)
        if not path.exists():
            key = (rate_wpm, voice)
            if key not in self._synthesizers:
                config = SpeechOutputConfig(rate_wpm=rate_wpm, voice=voice)
                self._synthesizers[key] = SpeechSynthesizer(config)
            self._synthesizers[key].to_file(text, path)
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
    noise = np.random.default_rng(seed).normal(0.0, 1000.0, size=speech.shape)
    return mix_at_snr(speech, noise, snr_db)
