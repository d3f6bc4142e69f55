"""Endpointing with webrtcvad on real speech (flite), placed in digital silence."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.config import EndpointConfig
from assistant.endpoint import Endpointer, EndReason, Utterance, frames_of

RATE = 16000
FRAME_MS = 30
FRAME_S = FRAME_MS / 1000
LOUD = 300  # |sample| above this is speech in flite's output (its pauses stay below ~270)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(RATE * seconds), np.int16)


def speech_bounds(samples: np.ndarray) -> tuple[float, float]:
    """First and last loud sample, in seconds: where the speech really is."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > LOUD)
    return loud[0] / RATE, (loud[-1] + 1) / RATE


def trimmed(speech, text: str, voice: str = "slt") -> np.ndarray:
    """flite speech without its own leading and trailing pauses."""
    samples = speech.samples(speech.flite(text, voice), lead_s=0.0)
    start, end = speech_bounds(samples)
    return samples[int(start * RATE) : int(end * RATE)]


def run(samples: np.ndarray, config: EndpointConfig) -> tuple[list[Utterance], list[int]]:
    """Every utterance decided while feeding `samples`, and the frame index of each decision."""
    endpointer = Endpointer(config, rate=RATE, frame_ms=FRAME_MS)
    decided, at = [], []
    for index, frame in enumerate(frames_of(samples, RATE, FRAME_MS)):
        utterance = endpointer.feed(frame)
        if utterance is not None:
            decided.append(utterance)
            at.append(index)
    return decided, at


def test_one_request_is_found_where_it_is(speech) -> None:
    samples = speech.samples(speech.flite("I need a video consultation.", "slt"), 1.0, 2.0)
    true_start, true_end = speech_bounds(samples)
    assert true_start == pytest.approx(1.2, abs=0.1)  # flite's own lead-in, then the words
    config = EndpointConfig()
    utterances, _ = run(samples, config)
    assert len(utterances) == 1
    utterance = utterances[0]
    assert utterance.reason is EndReason.END_OF_SPEECH
    assert utterance.speech_start_s == pytest.approx(true_start, abs=0.3)
    assert utterance.speech_end_s == pytest.approx(true_end, abs=0.3)
    # The decision waits exactly the configured pause after the last voiced frame.
    wait = utterance.decided_s - utterance.speech_end_s
    assert wait == pytest.approx(config.end_silence_ms / 1000, abs=FRAME_S)


def test_the_utterance_audio_holds_all_the_speech_and_little_else(speech) -> None:
    samples = speech.samples(speech.flite("I need a video consultation.", "slt"), 1.0, 2.0)
    true_start, true_end = speech_bounds(samples)
    (utterance,), _ = run(samples, EndpointConfig())
    start = round(utterance.speech_start_s * RATE)
    assert np.array_equal(utterance.audio, samples[start : start + len(utterance.audio)])
    end_s = utterance.speech_start_s + len(utterance.audio) / RATE
    assert utterance.speech_start_s <= true_start  # pre-roll: the first syllable is kept
    assert end_s >= true_end  # the last one too
    assert end_s < utterance.decided_s  # the trailing pause is trimmed off
    assert end_s - true_end < 0.5


def test_a_slow_speaker_pausing_shorter_than_the_end_silence_is_one_utterance(speech) -> None:
    first, second = trimmed(speech, "I need"), trimmed(speech, "a video consultation.")
    samples = np.concatenate([silence(1.0), first, silence(0.6), second, silence(2.0)])
    utterances, _ = run(samples, EndpointConfig(end_silence_ms=900))
    assert len(utterances) == 1
    utterance = utterances[0]
    assert utterance.reason is EndReason.END_OF_SPEECH
    true_end = 1.0 + (len(first) + len(second)) / RATE + 0.6
    assert utterance.speech_end_s == pytest.approx(true_end, abs=0.3)
    assert len(utterance.audio) / RATE > true_end - 1.0  # both phrases, not only the first


