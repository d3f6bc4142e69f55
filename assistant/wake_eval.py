"""Scores the wake-word spotter on labelled audio, and calibrates its threshold.

A case a line: `{"audio": "clip.wav", "wake": true}` (the clip holds the wake phrase) or
`false` (it does not; long recordings of other speech and household noise). Each clip is
heard as the device hears it, from the start, by one spotter (reset between clips). Every
first-stage candidate's second-stage score is kept, so any threshold can be judged
afterwards: a positive is missed when none of its candidates reaches the threshold, and
each negative candidate that does is a false alarm. `calibrate` picks a threshold whose
false alarms stay within a target rate, midway to the next positive; it is written to
`[wake] threshold`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.evaluate import DatasetError, dataset_lines
from assistant.pcm import RATE, read_wav
from assistant.speech.keyphrase import KeyphraseSpotter
from assistant.speech.wake import WakeWordSpotter

CHUNK = 480  # 30 ms, as the loop feeds it


@dataclass(frozen=True)
class WakeCase:
    audio: Path
    wake: bool
    line: int = 0


@dataclass
class WakeOutcome:
    case: WakeCase
    seconds: float
    scores: list[float] = field(default_factory=list)  # of every first-stage candidate

    def best(self) -> float:
        return max(self.scores, default=-math.inf)


def is_wake_dataset(path: str | Path) -> bool:
    """True when the dataset's first case is a wake case."""
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip():
                raw = json.loads(line)
                return isinstance(raw, dict) and "wake" in raw
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False  # load_cases says what is wrong
    return False


def load_wake_cases(path: str | Path) -> list[WakeCase]:
    """Read a wake dataset; a bad line stops with its number, before anything is heard."""
    path = Path(path)
    cases = []
    for number, raw in dataset_lines(path):
        if not isinstance(raw, dict) or not isinstance(raw.get("audio"), str):
            raise DatasetError(f'{path}:{number}: a wake case needs "audio": a WAV file')
        if not isinstance(raw.get("wake"), bool):
            raise DatasetError(f'{path}:{number}: a wake case needs "wake": true or false')
        cases.append(WakeCase(path.parent / raw["audio"], raw["wake"], number))
    if not cases:
        raise DatasetError(f"{path}: no cases")
    if not any(c.wake for c in cases) or all(c.wake for c in cases):
        raise DatasetError(f"{path}: needs both positive and negative wake cases")
    return cases


def hear(cases: list[WakeCase], spotter: WakeWordSpotter | KeyphraseSpotter) -> list[WakeOutcome]:
    """Every clip through the spotter, which reports every candidate's score (and wakes on
    none of them: the threshold is judged afterwards). The spotter's threshold and candidate
    listener are its own again afterwards."""
    outcomes: list[WakeOutcome] = []
    threshold, listener = spotter.threshold, spotter.on_candidate
    spotter.threshold = math.inf
    spotter.on_candidate = lambda score, _: outcomes[-1].scores.append(score)
    try:
        for case in cases:
            samples = read_wav(case.audio)
            outcomes.append(WakeOutcome(case, len(samples) / RATE))
            spotter.reset()
            data = samples.tobytes()
            for i in range(0, len(data), CHUNK * 2):
                spotter.feed(data[i : i + CHUNK * 2])
            spotter.feed(bytes(RATE))  # half a second of silence: a candidate at the end counts
            if isinstance(spotter, WakeWordSpotter):
                spotter.finish()
    finally:
        spotter.threshold, spotter.on_candidate = threshold, listener
    return outcomes


