"""Endpointing as a senior speaks: requests said at once, and requests with a pause of 1.0
to 1.2 s in the middle (the first part not a request by itself), by flite's four voices
at two speeds, over a faint noise floor. Where the speech really ends is known (the
synthesised words are placed in the audio), so the delay after the last word is measured
against it, not against the detector's own idea of the end."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from assistant.config import EndpointConfig
from assistant.endpoint import CompleteRequest, Endpointer, EndReason, frames_of
from assistant.pcm import RATE, mix_at_snr, read_wav
from tests.wake_set import WakeSet, trim

WHOLE = ["I need a doctor", "call my daughter", "what time is it", "help, I fell"]
PAUSED = [
    ("I need", "a doctor"),
    ("call my", "daughter"),
    ("I want to talk to", "my son"),
    ("I need a", "video consultation"),
]
VOICES = ("slt", "rms", "awb", "kal16")
STRETCHES = (1.0, 1.35)
LEAD_S, TAIL_S = 0.6, 2.5
NOISE_FLOOR_SNR_DB = 30.0


@dataclass
class Spoken:
    samples: np.ndarray
    speech_end_s: float  # end of the last word
    second_part_s: float | None  # where the words after the pause begin
    label: str


def spoken_cases(wake_set: WakeSet, voices=VOICES, stretches=STRETCHES) -> list[Spoken]:
    rng = random.Random(wake_set.seed)
    cases = []
    lead = np.zeros(int(RATE * LEAD_S), np.int16)
    tail = np.zeros(int(RATE * TAIL_S), np.int16)
    for voice in voices:
        for stretch in stretches:
            for text in WHOLE:
                words = read(wake_set, text, voice, stretch)
                samples = np.concatenate([lead, words, tail])
                end = (len(lead) + len(words)) / RATE
                cases.append(Spoken(samples, end, None, f"{voice}x{stretch:g}: {text}"))
            for first, second in PAUSED:
                pause = np.zeros(int(RATE * rng.uniform(1.0, 1.2)), np.int16)
                a = read(wake_set, first, voice, stretch)
                b = read(wake_set, second, voice, stretch)
                samples = np.concatenate([lead, a, pause, b, tail])
                start_b = (len(lead) + len(a) + len(pause)) / RATE
                end = start_b + len(b) / RATE
                label = f"{voice}x{stretch:g}: {first} ... {second} ({len(pause) / RATE:.2f} s)"
                cases.append(Spoken(samples, end, start_b, label))
    noise = wake_set.noise("pink")
    for case in cases:
        case.samples = mix_at_snr(case.samples, noise, NOISE_FLOOR_SNR_DB)
    return cases


def read(wake_set: WakeSet, text: str, voice: str, stretch: float) -> np.ndarray:
    """flite's speech without its own pauses around it."""
    return trim(read_wav(wake_set.maker.flite(text, voice, stretch)))


def measure(
    wake_set: WakeSet,
    recognizer,
    engine,
    config: EndpointConfig | None = None,
    voices: tuple[str, ...] = VOICES,
    stretches: tuple[float, ...] = STRETCHES,
) -> dict:
    """Delay after the last word for whole requests; requests cut at their inner pause."""
    config = config or EndpointConfig()
    slow = []
    check = CompleteRequest(recognizer, engine)
    delays: dict[str, list[float]] = {"whole": [], "paused": []}
    cut, late = [], []
    for case in spoken_cases(wake_set, voices, stretches):
        endpointer = Endpointer(config, complete=check)
        recognizer.start()
        check.start()
        utterance = None
        for frame in frames_of(case.samples):
            recognizer.accept(frame)
            check.accept(frame)
            speaking = endpointer.in_speech
            utterance = endpointer.feed(frame)
            if utterance is not None:
                break
            if not speaking and endpointer.in_speech:  # as the loop: heard from the pre-roll on
                heard = endpointer.speech_audio()
                recognizer.start()
                recognizer.accept(heard)
                check.start()
                check.accept(heard)
        recognizer.start()  # drop what it collected
        if utterance is None or utterance.reason is not EndReason.END_OF_SPEECH:
            late.append(case.label)
            continue
        if case.second_part_s is not None and utterance.decided_s < case.speech_end_s:
            cut.append(case.label)
            continue
        delay = utterance.decided_s - case.speech_end_s
        delays["paused" if case.second_part_s else "whole"].append(delay)
        if delay > 0.5:
            slow.append(f"{case.label}: {delay:.2f} s")
    figures: dict = {"utterances": len(voices) * len(stretches) * (len(WHOLE) + len(PAUSED))}
    delays["all"] = delays["whole"] + delays["paused"]
    for kind, values in delays.items():
        figures[kind] = {
            "ended": len(values),
            "delay_s_p50": float(np.percentile(values, 50)) if values else -1.0,
            "delay_s_p95": float(np.percentile(values, 95)) if values else -1.0,
            "delay_s_max": max(values, default=-1.0),
        }
    figures["within_0.5_s"] = sum(delay <= 0.5 for delay in delays["all"])
    figures["cut_at_inner_pause"] = len(cut)
    figures["cut"], figures["not_ended"], figures["slower_than_0.5_s"] = cut, late, slow
    return figures


def main(argv: list[str] | None = None) -> None:
    """`python -m tests.endpoint_set [--voices slt,kal16] [--stretches 1.35]`: the figures
    of `measure()` as JSON, with pocketsphinx and the intents as `run` builds them."""
    import argparse
    import json
    import logging
    import time

    from assistant.speech.sphinx import PocketsphinxRecognizer
    from intents import IntentEngine

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--voices", default=",".join(VOICES))
    parser.add_argument("--stretches", default=",".join(f"{s:g}" for s in STRETCHES))
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    engine = IntentEngine.for_language("en")
    recognizer = PocketsphinxRecognizer()
    recognizer.set_grammar(engine.grammar())
    started = time.process_time()
    figures = measure(
        WakeSet(),
        recognizer,
        engine,
        voices=tuple(options.voices.split(",")),
        stretches=tuple(float(s) for s in options.stretches.split(",")),
    )
    figures["cpu_s"] = time.process_time() - started
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
