"""The assistant's own loudness, set by the volume keys, by voice ("louder") and by the
family from afar. It scales the speech the assistant renders (`apply` sets the
synthesizer's volume), so it works the same on any sound card."""

from __future__ import annotations

import threading
from collections.abc import Callable

STEP = 0.1
MIN_AUDIBLE = 0.2  # the keys and the voice never turn the assistant quite silent


class SoftwareVolume:
    def __init__(self, level: float = 1.0, apply: Callable[[float], None] | None = None) -> None:
        self._apply = apply
        self._lock = threading.Lock()
        self._level = self._clamp(level)
        self.changes: list[float] = []  # every level set, for tests and the status

    @staticmethod
    def _clamp(level: float) -> float:
        return round(min(1.0, max(0.0, level)), 2)

    @property
    def level(self) -> float:
        return self._level

    def set(self, level: float) -> float:
        with self._lock:
            self._level = self._clamp(level)
            self.changes.append(self._level)
            if self._apply is not None:
                self._apply(self._level)
            return self._level

    def step(self, up: bool) -> float:
        """One step louder or softer, never below MIN_AUDIBLE by a step."""
        target = self.level + (STEP if up else -STEP)
        return self.set(target if up else max(MIN_AUDIBLE, target))
