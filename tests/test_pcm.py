"""PCM conversions: any WAV in, 16 kHz mono int16 out; real files written with `wave`."""

from __future__ import annotations

import re
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from assistant.pcm import AudioFileError, read_wav, rms_dbfs, to_mono_int16, write_wav

TONE_HZ = 440.0


def sine(rate: int, seconds: float = 1.0, amplitude: float = 0.5, hz: float = TONE_HZ):
    """A float sine in -1..1."""
    t = np.arange(int(rate * seconds)) / rate
    return amplitude * np.sin(2 * np.pi * hz * t)


def write_pcm(path: Path, frames: bytes, rate: int, width: int, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return path


def encode(signal: np.ndarray, width: int) -> bytes:
    """Float -1..1 as little-endian PCM of `width` bytes, full scale 2**(bits-1) like the
    decoder (8-bit is unsigned, centred on 128)."""
    full = 2 ** (8 * width - 1)
    ints = np.clip(np.round(signal * full), -full, full - 1).astype(np.int64)
    if width == 1:
        return (ints + 128).astype(np.uint8).tobytes()
    if width == 3:
        return ints.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return ints.astype("<i2" if width == 2 else "<i4").tobytes()


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1.0 / rate)[np.argmax(spectrum)])


@pytest.fixture
def stereo_44k(tmp_path: Path) -> tuple[Path, np.ndarray]:
    tone = sine(44100)
    frames = np.round(np.stack([tone, tone], axis=1) * 32767).astype("<i2")
    return write_pcm(tmp_path / "stereo.wav", frames.tobytes(), 44100, 2, channels=2), tone


def test_stereo_44k_file_is_read_as_16k_mono_of_the_same_length_and_pitch(
    stereo_44k: tuple[Path, np.ndarray],
) -> None:
    path, _ = stereo_44k
    samples = read_wav(path)
    assert samples.dtype == np.int16
    assert samples.ndim == 1
    assert len(samples) == pytest.approx(16000, rel=0.01)
    assert dominant_hz(samples, 16000) == pytest.approx(TONE_HZ, abs=10)


def test_stereo_file_keeps_its_level(stereo_44k: tuple[Path, np.ndarray]) -> None:
    """Both channels carry a -9 dBFS sine (peak 0.5): the mono mix is that same sine, not
    a clipped square wave (the int16 channel mean must not be taken as a -1..1 float)."""
    path, tone = stereo_44k
    samples = read_wav(path)
    assert rms_dbfs(samples) == pytest.approx(rms_dbfs(tone * 32767), abs=0.5)
    assert np.abs(samples).max() == pytest.approx(0.5 * 32767, rel=0.02)


def test_to_mono_int16_mixes_int16_channels_by_averaging() -> None:
    frames = np.array([[1000, 3000], [-2000, 0], [0, 0]], dtype=np.int16)
    assert to_mono_int16(frames).tolist() == [2000, -1000, 0]


def test_to_mono_int16_mixes_float_channels_by_averaging() -> None:
    frames = np.array([[0.5, 0.0], [1.0, 1.0]])
    assert to_mono_int16(frames).tolist() == [8192, 32767]


def test_to_mono_int16_clips_floats_outside_minus_one_to_one() -> None:
    out = to_mono_int16(np.array([-3.0, -1.0, 0.0, 0.25, 1.0, 1.5, 40.0]))
    assert out.dtype == np.int16
    assert out.tolist() == [-32768, -32767, 0, 8192, 32767, 32767, 32767]


@pytest.mark.parametrize("width", [1, 3, 4])
def test_other_sample_widths_decode_to_the_16_bit_waveform(tmp_path: Path, width: int) -> None:
    tone = sine(16000, seconds=0.5, amplitude=0.8)
    reference = read_wav(write_pcm(tmp_path / "16.wav", encode(tone, 2), 16000, 2))
    other = read_wav(write_pcm(tmp_path / f"{8 * width}.wav", encode(tone, width), 16000, width))
    assert len(other) == len(reference) == 8000
    # Half a step of the coarser format (8-bit steps are 256 in 16-bit units), or the one
    # unit by which truncating the wider formats' extra bits can differ from rounding.
    step = 129 if width == 1 else 1
    assert np.abs(other.astype(int) - reference.astype(int)).max() <= step
    assert dominant_hz(other, 16000) == pytest.approx(TONE_HZ, abs=10)


