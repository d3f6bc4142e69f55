"""Key downs and ups (with their times) become presses and long presses.

A long press is reported as soon as the key has been held `long_press_s`, not when it is
let go: a senior holding the SOS key should not have to guess when to release it. A press
released earlier is a plain press. Every driver (evdev, keyboard, simulated) feeds one of
these, so the rule is the same on every device.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from devices.interfaces import ButtonEvent

DEFAULT_LONG_PRESS_S = 2.0


class PressTracker:
    def __init__(
        self,
        long_press_s: float = DEFAULT_LONG_PRESS_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if long_press_s <= 0:
            raise ValueError("long_press_s must be positive")
        self.long_press_s = long_press_s
        self.clock = clock
        self._lock = threading.Lock()
        self._down: dict[str, float] = {}  # button -> when it went down
        self._long_sent: set[str] = set()
        self._events: list[ButtonEvent] = []

    def down(self, button: str, at: float | None = None) -> None:
        with self._lock:
            if button not in self._down:  # key repeat while held: the first down counts
                self._down[button] = self.clock() if at is None else at

    def up(self, button: str, at: float | None = None) -> None:
        at = self.clock() if at is None else at
        with self._lock:
            started = self._down.pop(button, None)
            if started is None:
                return  # an up without a down (held since before we started): ignored
            if button in self._long_sent:
                self._long_sent.discard(button)
            elif at - started >= self.long_press_s:
                self._events.append(ButtonEvent(button, "long_press"))
            else:
                self._events.append(ButtonEvent(button, "press"))

    def tap(self, button: str, held_s: float = 0.1, at: float | None = None) -> None:
        """A whole press: down, then up `held_s` later (keyboard and simulated drivers)."""
        at = self.clock() if at is None else at
        self.down(button, at)
        self.up(button, at + held_s)

    def events(self, now: float | None = None) -> list[ButtonEvent]:
        """What happened since the last call; a key still held past the long-press time is
        reported now, once."""
        now = self.clock() if now is None else now
        with self._lock:
            for button, started in self._down.items():
                if button not in self._long_sent and now - started >= self.long_press_s:
                    self._long_sent.add(button)
                    self._events.append(ButtonEvent(button, "long_press"))
            events, self._events = self._events, []
        return events
