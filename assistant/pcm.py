"""PCM audio as the recognizers take it: 16-bit signed, mono, 16 kHz; conversions to it."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import soxr

RATE = 16000
SAMPLE_WIDTH = 2  # bytes, 16-bit signed little-endian


class AudioFileError(Exception):
    """A sound file that cannot be used; the message names the file and the reason."""


def to_mono_int16(samples: np.ndarray) -> np.ndarray:
    """Mix channels down (frames x channels) and convert to int16: floats are taken as
    -1..1 full scale, integers as int16 values; both are clipped, never wrapped."""
    scale = 32767.0 if samples.dtype.kind == "f" else 1.0
    if samples.ndim == 2:
        samples = samples.astype(np.float64).mean(axis=1)
    return np.clip(np.round(samples * scale), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = RATE) -> np.ndarray:
    """High-quality resampling of int16 mono audio (soxr); a no-op at the same rate."""
    if rate_in == rate_out or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    out = soxr.resample(samples.astype(np.float32) / 32768.0, rate_in, rate_out)
    return to_mono_int16(out)


def read_wav(path: str | Path, rate: int = RATE) -> np.ndarray:
    """Read a PCM WAV of any rate, width and channel count as int16 mono at `rate`."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate_in = wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioFileError(f"{path}: no such file") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioFileError(f"{path}: not a readable PCM WAV file ({exc})") from None
    if rate_in <= 0 or channels <= 0:
        raise AudioFileError(f"{path}: WAV header has rate {rate_in} and {channels} channels")
    frame_bytes = width * channels
    raw = raw[: len(raw) - len(raw) % frame_bytes]  # a truncated last frame is dropped
    samples = _decode(raw, width, path).reshape(-1, channels)
    mono = to_mono_int16(samples if channels > 1 else samples[:, 0])
    return resample(mono, rate_in, rate)


def _decode(raw: bytes, width: int, path: Path) -> np.ndarray:
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(raw, np.uint8).astype(np.int16) - 128) * 256
    if width == 2:
        return np.frombuffer(raw, "<i2")
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return (value >> 8).astype(np.int16)
    if width == 4:
        return (np.frombuffer(raw, "<i4") >> 16).astype(np.int16)
    raise AudioFileError(f"{path}: unsupported sample width of {width} bytes")


def write_wav(path: str | Path, samples: np.ndarray, rate: int = RATE) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())


def rms_dbfs(samples: np.ndarray) -> float:
    """Loudness in dB relative to full scale; -inf for digital silence."""
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return 20.0 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")