def test_8_bit_extremes_map_to_the_16_bit_range(tmp_path: Path) -> None:
    path = write_pcm(tmp_path / "8.wav", bytes([0, 128, 255]), 16000, 1)
    assert read_wav(path).tolist() == [-32768, 0, 32512]


def extensible_wav(path: Path, frames: bytes, rate: int, width: int, channels: int) -> Path:
    """A WAVE_FORMAT_EXTENSIBLE PCM file, as sox, ffmpeg and most recorders write for more
    than 16 bits or more than two channels."""
    block = width * channels
    fmt = struct.pack(
        "<HHIIHHHHI16s",
        0xFFFE,  # WAVE_FORMAT_EXTENSIBLE
        channels,
        rate,
        rate * block,
        block,
        8 * width,
        22,  # cbSize
        8 * width,  # valid bits
        (1 << channels) - 1,  # channel mask
        # KSDATAFORMAT_SUBTYPE_PCM
        bytes.fromhex("0100000000001000800000aa00389b71"),
    )
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(frames)) + frames
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def test_a_24_bit_extensible_format_wav_is_read(tmp_path: Path) -> None:
    """The header sox, ffmpeg and recorders write for 24-bit audio (Python 3.11's `wave`
    refuses it with "unknown format: 65534")."""
    tone = sine(16000, seconds=0.5)
    path = extensible_wav(tmp_path / "ext24.wav", encode(tone, 3), 16000, 3, 1)
    samples = read_wav(path)
    assert len(samples) == 8000
    assert dominant_hz(samples, 16000) == pytest.approx(TONE_HZ, abs=10)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.wav"
    with pytest.raises(AudioFileError, match="no such file") as info:
        read_wav(path)
    assert str(path) in str(info.value)


def test_a_directory_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AudioFileError, match=re.escape(str(tmp_path))):
        read_wav(tmp_path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("random.wav", np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        ("empty.wav", b""),
        ("riff-only.wav", b"RIFF\x24\x00\x00\x00WAVE"),
    ],
)
def test_a_file_that_is_not_a_wav_is_an_error_naming_it(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioFileError, match="not a readable PCM WAV file") as info:
        read_wav(path)
    assert str(path) in str(info.value)


def riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE"
    for chunk_id, content in chunks:
        body += chunk_id + struct.pack("<I", len(content)) + content
        body += b"\x00" * (len(content) & 1)  # chunks are padded to an even size
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm_fmt(rate: int, width: int, channels: int = 1, tag: int = 1) -> bytes:
    block = width * channels
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, 8 * width)


@pytest.mark.parametrize("dtype", ["<f4", "<f8"])
def test_a_float_wav_is_read_at_its_level(tmp_path: Path, dtype: str) -> None:
    tone = sine(16000, seconds=0.5)
    width = np.dtype(dtype).itemsize
    path = tmp_path / "float.wav"
    path.write_bytes(
        riff((b"fmt ", pcm_fmt(16000, width, tag=3)), (b"data", tone.astype(dtype).tobytes()))
    )
    samples = read_wav(path)
    assert len(samples) == 8000
    assert np.abs(samples.astype(int) - np.round(tone * 32767)).max() <= 1


def test_a_three_channel_extensible_wav_is_mixed_down(tmp_path: Path) -> None:
    tone = sine(16000, seconds=0.5)
    frames = np.round(np.stack([tone, tone, -tone], axis=1) * 32767).astype("<i2")
    path = extensible_wav(tmp_path / "ext3.wav", frames.tobytes(), 16000, 2, 3)
    samples = read_wav(path)
    assert len(samples) == 8000
    assert np.abs(samples.astype(int) - np.round(tone * 32767 / 3)).max() <= 1


def test_chunks_other_than_fmt_and_data_are_skipped(tmp_path: Path) -> None:
    """Recorders put LIST (metadata) chunks, of odd sizes too, between fmt and data."""
    tone = np.round(sine(16000, seconds=0.25) * 32767).astype("<i2")
    path = tmp_path / "list.wav"
    path.write_bytes(
        riff(
            (b"fmt ", pcm_fmt(16000, 2)),
            (b"LIST", b"INFOISFT\x05\x00\x00\x00sox\x00\x00"),
            (b"junk", b"abc"),
            (b"data", tone.tobytes()),
        )
    )
    assert np.array_equal(read_wav(path), tone)


