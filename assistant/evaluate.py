"""Scores the intent engine (and a recognizer) on a labelled JSON Lines dataset.

One case a line, as `../shared/design.md` defines it: `{"text": ...}` or `{"audio": path}`
(relative to the dataset file), with `"intent"` (null: out of domain) and `"slots"`. Text
goes straight to the engine; audio goes through the recognizer first, optionally with a
noise recording mixed in at a given signal-to-noise ratio. The figure that counts is the
command acceptance rate: the intent and every expected slot right (an out-of-domain case
is right only when no intent comes out).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.pcm import mix_at_snr, read_wav
from assistant.speech.recognizer import Recognizer
from intents import IntentEngine

# Silence around each recording, as a recognizer hears it after the endpointer.
_PAD = np.zeros(int(16000 * 0.3), np.int16)


class DatasetError(ValueError):
    """A dataset line that is not a case (says which line and why)."""


@dataclass(frozen=True)
class Case:
    intent: str | None
    slots: dict[str, str]
    text: str | None = None
    audio: Path | None = None
    line: int = 0


@dataclass
class Outcome:
    case: Case
    heard: str
    intent: str | None
    slots: dict[str, str]
    confidence: float
    engine_s: float
    recognizer_s: float = 0.0

    @property
    def intent_right(self) -> bool:
        return self.intent == self.case.intent

    def slot_hits(self) -> int:
        return sum(self.slots.get(name) == value for name, value in self.case.slots.items())

    @property
    def accepted(self) -> bool:
        return self.intent_right and self.slot_hits() == len(self.case.slots)


def dataset_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) of each non-blank line of a JSON Lines dataset."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: {exc}") from None


def load_cases(path: str | Path) -> list[Case]:
    """Read a dataset; a bad line stops with its number, before anything is scored."""
    path = Path(path)
    cases = []
    for number, raw in dataset_lines(path):
        try:
            cases.append(_case(raw, path.parent, number))
        except (DatasetError, TypeError) as exc:
            raise DatasetError(f"{path}:{number}: {exc}") from None
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return cases


def _case(raw: Any, base: Path, line: int) -> Case:
    if not isinstance(raw, dict):
        raise DatasetError("a case must be a JSON object")
    if ("text" in raw) == ("audio" in raw):
        raise DatasetError('a case needs exactly one of "text" and "audio"')
    if "intent" not in raw:
        raise DatasetError('a case needs "intent" (null for out-of-domain)')
    intent, slots = raw["intent"], raw.get("slots") or {}
    if intent is not None and not isinstance(intent, str):
        raise DatasetError('"intent" must be a string or null')
    if not isinstance(slots, dict) or not all(isinstance(v, str) for v in slots.values()):
        raise DatasetError('"slots" must map names to strings')
    if "text" in raw:
        if not isinstance(raw["text"], str):
            raise DatasetError('"text" must be a string')
        return Case(intent, dict(slots), text=raw["text"], line=line)
    return Case(intent, dict(slots), audio=base / str(raw["audio"]), line=line)


@dataclass
class Report:
    outcomes: list[Outcome]
    intents_dir: str = ""
    recognizer: str = ""
    noise: str = ""
    snr_db: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(o.accepted for o in self.outcomes)

    def summary(self) -> dict[str, Any]:
        outcomes = self.outcomes
        expected_slots = sum(len(o.case.slots) for o in outcomes)
        in_domain = [o for o in outcomes if o.case.intent is not None]
        out_of_domain = [o for o in outcomes if o.case.intent is None]
        engine_ms = [o.engine_s * 1000 for o in outcomes]
        summary: dict[str, Any] = {
            "cases": len(outcomes),
            "accepted": self.accepted,
            "command_acceptance": self.accepted / len(outcomes),
            "intent_accuracy": sum(o.intent_right for o in outcomes) / len(outcomes),
            "slot_accuracy": (
                sum(o.slot_hits() for o in outcomes) / expected_slots if expected_slots else 1.0
            ),
            "in_domain_acceptance": _rate(in_domain),
            "out_of_domain_false_accepts": sum(o.intent is not None for o in out_of_domain),
            "out_of_domain_cases": len(out_of_domain),
            "engine_ms": _percentiles(engine_ms),
            "errors_by_intent": self.errors_by_intent(),
        }
        if any(o.case.audio for o in outcomes):
            summary["recognizer_ms"] = _percentiles(
                [o.recognizer_s * 1000 for o in outcomes if o.case.audio]
            )
        return summary

    def errors_by_intent(self) -> dict[str, dict[str, int]]:
        """expected intent (or "none") -> {what came out instead: count}."""
        errors: dict[str, Counter[str]] = {}
        for o in self.outcomes:
            if o.accepted:
                continue
            got = o.intent or "none"
            if o.intent_right:
                got = "wrong slots"
            errors.setdefault(o.case.intent or "none", Counter())[got] += 1
        return {k: dict(v.most_common()) for k, v in sorted(errors.items())}

    def lines(self, misses: int = 0) -> list[str]:
        """The printed report; its last line is the command acceptance rate."""
        s = self.summary()
        out = [
            f"cases: {s['cases']}"
            + (f"  recognizer: {self.recognizer}" if self.recognizer else "")
            + (f"  noise: {self.noise} at {self.snr_db:g} dB" if self.noise else ""),
            f"intent accuracy: {s['intent_accuracy']:.1%}",
            f"slot accuracy: {s['slot_accuracy']:.1%}",
            f"out-of-domain false accepts: {s['out_of_domain_false_accepts']}"
            f"/{s['out_of_domain_cases']}",
            "engine latency ms: p50 {p50:.2f}  p95 {p95:.2f}  max {max:.2f}".format(
                **s["engine_ms"]
            ),
        ]
        if "recognizer_ms" in s:
            out.append(
                "recognizer ms: p50 {p50:.0f}  p95 {p95:.0f}  max {max:.0f}".format(
                    **s["recognizer_ms"]
                )
            )
        for expected, got in s["errors_by_intent"].items():
            out.append(f"  errors {expected}: " + ", ".join(f"{k} {n}" for k, n in got.items()))
        for o in [o for o in self.outcomes if not o.accepted][:misses]:
            said = o.case.text if o.case.text is not None else str(o.case.audio)
            out.append(
                f"  miss line {o.case.line}: {said!r} heard {o.heard!r} -> "
                f"{o.intent} {o.slots} (expected {o.case.intent} {o.case.slots})"
            )
        out.append(
            f"command acceptance: {s['accepted']}/{s['cases']} = {s['command_acceptance']:.1%}"
        )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "intents_dir": self.intents_dir,
            "recognizer": self.recognizer,
            "noise": self.noise,
            "snr_db": self.snr_db,
            **self.summary(),
            "outcomes": [
                {
                    **{k: v for k, v in asdict(o.case).items() if v is not None},
                    "audio": str(o.case.audio) if o.case.audio else None,
                    "heard": o.heard,
                    "got_intent": o.intent,
                    "got_slots": o.slots,
                    "confidence": round(o.confidence, 3),
                    "accepted": o.accepted,
                }
                for o in self.outcomes
            ],
        }


def _rate(outcomes: list[Outcome]) -> float:
    return sum(o.accepted for o in outcomes) / len(outcomes) if outcomes else 1.0


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "max": max(values)}


class Evaluator:
    """Runs cases through (recognizer and) engine; `noise` is mixed into audio at `snr_db`."""

    def __init__(
        self,
        engine: IntentEngine,
        recognizer: Recognizer | None = None,
        noise: np.ndarray | None = None,
        snr_db: float = 10.0,
    ) -> None:
        self.engine = engine
        self.recognizer = recognizer
        self.noise = noise
        self.snr_db = snr_db

    def outcome(self, case: Case) -> Outcome:
        recognizer_s = 0.0
        if case.audio is not None:
            heard, recognizer_s = self.hear(case.audio)
        else:
            heard = case.text or ""
        started = time.perf_counter()
        match = self.engine.recognize(heard)
        engine_s = time.perf_counter() - started
        return Outcome(
            case,
            heard,
            match.intent if match else None,
            dict(match.slots) if match else {},
            match.confidence if match else 0.0,
            engine_s,
            recognizer_s,
        )

    def hear(self, path: Path) -> tuple[str, float]:
        if self.recognizer is None:
            raise DatasetError(f"{path}: an audio case needs a recognizer")
        samples = np.concatenate([_PAD, read_wav(path), _PAD])
        if self.noise is not None:
            samples = mix_at_snr(samples, self.noise, self.snr_db)
        started = time.perf_counter()
        transcript = self.recognizer.transcribe(samples.tobytes())
        return transcript.text, time.perf_counter() - started

    def run(self, cases: list[Case]) -> list[Outcome]:
        return [self.outcome(case) for case in cases]
