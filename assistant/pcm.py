"""PCM audio as the recognizers take it: 16-bit signed, mono, 16 kHz; conversions to it."""

from __future__ import annotations

import struct
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


WAVE_PCM, WAVE_FLOAT, WAVE_EXTENSIBLE = 1, 3, 0xFFFE
_SUBFORMAT_TAIL = bytes.fromhex("000000001000800000aa00389b71")  # KSDATAFORMAT_SUBTYPE_*


def read_wav(path: str | Path, rate: int = RATE) -> np.ndarray:
    """Read a PCM or float WAV of any rate, width and channel count as int16 mono at `rate`.

    Python 3.11's `wave` refuses WAVE_FORMAT_EXTENSIBLE, the header recorders and sox write
    for 24-bit or multichannel audio, so the RIFF chunks are read here."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot be read ({exc})") from None
    fmt, raw = _riff_chunks(data, path)
    tag, channels, rate_in, width = fmt
    frame_bytes = width * channels
    raw = raw[: len(raw) - len(raw) % frame_bytes]  # a truncated last frame is dropped
    if tag == WAVE_FLOAT:
        if width not in (4, 8):
            raise AudioFileError(f"{path}: unsupported float width of {width} bytes")
        floats = np.frombuffer(raw, "<f4" if width == 4 else "<f8").reshape(-1, channels)
        mono = to_mono_int16(floats if channels > 1 else floats[:, 0])
    else:
        samples = _decode(raw, width, path).reshape(-1, channels)
        mono = to_mono_int16(samples if channels > 1 else samples[:, 0])
    return resample(mono, rate_in, rate)


def _riff_chunks(data: bytes, path: Path) -> tuple[tuple[int, int, int, int], bytes]:
    """(format tag, channels, rate, bytes per sample) and the sample bytes of a WAV."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFileError(f"{path}: not a readable PCM WAV file (no RIFF/WAVE header)")
    fmt: tuple[int, int, int, int] | None = None
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position : position + 4]
        (size,) = struct.unpack_from("<I", data, position + 4)
        body = data[position + 8 : position + 8 + size]  # may be cut short: truncated file
        if chunk_id == b"fmt ":
            fmt = _format(body, path)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFileError(f"{path}: not a readable PCM WAV file (data before fmt)")
            return fmt, body
        position += 8 + size + (size & 1)
    raise AudioFileError(f"{path}: not a readable PCM WAV file (no fmt or data chunk)")


def _format(body: bytes, path: Path) -> tuple[int, int, int, int]:
    if len(body) < 16:
        raise AudioFileError(f"{path}: not a readable PCM WAV file (short fmt chunk)")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == WAVE_EXTENSIBLE and len(body) >= 40 and body[26:40] == _SUBFORMAT_TAIL:
        (tag,) = struct.unpack_from("<H", body, 24)
    if tag not in (WAVE_PCM, WAVE_FLOAT):
        raise AudioFileError(f"{path}: not a readable PCM WAV file (format {tag:#x})")
    if channels <= 0 or rate <= 0 or bits <= 0:
        raise AudioFileError(f"{path}: WAV header has rate {rate} and {channels} channels")
    return tag, channels, rate, (bits + 7) // 8


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


def trim_silence(samples: np.ndarray, floor: int = 200) -> np.ndarray:
    """Synthesised speech without the silence the engines put around it."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > floor)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]


def speech_power(samples: np.ndarray, floor: int = 100) -> float:
    """Mean power where the signal is not near silence (pauses would lower the figure)."""
    signal = samples.astype(np.float64)
    active = signal[np.abs(signal) > floor]
    return float(np.mean(active**2)) if active.size else 1.0


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`speech` with `noise` (looped or cut to length) scaled to `snr_db` below the speech."""
    if noise.size == 0:
        raise AudioFileError("the noise recording is empty")
    repeats = -(-speech.size // noise.size)
    noise = np.tile(noise.astype(np.float64), repeats)[: speech.size]
    noise_power = float(np.mean(noise**2)) or 1.0
    gain = np.sqrt(speech_power(speech) / noise_power / 10 ** (snr_db / 10))
    mixed = speech.astype(np.float64) + gain * noise
    return np.clip(mixed, -32768, 32767).astype(np.int16)


def frame_energies(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean power of each whole frame of `frame` samples, plus 1 (so digital silence has a
    finite level in dB); a short last frame is left out."""
    count = len(samples) // frame
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    return (frames**2).mean(axis=1) + 1.0


def estimated_snr_db(samples: np.ndarray, frame: int = 480) -> float:
    """How far the loud part of a recording stands above its quiet part, in dB: the 90th
    against the 10th percentile of 30 ms frame energies. An utterance with its pauses and
    pre-roll measures above 40 in a quiet room and near its mixing SNR in steady noise."""
    energy = frame_energies(samples, frame)
    if len(energy) < 2:
        return 0.0
    return float(10 * np.log10(np.percentile(energy, 90) / np.percentile(energy, 10)))


def low_pass(samples: np.ndarray, cutoff_hz: float, rate: int = RATE) -> np.ndarray:
    """Everything above `cutoff_hz` removed (FFT over the whole utterance: it is short)."""
    spectrum = np.fft.rfft(samples.astype(np.float64))
    spectrum[np.fft.rfftfreq(len(samples), 1 / rate) > cutoff_hz] = 0.0
    filtered = np.fft.irfft(spectrum, len(samples))
    return np.clip(np.round(filtered), -32768, 32767).astype(np.int16)