@pytest.mark.parametrize(
    ("chunks", "reason"),
    [
        (((b"data", b"\x00\x00" * 10), (b"fmt ", pcm_fmt(16000, 2))), "data before fmt"),
        (((b"fmt ", pcm_fmt(16000, 2)),), "no fmt or data"),
        (((b"fmt ", pcm_fmt(16000, 1, tag=2)), (b"data", b"\x00" * 10)), "format 0x2"),
        (((b"fmt ", pcm_fmt(0, 2)), (b"data", b"\x00" * 10)), "rate 0"),
        (((b"fmt ", b"\x01\x00"), (b"data", b"\x00" * 10)), "short fmt"),
    ],
)
def test_a_wav_with_an_unusable_header_is_an_error_naming_it(
    tmp_path: Path, chunks: tuple[tuple[bytes, bytes], ...], reason: str
) -> None:
    path = tmp_path / "odd.wav"
    path.write_bytes(riff(*chunks))
    with pytest.raises(AudioFileError, match=re.escape(reason)) as info:
        read_wav(path)
    assert str(path) in str(info.value)


def test_a_truncated_wav_is_decoded_up_to_where_it_ends(tmp_path: Path) -> None:
    """The header promises one second; the file holds half of it and half a frame more."""
    tone = np.round(sine(16000) * 32767).astype("<i2")
    full = write_pcm(tmp_path / "full.wav", tone.tobytes(), 16000, 2)
    data = full.read_bytes()
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(data[: 44 + 2 * 8000 + 1])
    samples = read_wav(truncated)
    assert np.array_equal(samples, tone[:8000])


def test_a_wav_without_frames_reads_as_empty(tmp_path: Path) -> None:
    path = write_pcm(tmp_path / "none.wav", b"", 16000, 2)
    samples = read_wav(path)
    assert samples.dtype == np.int16
    assert samples.size == 0


def test_rms_dbfs_of_digital_silence_is_minus_infinity() -> None:
    assert rms_dbfs(np.zeros(1600, np.int16)) == float("-inf")
    assert rms_dbfs(np.zeros(0, np.int16)) == float("-inf")


def test_rms_dbfs_of_a_full_scale_square_wave_is_zero() -> None:
    square = np.tile(np.array([32767] * 20 + [-32768] * 20, np.int16), 400)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.01)


def test_rms_dbfs_of_a_half_scale_sine_is_minus_9_db() -> None:
    tone = np.round(sine(16000) * 32768).astype(np.int16)
    assert rms_dbfs(tone) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.05)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_write_wav_then_read_wav_gives_back_the_samples(tmp_path: Path, rate: int) -> None:
    samples = np.random.default_rng(3).integers(-32768, 32768, rate // 2).astype(np.int16)
    path = tmp_path / "round.wav"
    write_wav(path, samples, rate)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, rate)
    assert np.array_equal(read_wav(path, rate=rate), samples)


def test_read_wav_resamples_to_the_rate_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "16k.wav"
    write_wav(path, np.round(sine(16000) * 20000).astype(np.int16))
    out = read_wav(path, rate=22050)
    assert len(out) == pytest.approx(22050, rel=0.01)
    assert dominant_hz(out, 22050) == pytest.approx(TONE_HZ, abs=10)


def test_estimated_snr_tells_a_quiet_room_from_noise(speech) -> None:
    from assistant.pcm import estimated_snr_db
    from tests.speech import mix_noise

    samples = speech.samples(speech.flite("help, I fell.", "rms"), lead_s=0.3, tail_s=0.3)
    assert estimated_snr_db(samples) > 40
    assert 8 < estimated_snr_db(mix_noise(samples, 10.0)) < 16
    assert 18 < estimated_snr_db(mix_noise(samples, 20.0)) < 26
    assert estimated_snr_db(np.zeros(100, np.int16)) == 0.0  # too short to tell


def test_low_pass_keeps_the_voice_band_and_drops_the_hiss() -> None:
    from assistant.pcm import low_pass

    t = np.arange(16000) / 16000
    voice = 8000 * np.sin(2 * np.pi * 500 * t)
    hiss = 8000 * np.sin(2 * np.pi * 6000 * t)
    filtered = low_pass((voice + hiss).astype(np.int16), 3500)
    assert filtered.dtype == np.int16 and len(filtered) == 16000
    # the 6 kHz tone is gone, the 500 Hz one intact
    assert np.abs(filtered.astype(np.float64) - voice).max() < 50