def test_a_pause_longer_than_the_end_silence_ends_the_utterance(speech) -> None:
    first, second = trimmed(speech, "I need"), trimmed(speech, "a video consultation.")
    samples = np.concatenate([silence(1.0), first, silence(1.5), second, silence(2.0)])
    first_end = 1.0 + len(first) / RATE
    utterances, _ = run(samples, EndpointConfig(end_silence_ms=900))
    assert len(utterances) == 2
    assert utterances[0].reason is EndReason.END_OF_SPEECH
    assert utterances[0].speech_end_s == pytest.approx(first_end, abs=0.3)
    assert utterances[0].decided_s < first_end + 1.5  # decided before the second phrase
    assert len(utterances[0].audio) / RATE < len(first) / RATE + 0.6
    # Times restart with each utterance; the second phrase is the second utterance.
    assert utterances[1].reason is EndReason.END_OF_SPEECH
    second_start = first_end + 1.5 - utterances[0].decided_s
    assert utterances[1].speech_start_s == pytest.approx(second_start, abs=0.3)


def test_a_stream_longer_than_max_utterance_is_cut(speech) -> None:
    phrases = [
        trimmed(speech, "Please call my daughter."),
        trimmed(speech, "I need a video consultation."),
    ]
    talk: list[np.ndarray] = []
    while sum(map(len, talk)) < 10 * RATE:
        for phrase in phrases:
            talk += [phrase, silence(0.1)]
    samples = np.concatenate([silence(0.5), *talk])
    config = EndpointConfig(max_utterance_s=3.0)
    utterances, _ = run(samples, config)
    assert len(utterances) >= 3
    first = utterances[0]
    assert first.reason is EndReason.MAX_LENGTH
    assert first.decided_s - first.speech_start_s == pytest.approx(3.0, abs=FRAME_S)
    assert len(first.audio) / RATE == pytest.approx(3.0, abs=FRAME_S)
    assert all(u.reason is EndReason.MAX_LENGTH for u in utterances[:3])


def test_digital_silence_gives_no_speech_at_the_timeout() -> None:
    config = EndpointConfig(no_speech_timeout_s=6.0)
    utterances, at = run(silence(8.0), config)
    assert utterances, "no decision in 8 s of silence"
    first = utterances[0]
    assert first.reason is EndReason.NO_SPEECH
    assert first.audio.size == 0
    assert first.decided_s == pytest.approx(6.0, abs=1e-9)
    assert (at[0] + 1) * FRAME_S == pytest.approx(6.0, abs=1e-9)  # on the frame that ends 6 s


def test_flush_closes_an_utterance_in_progress(speech) -> None:
    samples = speech.samples(speech.flite("I need a video consultation.", "slt"), 1.0)
    true_start, _ = speech_bounds(samples)
    cut = samples[: int((true_start + 1.0) * RATE)]  # the input stops mid-sentence
    endpointer = Endpointer(EndpointConfig())
    for frame in frames_of(cut):
        assert endpointer.feed(frame) is None
    assert endpointer.in_speech
    utterance = endpointer.flush()
    assert utterance is not None
    assert utterance.reason is EndReason.END_OF_SPEECH
    assert utterance.speech_start_s == pytest.approx(true_start, abs=0.3)
    assert len(utterance.audio) / RATE == pytest.approx(len(cut) / RATE - true_start, abs=0.35)
    assert not endpointer.in_speech
    assert endpointer.flush() is None  # nothing left to close


def test_flush_without_speech_returns_none() -> None:
    endpointer = Endpointer(EndpointConfig())
    assert endpointer.flush() is None
    for frame in frames_of(silence(1.0)):
        endpointer.feed(frame)
    assert endpointer.flush() is None


@pytest.mark.parametrize("size", [0, 958, 962, 640, 1920])
def test_a_frame_of_the_wrong_size_is_refused(size: int) -> None:
    endpointer = Endpointer(EndpointConfig())  # 30 ms at 16 kHz: 960 bytes
    with pytest.raises(ValueError, match="960 bytes"):
        endpointer.feed(b"\x00" * size)


def test_frames_of_pads_the_last_frame_with_silence() -> None:
    samples = np.arange(1, 1001, dtype=np.int16)  # 1000 samples: 2 whole frames of 480 + 40
    frames = frames_of(samples, RATE, FRAME_MS)
    assert len(frames) == 3
    assert all(len(frame) == 960 for frame in frames)
    joined = np.frombuffer(b"".join(frames), np.int16)
    assert np.array_equal(joined[:1000], samples)
    assert not joined[1000:].any()


def test_frames_of_adds_no_frame_when_the_audio_divides_evenly() -> None:
    frames = frames_of(np.ones(960, np.int16), RATE, FRAME_MS)
    assert len(frames) == 2
    assert frames_of(np.zeros(0, np.int16)) == []
