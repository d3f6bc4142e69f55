"""Wake word and endpointing (`python -m bench --only wake`): miss rate and false alarms per
10 h of the wake network on the generated set (tests/wake_set.py) at each SNR of its spec, at the
configured threshold and at the one calibrated for 1 false alarm per 10 h on that same
audio; the CPU share of idle listening (household noise fed as a microphone would); the
endpointer's delay after the last word and the pauses it holds."""

from __future__ import annotations

import time

import numpy as np

from assistant.config import WakeConfig
from assistant.pcm import RATE, read_wav
from assistant.speech.wake import WakeWordSpotter
from assistant.wake_eval import WakeReport, hear, load_wake_cases
from bench.common import Options
from tests.wake_set import WakeSet

IDLE_SECONDS = 60.0


def idle_cpu(wake_set: WakeSet, phrase: str) -> dict:
    """Process time of the wake stage over a minute of household noise (tap, TV, babble:
    20 s each), as a share of one core."""
    noise = np.concatenate(
        [read_wav(path)[: int(RATE * IDLE_SECONDS / 3)] for path in wake_set.noise_only()[2:5]]
    )
    spotter = WakeWordSpotter(phrase, WakeConfig().threshold)
    data = noise.tobytes()
    wakes = 0
    started = time.process_time()
    for i in range(0, len(data), 960):
        wakes += spotter.feed(data[i : i + 960]) is not None
    used = time.process_time() - started
    return {
        "audio_s": len(noise) / RATE,
        "cpu_s": used,
        "percent_of_one_core": 100 * used / (len(noise) / RATE),
        "wakes": wakes,
    }


def babble_wakes(wake_set: WakeSet, phrase: str) -> dict:
    """How often each household noise alone (2 minutes of each) wakes the assistant."""
    out = {}
    for path in wake_set.noise_only():
        spotter = WakeWordSpotter(phrase, WakeConfig().threshold)
        data = read_wav(path).tobytes()
        wakes = 0
        for i in range(0, len(data), 960):
            if spotter.feed(data[i : i + 960]) is not None:
                wakes += 1
                spotter.reset()
        out[path.stem] = wakes
    return out


def run(options: Options) -> dict:
    """On the fixed subset by default, without the endpointing set (`make bench` stays
    within its 15 minutes); the whole set and the endpointing figures with `--wake-full`."""
    wake_set = WakeSet()
    phrase = wake_set.phrase
    threshold = WakeConfig().threshold
    results: dict = {"set": "whole" if options.wake_full else "subset"}
    results["idle"] = idle_cpu(wake_set, phrase)
    results["noise_alone_wakes_in_2_min"] = babble_wakes(wake_set, phrase)
    for snr in sorted(wake_set.spec["snr_db"], reverse=True):
        started = time.process_time()
        cases = load_wake_cases(wake_set.dataset(snr, subset=not options.wake_full))
        report = WakeReport(hear(cases, WakeWordSpotter(phrase)), phrase, threshold)
        calibrated = report.calibrate(1.0)
        flite = [o for o in report.positives if "flite" in o.case.audio.name]
        results[f"snr_{snr:g}dB"] = {
            **report.summary(),
            "flite_missed": len(report.misses())
            - sum("espeak" in o.case.audio.name for o in report.misses()),
            "flite_positives": len(flite),
            "calibrated_threshold": calibrated,
            "calibrated_miss_rate": report.miss_rate(calibrated),
            "calibrated_false_alarms_per_10h": report.false_alarms_per_10h(calibrated),
            "cpu_s": time.process_time() - started,
        }
    if not options.wake_full:  # the endpointing set costs a decode per pause: ~2 min
        return results
    from assistant.speech.sphinx import PocketsphinxRecognizer
    from intents import IntentEngine
    from tests.endpoint_set import measure

    engine = IntentEngine.for_language("en")
    recognizer = PocketsphinxRecognizer()
    recognizer.set_grammar(engine.grammar())
    started = time.process_time()
    results["endpoint"] = measure(wake_set, recognizer, engine)
    results["endpoint"]["cpu_s"] = time.process_time() - started
    return results
