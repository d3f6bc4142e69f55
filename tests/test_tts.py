"""The assistant's voice: espeak-ng through pyttsx3, rendered for real; durations, not timing."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from assistant.config import SpeechOutputConfig
from assistant.pcm import read_wav, rms_dbfs
from assistant.speech.tts import ESPEAK_RATE, SpeechOutputError, SpeechSynthesizer
from assistant.voice import OUTPUT_RATE, Voice, WavRecorder, earcon

SENTENCE = "I need a video consultation."
OTHER_VOICE = "gmw/en-gb-scotland"
ROOT = Path(__file__).resolve().parent.parent


def seconds(samples: np.ndarray, rate: int = ESPEAK_RATE) -> float:
    return len(samples) / rate


def render(text: str = SENTENCE, **settings) -> np.ndarray:
    return SpeechSynthesizer(SpeechOutputConfig(**settings)).render(text)


def test_a_sentence_becomes_an_audible_mono_22050_hz_wav(tmp_path: Path) -> None:
    path = SpeechSynthesizer(SpeechOutputConfig()).to_file(SENTENCE, tmp_path / "reply.wav")
    assert path == tmp_path / "reply.wav"
    assert path.exists()
    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 1
        assert wav.getframerate() == 22050
        assert wav.getsampwidth() == 2
        assert wav.getnframes() / wav.getframerate() > 1.0
    samples = read_wav(path, rate=22050)
    assert rms_dbfs(samples) > -40


@pytest.mark.parametrize("text", ["OK.", SENTENCE])
def test_a_sentence_keeps_its_end(text: str) -> None:
    """The last word is rendered, not cut off: the sound ends in espeak-ng's end pause
    (about 0.4 s), not in the middle of a word."""
    samples = render(text)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    assert loud.size
    tail_s = seconds(samples) - (loud[-1] + 1) / ESPEAK_RATE
    assert 0.2 < tail_s < 0.7


def test_a_slower_rate_gives_a_longer_rendering() -> None:
    slow, fast = render(rate_wpm=100), render(rate_wpm=200)
    assert seconds(slow) / seconds(fast) > 1.4


def test_a_lower_volume_gives_a_quieter_rendering_of_the_same_length() -> None:
    quiet, loud = render(volume=0.3), render(volume=1.0)
    assert rms_dbfs(quiet) < rms_dbfs(loud) - 6  # 0.3 of the amplitude is about -10 dB
    assert seconds(quiet) == pytest.approx(seconds(loud), rel=0.02)


def test_synthesizers_alive_together_keep_their_own_settings() -> None:
    """espeak-ng is one engine per process; each synthesizer must still speak its way."""
    slow = SpeechSynthesizer(SpeechOutputConfig(rate_wpm=100))
    fast = SpeechSynthesizer(SpeechOutputConfig(rate_wpm=300))
    first, other, again = slow.render(SENTENCE), fast.render(SENTENCE), slow.render(SENTENCE)
    assert seconds(first) / seconds(other) > 1.8
    assert seconds(again) == pytest.approx(seconds(first), rel=0.01)


def test_a_voice_chosen_by_one_synthesizer_does_not_leak_into_another() -> None:
    default = SpeechSynthesizer(SpeechOutputConfig())
    scottish = SpeechSynthesizer(SpeechOutputConfig(voice=OTHER_VOICE))
    before = default.render(SENTENCE)
    other = scottish.render(SENTENCE)
    # The voices differ measurably (espeak-ng renders repeat to within a few samples).
    assert abs(seconds(other) / seconds(before) - 1) > 0.02
    after = default.render(SENTENCE)
    assert seconds(after) == pytest.approx(seconds(before), rel=0.005)


RENDER_IN_A_FRESH_PROCESS = """
import sys
from assistant.config import SpeechOutputConfig
from assistant.speech.tts import SpeechSynthesizer
text, first_voice = sys.argv[1], sys.argv[2]
first = None
if first_voice:  # another part of the program speaks first, in its own voice, and stays
    first = SpeechSynthesizer(SpeechOutputConfig(voice=first_voice))
    first.render(text)
