"""How well and how fast the assistant understands, on the held-out evaluation set
(`tests/data/intents_en_heldout.jsonl`, phrasings nobody tuning the templates saw).

- `engine`: the intent engine on the typed set: latency per request (p50/p99), throughput,
  the worst case (10 kB of text) and its scores; the dev set's score as a regression guard.
- `speech_<recognizer>`: speech to intent. A seeded sample of `--speech-cases` cases, each
  spoken by a flite voice drawn with the same seed, through the recognizer and the engine,
  in a quiet room and with white noise (from the seed) at 10 and 5 dB SNR, over the pauses
  as well as the speech. Scored by command acceptance (right intent and slots, or "not
  understood" for a request outside the domain), with emergency recall alongside, and the
  recognizer's time per request (pocketsphinx takes several times longer on noisy audio:
  which is why the default sample is small: 20 cases, 7-8 minutes on two busy cores).

vosk takes part only when an English model is installed (the Korean one cannot score an
English set). The spoken cases are spread over the machine's cores.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from assistant.evaluate import Case, Evaluator, Outcome, Report, load_cases
from bench.common import Options, percentile
from intents import IntentEngine
from tests.speech import FLITE_VOICES, SpeechMaker

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
HELDOUT = DATA / "intents_en_heldout.jsonl"
DEV = DATA / "intents_en.jsonl"
CONDITIONS: dict[str, float | None] = {"clean": None, "snr_10db": 10.0, "snr_5db": 5.0}
ENGINE_ROUNDS = 3


def measure_engine(engine: IntentEngine, cases: list[Case], rounds: int) -> dict:
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
    summary = Report(Evaluator(engine).run(cases)).summary()
    return {
        "cases": len(cases),
        "command_acceptance": summary["command_acceptance"],
        "intent_accuracy": summary["intent_accuracy"],
        "out_of_domain_false_accepts": summary["out_of_domain_false_accepts"],
        "latency_ms_p50": 1000 * percentile(latencies, 50),
        "latency_ms_p99": 1000 * percentile(latencies, 99),
        "throughput_per_s": len(latencies) / elapsed,
        "ten_kb_text_ms": worst * 1000,
    }


def white_noise(seed: int, seconds: float = 10.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1000.0, int(16000 * seconds))


_EVALUATOR: Evaluator | None = None
_NOISE: np.ndarray | None = None


def _start_worker(engine_name: str, seed: int) -> None:
    """One recognizer per worker process, for every condition."""
    global _EVALUATOR, _NOISE
    from assistant.config import Config
    from assistant.speech.factory import create_recognizer

    engine = IntentEngine.for_language("en")
    config = Config()
    config.recognizer.engine = engine_name
    recognizer = create_recognizer(config, grammar=engine.grammar())
    _EVALUATOR = Evaluator(engine, recognizer)
    _NOISE = white_noise(seed)


def _evaluate(cases: list[Case], snr_db: float | None) -> list[Outcome]:
    """With `snr_db`, the noise is mixed in after the evaluator's padding, so the pauses
    are as noisy as the speech (as in a room)."""
    assert _EVALUATOR is not None
    _EVALUATOR.noise = None if snr_db is None else _NOISE
    _EVALUATOR.snr_db = snr_db or 0.0
    return _EVALUATOR.run(cases)


def run_spoken(
    engine_name: str, cases: list[Case], conditions: dict[str, float | None], seed: int
) -> dict[str, Report]:
    """The cases in each condition, spread over worker processes."""
    workers = max(1, min(os.cpu_count() or 1, 4))
    with ProcessPoolExecutor(
        workers, initializer=_start_worker, initargs=(engine_name, seed)
    ) as pool:
        futures = {
            name: [pool.submit(_evaluate, cases[i::workers], snr) for i in range(workers)]
            for name, snr in conditions.items()
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


def speech_figures(report: Report) -> dict:
    s = report.summary()
    emergencies = [o for o in report.outcomes if o.case.intent == "emergency"]
    return {
        "cases": s["cases"],
        "command_acceptance": s["command_acceptance"],
        "intent_accuracy": s["intent_accuracy"],
        "out_of_domain_false_accepts": s["out_of_domain_false_accepts"],
        "out_of_domain_cases": s["out_of_domain_cases"],
        "emergency_cases": len(emergencies),
        "emergency_recall": (
            sum(o.intent == "emergency" for o in emergencies) / len(emergencies)
            if emergencies
            else float("nan")
        ),
        "recognizer_ms_p50": s["recognizer_ms"]["p50"],
        "recognizer_ms_p95": s["recognizer_ms"]["p95"],
    }


def spoken_sample(maker: SpeechMaker, cases: list[Case], count: int, seed: int) -> list[Case]:
    """`count` cases drawn with `seed`, each as a WAV in a flite voice drawn likewise."""
    rng = random.Random(seed)
    sample = sorted(rng.sample(cases, min(count, len(cases))), key=lambda c: c.line)
    return [
        Case(c.intent, c.slots, audio=maker.flite(c.text or "", rng.choice(FLITE_VOICES)),
             line=c.line)
        for c in sample
    ]  # fmt: skip


def run(options: Options) -> dict:
    engine = IntentEngine.for_language("en")
    heldout = load_cases(HELDOUT)
    rounds = 1 if options.quick else ENGINE_ROUNDS
    results: dict = {"engine": measure_engine(engine, heldout[:20] if options.quick else heldout,
                                              rounds)}  # fmt: skip
    if not options.quick:
        dev = Report(Evaluator(engine).run(load_cases(DEV))).summary()
        results["engine"]["dev_set_command_acceptance"] = dev["command_acceptance"]
    engines = ["pocketsphinx"]
    skipped = vosk_available()
    if skipped is None:
        engines.append("vosk")
    else:
        results["vosk_skipped"] = skipped
    count = min(options.speech_cases, 2) if options.quick else options.speech_cases
    with tempfile.TemporaryDirectory(prefix="bench-understanding-") as tmp:
        spoken = spoken_sample(SpeechMaker(Path(tmp)), heldout, count, options.seed)
        for name in engines:
            reports = run_spoken(name, spoken, CONDITIONS, options.seed)
            results[f"speech_{name}"] = {c: speech_figures(r) for c, r in reports.items()}
    return results
