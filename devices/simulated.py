"""Simulated hardware for tests: the same interfaces, with the test in control.

`SimulatedButtons.press("sos", held_s=3)` is a key held three seconds; the indicator,
calls and vibration record what they were asked; the GPS gives a fixed position (or none,
as indoors before the first fix).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from devices.buttons import DEFAULT_LONG_PRESS_S, PressTracker
from devices.interfaces import INDICATOR_STATES, ButtonEvent, DeviceError, Fix


class SimulatedButtons:
    def __init__(self, long_press_s: float = DEFAULT_LONG_PRESS_S) -> None:
        self.tracker = PressTracker(long_press_s)

    def press(self, button: str, held_s: float = 0.1) -> None:
        self.tracker.tap(button, held_s)

    def events(self) -> list[ButtonEvent]:
        return self.tracker.events()

    def close(self) -> None:
        pass


class RecordingIndicator:
    """Keeps every state it was asked to show, in order (repeats of the same state once)."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self._lock = threading.Lock()

    def show(self, state: str) -> None:
        if state not in INDICATOR_STATES:
            raise ValueError(f"unknown indicator state {state!r}")
        with self._lock:
            if not self.states or self.states[-1] != state:
                self.states.append(state)

    @property
    def state(self) -> str | None:
        return self.states[-1] if self.states else None


class SimulatedGps:
    def __init__(self, lat: float = 52.52, lon: float = 13.405, accuracy_m: float = 8.0) -> None:
        self.position: Fix | None = Fix(lat, lon, accuracy_m)

    def fix(self) -> Fix | None:
        if self.position is None:
            return None
        return Fix(self.position.lat, self.position.lon, self.position.accuracy_m, time.time())

    def close(self) -> None:
        pass


class RecordingCalls:
    """A phone line that records the calls it was asked to start (`fail`: the network
    refuses them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.fail: str | None = None

    def call(self, contact: str, number: str | None = None) -> None:
        if self.fail:
            raise DeviceError(self.fail)
        self.calls.append((contact, number))


class RecordingNotifier:
    def __init__(self) -> None:
        self.vibrations: list[tuple[int, ...]] = []
        self.texts: list[str] = []

    def vibrate(self, pattern_ms: Sequence[int]) -> None:
        self.vibrations.append(tuple(pattern_ms))

    def notify(self, text: str) -> None:
        self.texts.append(text)
