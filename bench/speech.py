"""Recognizers and the running assistant: real-time factor, end-of-speech-to-text latency,
start-up time and resident memory, on a fixed set of synthesised utterances."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.config import EndpointConfig
from assistant.endpoint import Endpointer, frames_of
from assistant.pcm import read_wav
from assistant.speech.recognizer import Recognizer
from intents import IntentEngine
from tests.audio_devices import virtual_audio
from tests.speech import FLITE_VOICES, SpeechMaker
from tests.vosk_model import KO_MODEL

COMMANDS = [
    "I need a video consultation.",
    "Help, I fell.",
    "Call my daughter.",
    "What time is it?",
    "I need a doctor.",
    "I can't get up.",
]
KOREAN = ["의사가 필요합니다", "안녕하세요", "도와주세요 넘어졌어요"]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def measure_recognizer(recognizer: Recognizer, utterances: list[np.ndarray]) -> dict:
    """Stream each utterance in 30 ms frames as a microphone would, with the endpointer.

    The real-time factor is compute time over audio time. The latency is what a senior
    waits from the end of the last word to the transcript: the endpointer's pause (audio
    time, from the config) plus the compute time of finishing the decode."""
    config = EndpointConfig()
    compute = audio = 0.0
    finish_times, waits = [], []
    for samples in utterances:
        padded = np.concatenate([np.zeros(8000, np.int16), samples, np.zeros(32000, np.int16)])
        endpointer = Endpointer(config)
        recognizer.start()
        started = time.perf_counter()
        utterance = None
        for frame in frames_of(padded):
            recognizer.accept(frame)
            utterance = endpointer.feed(frame)
            if utterance is not None:
                break
        decided = time.perf_counter()
        recognizer.finish()
        done = time.perf_counter()
        compute += done - started
        audio += utterance.decided_s if utterance else len(padded) / 16000
        finish_times.append(done - decided)
        if utterance is not None:
            waits.append(utterance.decided_s - utterance.speech_end_s)
    latency = [w + f for w, f in zip(waits, finish_times, strict=False)]
    return {
        "utterances": len(utterances),
        "real_time_factor": compute / audio,
        "finish_ms_p50": 1000 * percentile(finish_times, 50),
        "finish_ms_p95": 1000 * percentile(finish_times, 95),
        "end_of_speech_to_text_ms_p50": 1000 * percentile(latency, 50),
        "end_of_speech_to_text_ms_p95": 1000 * percentile(latency, 95),
    }


def english_utterances(maker: SpeechMaker) -> list[np.ndarray]:
    return [read_wav(maker.flite(t, v)) for t in COMMANDS for v in FLITE_VOICES]


def korean_utterances(directory: Path) -> list[np.ndarray]:
    out = []
    for i, text in enumerate(KOREAN):
        path = directory / f"ko{i}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), text], check=True)
        out.append(read_wav(path))
    return out


def measure_process(env: dict[str, str], args: list[str], seconds: float) -> dict:
    """Start `senior-assistant`, wait until it is listening, sample its memory."""
    command = [sys.executable, "-m", "assistant.cli", *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    ready = None
    assert process.stderr is not None
    for line in process.stderr:
        if "ready:" in line:
            ready = time.perf_counter() - started
            break
    deadline = time.perf_counter() + seconds
    rss = hwm = 0
    while time.perf_counter() < deadline and process.poll() is None:
        status = Path(f"/proc/{process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss = max(rss, int(fields["VmRSS"].split()[0]))
        hwm = int(fields["VmHWM"].split()[0])
        time.sleep(0.2)
    process.kill()
    process.wait()
    return {"start_up_s": ready, "rss_mb": rss / 1024, "peak_rss_mb": hwm / 1024}


def run() -> dict:
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        directory = Path(tmp)
        maker = SpeechMaker(directory)
        english = english_utterances(maker)
        phrases = IntentEngine.for_language("en").phrases()

        from assistant.speech.sphinx import PocketsphinxRecognizer

        free = PocketsphinxRecognizer()
        results["pocketsphinx_free"] = measure_recognizer(free, english)
        constrained = PocketsphinxRecognizer()
        constrained.set_grammar(phrases)
        results["pocketsphinx_grammar"] = measure_recognizer(constrained, english)
        if KO_MODEL is not None:
            from assistant.speech.vosk_recognizer import VoskRecognizer

            started = time.perf_counter()
            vosk = VoskRecognizer(KO_MODEL)
            load_s = time.perf_counter() - started
            results["vosk_ko"] = measure_recognizer(vosk, korean_utterances(directory))
            results["vosk_ko"]["model_load_s"] = load_s

        silence = np.zeros(16000 * 60, np.int16)
        audio = virtual_audio(directory / "audio", silence)
        results["assistant_pocketsphinx"] = measure_process(audio.env, ["run"], seconds=5)
        if KO_MODEL is not None:
            config = directory / "vosk.toml"
            config.write_text(
                f'[recognizer]\nengine = "vosk"\nvosk_model = "{KO_MODEL}"\nuse_grammar = false\n'
            )
            results["assistant_vosk_ko"] = measure_process(
                audio.env, ["--config", str(config), "run"], seconds=5
            )
    return results
