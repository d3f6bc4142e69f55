"""Speech output: pyttsx3 over espeak-ng, slowed down for older listeners.

pyttsx3 sets up espeak-ng (voice, rate, volume) and the assistant renders speech into
memory through pyttsx3's espeak-ng binding, then plays it through its own output device
(sounddevice), so the speaker chosen in config is the one that talks and tests can capture
what was said. pyttsx3's own `save_to_file` is not used: its callback handles the end
event before it keeps the samples that came with it, so it drops up to a second at the
end of each sentence, and all of a short one ("espeak-ng produced no audio").
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path

import numpy as np

from assistant.config import SpeechOutputConfig
from assistant.pcm import resample, write_wav

log = logging.getLogger(__name__)

_ENGINE_LOCK = threading.Lock()  # espeak-ng is one engine per process
ESPEAK_RATE = 22050


class SpeechOutputError(Exception):
    """Speech cannot be synthesised (espeak-ng missing, bad voice)."""


_DEFAULT_VOICE: list[str] = []  # espeak-ng's voice before any synthesizer chose one


def _default_voice(engine) -> str:
    if not _DEFAULT_VOICE:
        _DEFAULT_VOICE.append(str(engine.getProperty("voice") or ""))
    return _DEFAULT_VOICE[0]


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
        # Read before this or any synthesizer can have changed it (none does so here).
        default = _default_voice(self._engine)
        if config.voice:
            known = {v.id for v in self._engine.getProperty("voices")}
            if config.voice not in known:
                raise SpeechOutputError(f"speech voice {config.voice!r} is not installed")
        # The voice to select before each rendering: this one's, or espeak-ng's default
        # (another synthesizer in the process may have chosen a different one since).
        self._voice = config.voice or default

    def _apply_settings(self, espeak) -> None:
        """espeak-ng is one engine per process: set this synthesizer's voice each time.
        (pyttsx3's Engine.setProperty only queues the change for its own run loop.)"""
        espeak.SetParameter(espeak.RATE, self.config.rate_wpm, 0)
        espeak.SetParameter(espeak.VOLUME, round(self.config.volume * 100), 0)
        if self._voice:
            espeak.SetVoiceByName(self._voice.encode())

    def render(self, text: str) -> np.ndarray:
        """`text` as int16 mono samples at espeak-ng's rate (ESPEAK_RATE)."""
        from pyttsx3.drivers import _espeak

        chunks: list[bytes] = []

        def keep(wav, numsamples: int, events) -> int:  # espeak-ng's thread, in order
            if numsamples > 0:
                chunks.append(ctypes.string_at(wav, numsamples * ctypes.sizeof(ctypes.c_short)))
            return 0

        with _ENGINE_LOCK:
            self._apply_settings(_espeak)
            _espeak.SetSynthCallback(keep)
            status = _espeak.Synth(text, flags=_espeak.CHARS_UTF8 | _espeak.ENDPAUSE)
            _espeak.Synchronize()
        samples = np.frombuffer(b"".join(chunks), np.int16)
        if status != _espeak.EE_OK or samples.size == 0:
            raise SpeechOutputError(f"espeak-ng produced no audio (status {status})")
        return samples

    def synthesize(self, text: str, rate: int = ESPEAK_RATE) -> np.ndarray:
        """`text` as int16 mono samples at `rate`."""
        return resample(self.render(text), ESPEAK_RATE, rate)

    def to_file(self, text: str, path: str | Path) -> Path:
        """`text` as a WAV file at espeak-ng's rate."""
        write_wav(path, self.render(text), ESPEAK_RATE)
        return Path(path)