print(len(SpeechSynthesizer(SpeechOutputConfig()).render(text)))
"""


def fresh_process_render_length(first_voice: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", RENDER_IN_A_FRESH_PROCESS, SENTENCE, first_voice],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.split()[-1])


def test_the_default_voice_is_espeaks_default_even_when_another_voice_spoke_first() -> None:
    """If "the default voice" is read from espeak-ng when the first voiceless synthesizer is
    made, a synthesizer with a chosen voice that spoke before (and is still alive) makes its
    own voice the default for the rest of the process."""
    untouched = fresh_process_render_length("")
    after_other = fresh_process_render_length(OTHER_VOICE)
    assert after_other == pytest.approx(untouched, rel=0.005)


def test_an_unknown_voice_is_refused_with_its_name() -> None:
    with pytest.raises(SpeechOutputError, match="no-such-voice"):
        SpeechSynthesizer(SpeechOutputConfig(voice="no-such-voice"))


def test_an_installed_voice_is_accepted_and_speaks() -> None:
    samples = render(voice="gmw/en-us")
    assert seconds(samples) > 1.0
    assert rms_dbfs(samples) > -40


def test_nothing_to_say_is_a_speech_output_error_not_an_empty_sound() -> None:
    with pytest.raises(SpeechOutputError, match="no audio"):
        SpeechSynthesizer(SpeechOutputConfig()).render("")


def test_synthesize_resamples_to_the_rate_asked_for() -> None:
    synthesizer = SpeechSynthesizer(SpeechOutputConfig())
    native = synthesizer.synthesize(SENTENCE)
    at_16k = synthesizer.synthesize(SENTENCE, rate=16000)
    assert at_16k.dtype == np.int16
    assert seconds(at_16k, 16000) == pytest.approx(seconds(native), rel=0.01)
    assert rms_dbfs(at_16k) == pytest.approx(rms_dbfs(native), abs=1.0)


def test_voice_records_every_sentence_into_one_growing_file(tmp_path: Path) -> None:
    path = tmp_path / "said.wav"
    voice = Voice(SpeechSynthesizer(SpeechOutputConfig()), WavRecorder(path))
    gap = OUTPUT_RATE // 4
    first = voice.say("Hello.")
    after_one = read_wav(path, rate=OUTPUT_RATE)
    second = voice.say(SENTENCE)
    after_two = read_wav(path, rate=OUTPUT_RATE)
    assert len(after_one) == len(first) + gap
    assert len(after_two) == len(first) + len(second) + 2 * gap
    assert np.array_equal(after_two[: len(first)], first)
    assert np.array_equal(after_two[len(first) + gap : len(first) + gap + len(second)], second)
    assert rms_dbfs(after_two[len(first) : len(first) + gap]) == float("-inf")  # the gap


def test_voice_chime_records_the_earcon(tmp_path: Path) -> None:
    path = tmp_path / "chime.wav"
    voice = Voice(SpeechSynthesizer(SpeechOutputConfig()), WavRecorder(path))
    voice.chime()
    recorded = read_wav(path, rate=OUTPUT_RATE)
    assert np.array_equal(recorded[: len(earcon())], earcon())


def test_wav_recorder_takes_only_its_own_rate(tmp_path: Path) -> None:
    recorder = WavRecorder(tmp_path / "x.wav")
    with pytest.raises(ValueError, match=str(OUTPUT_RATE)):
        recorder.play(np.zeros(160, np.int16), 16000)
    assert not (tmp_path / "x.wav").exists()


def test_the_earcon_is_short_and_audible() -> None:
    chime = earcon()
    assert chime.dtype == np.int16
    assert 0.1 < seconds(chime, OUTPUT_RATE) < 0.5
    assert rms_dbfs(chime) > -30
    assert np.abs(chime.astype(np.int32)).max() < 0.5 * 32767  # soft, not full scale
    assert abs(int(chime[0])) < 100 and abs(int(chime[-1])) < 100  # faded: no click


# Intelligibility: "I need a video consultation" in espeak-ng's voice, recognised by
# PocketsphinxRecognizer with a grammar of a few phrases, is not asserted. The grammar search
# finds the phrase, but the recognizer's free-language-model check hears "i really do look on
# to shoot" and vetoes it, so the transcript is the free one. See the report to the lead.
