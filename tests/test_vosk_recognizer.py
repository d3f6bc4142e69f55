"""vosk through the same interface as pocketsphinx, on the real (Korean) vosk model."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from assistant.pcm import read_wav
from assistant.speech.recognizer import RecognizerError
from tests.vosk_model import KO_MODEL, needs_ko

pytestmark = needs_ko

KOREAN_REQUEST = "안녕하세요 저는 의사가 필요합니다"  # "hello, I need a doctor"


@pytest.fixture(scope="module")
def vosk_recognizer():
    from assistant.speech.vosk_recognizer import VoskRecognizer

    return VoskRecognizer(KO_MODEL)


@pytest.fixture(scope="module")
def korean_speech(tmp_path_factory) -> np.ndarray:
    path = tmp_path_factory.mktemp("ko") / "request.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), KOREAN_REQUEST], check=True)
    return read_wav(path)  # espeak-ng writes 22.05 kHz: this resamples to 16 kHz


def test_streaming_gives_partials_then_a_final_transcript(vosk_recognizer, korean_speech):
    vosk_recognizer.set_grammar(None)
    vosk_recognizer.start()
    partials = []
    for i in range(0, len(korean_speech), 1600):
        result = vosk_recognizer.accept(korean_speech[i : i + 1600].tobytes())
        if result is not None:
            assert not result.final
            partials.append(result.text)
    final = vosk_recognizer.finish()
    assert partials, "vosk gave no partial result while streaming"
    assert final.final
    assert len(final.text.split()) >= 3
    assert 0.0 < final.confidence <= 1.0
    # Hangul came back: the Korean model decoded the Korean speech, not noise words.
    assert sum("\uac00" <= ch <= "\ud7a3" for ch in final.text) >= 5


def test_silence_gives_an_empty_transcript(vosk_recognizer):
    vosk_recognizer.set_grammar(None)
    transcript = vosk_recognizer.transcribe(np.zeros(16000 * 2, np.int16).tobytes())
    assert transcript.text == ""
    assert transcript.confidence == 0.0


def test_grammar_handed_to_vosk_is_the_phrases_the_model_can_say(vosk_recognizer, korean_speech):
    kept = vosk_recognizer.set_grammar(["안녕하세요", "안녕하세요 hello", "  안녕하세요! "])
    assert kept == ["안녕하세요"]  # "hello" is not in the Korean vocabulary
    assert json.loads(vosk_recognizer.grammar_json) == ["안녕하세요"]  # and neither is [unk]
    # Constrained, the model can only answer with the grammar's words.
    heard = vosk_recognizer.transcribe(korean_speech.tobytes()).text
    assert heard and set(heard.split()) == {"안녕하세요"}
    vosk_recognizer.set_grammar(None)
    assert vosk_recognizer.grammar_json is None
    assert len(vosk_recognizer.transcribe(korean_speech.tobytes()).text.split()) >= 3


def test_grammar_in_another_language_is_a_clear_error(vosk_recognizer, engine):
    vosk_recognizer.set_grammar(None)
    with pytest.raises(RecognizerError, match="none of the grammar phrases"):
        vosk_recognizer.set_grammar(engine.phrases())  # English phrases, Korean model
    assert vosk_recognizer.grammar_json is None


def test_empty_grammar_is_refused(vosk_recognizer):
    with pytest.raises(RecognizerError, match="empty"):
        vosk_recognizer.set_grammar(["", " ! "])


def test_missing_model_is_a_clear_error(tmp_path):
    from assistant.speech.vosk_recognizer import VoskRecognizer

    with pytest.raises(RecognizerError, match="could not load"):
        VoskRecognizer(tmp_path / "no-such-model")


def test_damaged_model_is_a_clear_error_not_a_crash(tmp_path):
    """A copy of the real model whose acoustic model file was cut short."""
    import shutil

    from assistant.speech.vosk_recognizer import VoskRecognizer

    damaged = tmp_path / "damaged"
    shutil.copytree(KO_MODEL, damaged, ignore=shutil.ignore_patterns("*.fst"))
    for fst in ("HCLr.fst", "Gr.fst"):
        (damaged / "graph" / fst).symlink_to(KO_MODEL / "graph" / fst)
    final_mdl = damaged / "am" / "final.mdl"
    final_mdl.write_bytes(final_mdl.read_bytes()[:1000])
    with pytest.raises(RecognizerError, match="vosk could not"):
        VoskRecognizer(damaged)
