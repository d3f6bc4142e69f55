"""The whole assistant process through real PortAudio: an ALSA file device is the
microphone (synthesised speech goes in through sounddevice) and another is the loudspeaker
(what the assistant says is captured as audio)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.pcm import read_wav, rms_dbfs
from tests.audio_devices import virtual_audio
from tests.cli import run_cli, turn_lines

pytestmark = pytest.mark.e2e

SPEAKER_RATE = 22050  # the assistant plays its speech at espeak-ng's rate


def speak_into_microphone(speech, text: str, voice: str, tmp_path):
    samples = speech.samples(speech.flite(text, voice), lead_s=1.0, tail_s=3.0)
    return virtual_audio(tmp_path / "audio", samples)


@pytest.mark.parametrize("voice", ["slt", "rms", "awb"])
def test_wake_phrase_and_request_through_the_microphone(speech, voice, tmp_path) -> None:
    audio = speak_into_microphone(
        speech, "hey helper. I need a video consultation.", voice, tmp_path
    )
    result = run_cli("run", "--once", env=audio.env, timeout=120)
    assert result.returncode == 0, result.stderr
    turn = turn_lines(result.stdout)
    assert "video consultation" in turn["heard"]
    assert turn["intent"] == "request_consultation mode=video"
    assert "wake phrase heard" in result.stderr

    played = audio.speaker_samples()  # the file device keeps the last stream: the reply
    seconds = len(played) / SPEAKER_RATE
    assert seconds > 2.0, "a spoken sentence should have been played"
    assert rms_dbfs(played) > -45
    # The reply is speech: its loudness varies like syllables do, unlike a tone or hiss.
    frames = played[: len(played) // 441 * 441].reshape(-1, 441).astype(np.float64)
    loudness = np.sqrt((frames**2).mean(axis=1))
    assert (loudness > 500).mean() > 0.3 and (loudness < 100).mean() > 0.05


def test_the_reply_is_the_one_the_loop_chose(speech, tmp_path) -> None:
    """The captured loudspeaker audio is the synthesised reply, whole, sample for sample
    as `say` renders it (the file device keeps only the last stream: not the chime)."""
    audio = speak_into_microphone(speech, "hey helper. what time is it?", "kal16", tmp_path)
    result = run_cli("run", "--once", env=audio.env, timeout=120)
    assert result.returncode == 0, result.stderr
    turn = turn_lines(result.stdout)
    assert turn["intent"] == "what_time"
    reference = tmp_path / "reference.wav"
    assert run_cli("say", turn["reply"], "--out", str(reference)).returncode == 0
    expected = read_wav(reference, rate=SPEAKER_RATE)
    played = audio.speaker_samples()
    assert len(played) >= len(expected), "the end of the reply was cut off"
    head = played[: len(expected)].astype(np.float64)
    correlation = np.corrcoef(head, expected.astype(np.float64))[0, 1]
    assert correlation > 0.95


def test_push_to_talk_without_wake_phrase(speech, tmp_path) -> None:
    audio = speak_into_microphone(speech, "help, I fell.", "rms", tmp_path)
    result = run_cli("run", "--once", "--no-wake", env=audio.env, timeout=120)
    assert result.returncode == 0, result.stderr
    turn = turn_lines(result.stdout)
    assert turn["intent"] == "emergency kind=fall"
    assert "help" in turn["reply"].lower()
