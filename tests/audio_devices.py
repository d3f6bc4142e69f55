"""Real PortAudio without a sound card: ALSA's file plugin as microphone and loudspeaker
(the recipe in shared/recipes.md). PortAudio reads ALSA_CONFIG_PATH when it starts, so
whatever uses these devices runs in a child process with `env`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALSA_BASE = "/usr/share/alsa/alsa.conf"


@dataclass
class VirtualAudio:
    directory: Path
    mic_raw: Path  # what the microphone "hears": 16 kHz mono s16le
    speaker_raw: Path  # what the loudspeaker played: raw s16le at the stream's rate

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ALSA_CONFIG_PATH"] = f"{ALSA_BASE}:{self.directory / 'asound.conf'}"
        return env

    def speaker_samples(self) -> np.ndarray:
        if not self.speaker_raw.exists():
            return np.zeros(0, np.int16)
        return np.fromfile(self.speaker_raw, dtype="<i2")


def virtual_audio(directory: Path, mic_samples: np.ndarray) -> VirtualAudio:
    directory.mkdir(parents=True, exist_ok=True)
    mic = directory / "mic.raw"
    speaker = directory / "speaker.raw"
    mic_samples.astype("<i2").tofile(mic)
    (directory / "asound.conf").write_text(
        'pcm.!default { type asym  playback.pcm "speakerfile"  capture.pcm "filemic" }\n'
        f'pcm.speakerfile {{ type file  slave.pcm "nullout"  file "{speaker}"  format "raw" }}\n'
        "pcm.nullout { type null }\n"
        f'pcm.filemic {{ type file  slave.pcm "nullcap"  file "/dev/null"  infile "{mic}"'
        '  format "raw" }\n'
        "pcm.nullcap { type null }\n"
    )
    return VirtualAudio(directory, mic, speaker)


def no_audio_devices(directory: Path) -> dict[str, str]:
    """An environment in which ALSA (and so PortAudio) has no usable device at all."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "asound-none.conf"
    conf.write_text("pcm.!default { type hw card 99 }\nctl.!default { type hw card 99 }\n")
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = str(conf)
    return env
