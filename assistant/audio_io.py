"""Microphone and loudspeaker through PortAudio (sounddevice).

Capture runs in PortAudio's callback thread into a queue, so nothing is lost while the
assistant is busy speaking or recognising. Devices that cannot record at 16 kHz are opened
at their own rate and resampled.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Iterator
from types import ModuleType

import numpy as np
import soxr

from assistant.pcm import RATE

log = logging.getLogger(__name__)


class AudioDeviceError(Exception):
    """No usable audio device, or PortAudio itself is missing."""


def _sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # raised at import when libportaudio is absent
        raise AudioDeviceError(
            f"PortAudio is not available ({exc}); install the Debian package libportaudio2"
        ) from None
    return sounddevice


def list_devices() -> list[dict]:
    sd = _sounddevice()
    try:
        return [dict(d) for d in sd.query_devices()]
    except sd.PortAudioError as exc:
        raise AudioDeviceError(f"cannot list audio devices: {exc}") from None


def resolve_device(device: str | int | None, kind: str) -> int | str | None:
    """Check that the configured (or default) device exists and can do `kind`."""
    sd = _sounddevice()
    channels_key = "max_input_channels" if kind == "input" else "max_output_channels"
    what = "microphone" if kind == "input" else "loudspeaker"
    try:
        info = sd.query_devices(device, kind=kind)
    except (sd.PortAudioError, ValueError) as exc:
        wanted = f"{device!r}" if device is not None else "the default device"
        raise AudioDeviceError(
            f"no {what} found ({wanted}: {exc}); see `senior-assistant devices` "
            f"and set audio.{kind}_device in the config"
        ) from None
    if info.get(channels_key, 0) < 1:
        raise AudioDeviceError(f"audio device {info['name']!r} has no {kind} channels")
    return device


class Microphone:
    """16 kHz mono int16 frames from a PortAudio input device."""

    def __init__(self, device: str | int | None = None, frame_ms: int = 30) -> None:
        self.device = resolve_device(device, "input")
        self.frame_samples = RATE * frame_ms // 1000
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._stream = None
        self._device_rate = RATE
        self._resampler: soxr.ResampleStream | None = None
        self.overflows = 0

    def __enter__(self) -> Microphone:
        sd = _sounddevice()
        try:
            self._stream = self._open(sd, RATE)
        except sd.PortAudioError:
            rate = int(sd.query_devices(self.device, kind="input")["default_samplerate"])
            log.info("microphone cannot record at 16 kHz; recording at %d Hz and resampling", rate)
            try:
                self._stream = self._open(sd, rate)
            except sd.PortAudioError as exc:
                raise AudioDeviceError(f"cannot open the microphone: {exc}") from None
            self._device_rate = rate
            self._resampler = soxr.ResampleStream(rate, RATE, 1, dtype="int16")
        self._stream.start()
        return self

    def _open(self, sd: ModuleType, rate: int):
        block = rate * self.frame_samples // RATE
        return sd.RawInputStream(
            samplerate=rate,
            channels=1,
            dtype="int16",
            blocksize=block,
            device=self.device,
            callback=self._callback,
        )

    def _callback(self, data, frames, time_info, status) -> None:  # PortAudio's thread
        if status.input_overflow:
            self.overflows += 1
        self._queue.put(bytes(data))

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def frames(self, timeout_s: float = 2.0) -> Iterator[bytes]:
        """Yield frames of exactly frame_samples; stop when the device delivers nothing."""
        pending = np.zeros(0, np.int16)
        frame_bytes = self.frame_samples * 2
        while True:
            try:
                block = self._queue.get(timeout=timeout_s)
            except queue.Empty:
                log.warning("the microphone delivered no audio for %.1f s", timeout_s)
                return
            samples = np.frombuffer(block, np.int16)
            if self._resampler is not None:  # streaming, so block edges leave no clicks
                samples = self._resampler.resample_chunk(samples)
            pending = np.concatenate([pending, samples])
            data = pending.tobytes()
            whole = len(data) // frame_bytes * frame_bytes
            for i in range(0, whole, frame_bytes):
                yield data[i : i + frame_bytes]
            pending = pending[whole // 2 :]


class Loudspeaker:
    def __init__(self, device: str | int | None = None) -> None:
        self.device = resolve_device(device, "output")

    def play(self, samples: np.ndarray, rate: int) -> None:
        """Play int16 mono samples and return once they have been played out.

        A blocking write, a short silence, then stop() (which drains the device): with
        `sounddevice.play` and no silence after it, the last quarter second of a reply was
        lost when the stream closed right after speaking."""
        sd = _sounddevice()
        padded = np.concatenate([samples.astype(np.int16), np.zeros(int(rate * 0.4), np.int16)])
        try:
            with sd.RawOutputStream(
                samplerate=rate, channels=1, dtype="int16", device=self.device
            ) as stream:
                stream.write(padded.tobytes())
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"cannot play on the loudspeaker: {exc}") from None
