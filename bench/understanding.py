"""How well and how fast the assistant understands: the labelled set as text and as speech.

- engine: latency per request (p50/p99), throughput, and the worst case (10 kB of text);
- speech: the set spoken by flite and espeak-ng voices, through each recognizer available
  (pocketsphinx with the grammar; vosk only when an English model is installed), scored by
  command acceptance, per voice;
- emergency recall: the emergency cases spoken by every voice with white noise at 10 dB SNR.

Speech cases are every SPEECH_EVERY-th case of the set (a fixed, deterministic sample) to
keep the run to a few minutes on two cores; the work is spread over the machine's cores.
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from assistant.evaluate import Case, Evaluator, Outcome, Report, load_cases
from intents import IntentEngine
from tests.speech import ESPEAK_VOICES, FLITE_VOICES, SpeechMaker

DATASET = Path(__file__).resolve().parent.parent / "tests" / "data" / "intents_en.jsonl"
SPEECH_EVERY = 6  # every 6th case of the dev set, by each of the 8 voices
EMERGENCY_EVERY = 2  # every 2nd emergency case, with white noise
EMERGENCY_SNR_DB = 10.0
VOICES = [("flite", v) for v in FLITE_VOICES] + [("espeak", v) for v in ESPEAK_VOICES]


def measure_engine(engine: IntentEngine, cases: list[Case], rounds: int = 5) -> dict:
    texts = [c.text or "" for c in cases]
    latencies = []
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            t0 = time.perf_counter()
            engine.recognize(text)
            latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    t0 = time.perf_counter()
    engine.recognize("please remind me " * 600)  # about 10 kB
    worst = time.perf_counter() - t0
    report = Report(Evaluator(engine).run(cases))
    summary = report.summary()
    ms = np.array(latencies) * 1000
    return {
        "cases": len(cases),
        "command_acceptance": summary["command_acceptance"],
        "intent_accuracy": summary["intent_accuracy"],
        "slot_accuracy": summary["slot_accuracy"],
        "out_of_domain_false_accepts": summary["out_of_domain_false_accepts"],
        "latency_ms_p50": float(np.percentile(ms, 50)),
        "latency_ms_p99": float(np.percentile(ms, 99)),
        "throughput_per_s": len(latencies) / elapsed,
        "ten_kb_text_ms": worst * 1000,
    }


def _speak(maker: SpeechMaker, kind: str, voice: str, text: str) -> Path:
    return maker.flite(text, voice) if kind == "flite" else maker.espeak(text, voice=voice)


def spoken_cases(maker: SpeechMaker, cases: list[Case], kind: str, voice: str) -> list[Case]:
    return [
        Case(c.intent, c.slots, audio=_speak(maker, kind, voice, c.text or ""), line=c.line)
        for c in cases
    ]


_EVALUATOR: Evaluator | None = None


def white_noise(seconds: float = 10.0) -> np.ndarray:
    return np.random.default_rng(0).normal(0.0, 1000.0, int(16000 * seconds))


def _start_worker(engine_name: str, snr_db: float | None) -> None:
    """A recognizer per worker; with `snr_db`, white noise is mixed into each case after it
    is padded with the evaluator's pre-roll, so the pauses are as noisy as the speech (as in
    a room; noise stopping at the pauses would make the audio look clean)."""
    global _EVALUATOR
    from assistant.config import Config
    from assistant.speech.factory import create_recognizer

    engine = IntentEngine.for_language("en")
    config = Config()
    config.recognizer.engine = engine_name
    recognizer = create_recognizer(config, grammar=engine.grammar())
    noise = white_noise() if snr_db is not None else None
    _EVALUATOR = Evaluator(engine, recognizer, noise, snr_db or 0.0)


def _evaluate(cases: list[Case]) -> list[Outcome]:
    assert _EVALUATOR is not None
    return _EVALUATOR.run(cases)


def run_spoken(
    engine_name: str, batches: dict[str, list[Case]], snr_db: float | None = None
) -> dict[str, Report]:
    """Each batch (a voice) through a fresh recognizer per worker process."""
    workers = max(1, min(os.cpu_count() or 1, 4))
    start = (engine_name, snr_db)
    with ProcessPoolExecutor(workers, initializer=_start_worker, initargs=start) as pool:
        chunks = {
            name: [cases[i::workers] for i in range(workers)] for name, cases in batches.items()
        }
        futures = {
            name: [pool.submit(_evaluate, chunk) for chunk in parts]
            for name, parts in chunks.items()
        }
        return {
            name: Report(
                sorted((o for f in parts for o in f.result()), key=lambda o: o.case.line),
                recognizer=engine_name,
            )
            for name, parts in futures.items()
        }


def vosk_available() -> str | None:
    """None when an English vosk model is installed, else why not."""
    from assistant.config import Config
    from assistant.speech.factory import create_recognizer
    from assistant.speech.recognizer import RecognizerError

    config = Config()
    config.recognizer.engine = "vosk"
    try:
        create_recognizer(config)
    except RecognizerError as exc:
        return str(exc)
    return None


def _figures(report: Report) -> dict:
    s = report.summary()
    return {
        "cases": s["cases"],
        "command_acceptance": s["command_acceptance"],
        "intent_accuracy": s["intent_accuracy"],
        "out_of_domain_false_accepts": s["out_of_domain_false_accepts"],
        "out_of_domain_cases": s["out_of_domain_cases"],
    }


def emergency_recall(reports: dict[str, Report]) -> dict:
    per_voice = {}
    hits = total = 0
    for name, report in reports.items():
        got = [o.intent == "emergency" for o in report.outcomes]
        per_voice[name] = sum(got) / len(got)
        hits += sum(got)
        total += len(got)
    return {"recall": hits / total, "cases": total, "per_voice": per_voice}


def run() -> dict:
    engine = IntentEngine.for_language("en")
    cases = load_cases(DATASET)
    results: dict = {"engine": measure_engine(engine, cases)}
    sample = cases[::SPEECH_EVERY]
    emergencies = [c for c in cases if c.intent == "emergency"][::EMERGENCY_EVERY]
    engines = ["pocketsphinx"]
    skipped = vosk_available()
    if skipped is None:
        engines.append("vosk")
    else:
        results["vosk_skipped"] = skipped
    with tempfile.TemporaryDirectory(prefix="bench-understanding-") as tmp:
        directory = Path(tmp)
        maker = SpeechMaker(directory)
        spoken = {f"{k}_{v}": spoken_cases(maker, sample, k, v) for k, v in VOICES}
        noisy = {f"{k}_{v}": spoken_cases(maker, emergencies, k, v) for k, v in VOICES}
        for name in engines:
            reports = run_spoken(name, spoken)
            per_voice = {voice: _figures(r) for voice, r in reports.items()}
            accepted = sum(r.accepted for r in reports.values())
            total = sum(len(r.outcomes) for r in reports.values())
            results[f"speech_{name}"] = {
                "command_acceptance": accepted / total,
                "cases": total,
                "per_voice": per_voice,
            }
            results[f"emergency_recall_10db_{name}"] = emergency_recall(
                run_spoken(name, noisy, EMERGENCY_SNR_DB)
            )
    return results