@dataclass
class WakeReport:
    outcomes: list[WakeOutcome]
    phrase: str
    threshold: float

    @property
    def positives(self) -> list[WakeOutcome]:
        return [o for o in self.outcomes if o.case.wake]

    @property
    def negatives(self) -> list[WakeOutcome]:
        return [o for o in self.outcomes if not o.case.wake]

    def negative_hours(self) -> float:
        return sum(o.seconds for o in self.negatives) / 3600

    def misses(self, threshold: float | None = None) -> list[WakeOutcome]:
        limit = self.threshold if threshold is None else threshold
        return [o for o in self.positives if o.best() < limit]

    def false_alarms(self, threshold: float | None = None) -> int:
        limit = self.threshold if threshold is None else threshold
        return sum(score >= limit for o in self.negatives for score in o.scores)

    def false_alarms_per_10h(self, threshold: float | None = None) -> float:
        hours = self.negative_hours()
        return self.false_alarms(threshold) * 10 / hours if hours else 0.0

    def miss_rate(self, threshold: float | None = None) -> float:
        return len(self.misses(threshold)) / len(self.positives)

    def calibrate(self, target_per_10h: float) -> float:
        """A threshold whose false alarms stay within `target_per_10h`: midway between the
        highest negative score that must not wake and the lowest positive above it. It
        misses what the lowest such threshold misses, on this set, and leaves room on both
        sides: one just above a negative wakes on it at the least difference in the audio
        or the arithmetic (another machine's floating point). Just above that negative
        when no positive is above it, or the two are too close to fit a third value."""
        allowed = int(target_per_10h * self.negative_hours() / 10 + 1e-9)
        scores = sorted((s for o in self.negatives for s in o.scores), reverse=True)
        if len(scores) <= allowed:
            lowest = min((s for o in self.positives for s in o.scores), default=0.0)
            return round(min(lowest, 0.0), 3)
        floor = scores[allowed]
        just_above = round(math.floor(floor * 1000) / 1000 + 0.001, 3)
        if just_above <= floor:  # a score that is itself a three-decimal value (1.001)
            just_above = round(just_above + 0.001, 3)
        above = [best for best in (o.best() for o in self.positives) if best > floor]
        if not above:
            return just_above
        middle = round((floor + min(above)) / 2, 3)
        return middle if just_above <= middle <= min(above) else just_above

    def summary(self) -> dict[str, Any]:
        return {
            "phrase": self.phrase,
            "threshold": self.threshold,
            "positives": len(self.positives),
            "missed": len(self.misses()),
            "miss_rate": self.miss_rate(),
            "negative_hours": self.negative_hours(),
            "false_alarms": self.false_alarms(),
            "false_alarms_per_10h": self.false_alarms_per_10h(),
            "candidates_per_hour": sum(len(o.scores) for o in self.negatives)
            / max(self.negative_hours(), 1e-9),
        }

    def lines(self, misses: int = 0) -> list[str]:
        """The printed report; the last line is `wake: miss P% at F false alarms per 10 h`."""
        s = self.summary()
        out = [
            f"wake phrase: {self.phrase!r}  threshold: {self.threshold:g}",
            f"positives: {s['positives']}  missed: {s['missed']}",
            f"negative audio: {s['negative_hours']:.2f} h  false alarms: {s['false_alarms']}"
            f"  (first-stage candidates: {s['candidates_per_hour']:.0f} per hour)",
        ]
        for o in self.misses()[:misses]:
            out.append(f"  miss line {o.case.line}: {o.case.audio.name} (best {o.best():.2f})")
        out.append(
            f"wake: miss {s['miss_rate']:.1%} at {s['false_alarms_per_10h']:.1f} "
            "false alarms per 10 h"
        )
        return out


_WAKE_TABLE = re.compile(r"^\[wake\]\s*$", re.MULTILINE)
_TABLE = re.compile(r"^\[", re.MULTILINE)


def write_threshold(path: Path, threshold: float, key: str = "threshold") -> None:
    """Set `[wake] <key>` in the TOML file at `path`, keeping everything else."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    line = f"{key} = {threshold!r}"
    pattern = re.compile(rf"^{key}\s*=.*$", re.MULTILINE)
    table = _WAKE_TABLE.search(text)
    if table is None:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + f"[wake]\n{line}\n"
    else:
        following = _TABLE.search(text, table.end())
        end = following.start() if following else len(text)
        body = text[table.end() : end]
        body = pattern.sub(line, body, count=1) if pattern.search(body) else "\n" + line + body
        text = text[: table.end()] + body + text[end:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
