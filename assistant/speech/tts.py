"""Speech output: pyttsx3 over espeak-ng, slowed down for older listeners.

pyttsx3 renders to a WAV file and the assistant plays it through its own output device
(sounddevice), so the speaker chosen in config is the one that talks, and tests can
capture what was said.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import threading
from pathlib import Path

import numpy as np

from assistant.config import SpeechOutputConfig
from assistant.pcm import AudioFileError, read_wav

log = logging.getLogger(__name__)

_ENGINE_LOCK = threading.Lock()  # pyttsx3 engines are process-wide singletons


class SpeechOutputError(Exception):
    """Speech cannot be synthesised (espeak-ng missing, bad voice)."""


class SpeechSynthesizer:
    def __init__(self, config: SpeechOutputConfig) -> None:
        self.config = config
        try:
            import pyttsx3

            self._engine = pyttsx3.init("espeak")
        except Exception as exc:  # pyttsx3 raises whatever its driver raised
            raise SpeechOutputError(
                f"espeak-ng speech output is not available ({exc}); "
                "install the Debian package espeak-ng"
            ) from None
        self._engine.setProperty("rate", config.rate_wpm)
        self._engine.setProperty("volume", config.volume)
        if config.voice:
            known = {v.id for v in self._engine.getProperty("voices")}
            if config.voice not in known:
                raise SpeechOutputError(f"speech voice {config.voice!r} is not installed")
            self._engine.setProperty("voice", config.voice)

    def to_file(self, text: str, path: str | Path) -> Path:
        """Render `text` as a WAV file (espeak-ng's 22.05 kHz mono)."""
        path = Path(path)
        with _ENGINE_LOCK, contextlib.redirect_stdout(io.StringIO()):  # it prints "saved"
            self._engine.save_to_file(text, str(path))
            self._engine.runAndWait()
        if not path.exists() or path.stat().st_size <= 44:
            raise SpeechOutputError("espeak-ng produced no audio")
        return path

    def synthesize(self, text: str, rate: int = 22050) -> np.ndarray:
        """Render `text` as int16 mono samples at `rate`."""
        with tempfile.TemporaryDirectory(prefix="senior-assistant-tts-") as tmp:
            wav = self.to_file(text, Path(tmp) / "speech.wav")
            try:
                return read_wav(wav, rate=rate)
            except AudioFileError as exc:
                raise SpeechOutputError(f"espeak-ng wrote unreadable audio: {exc}") from None
