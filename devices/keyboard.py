"""The buttons on a development machine: lines typed on the terminal.

| typed, then Enter | button                                                    |
|-------------------|-----------------------------------------------------------|
| (nothing)         | a press of the action button (talk without the wake phrase) |
| `sos`             | a long press of the emergency key (the profile's SOS button) |
| `+` / `-`         | a press of volume up / volume down                        |

A terminal does not report how long a key is held, so the long press is typed as a word.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from devices.buttons import PressTracker
from devices.interfaces import ButtonEvent

_LINES = {"": ("action", False), "+": ("volume_up", False), "-": ("volume_down", False)}


class KeyboardButtons:
    def __init__(self, stream: TextIO | None = None, sos_button: str = "sos") -> None:
        self._stream = stream or sys.stdin
        self._sos = sos_button
        self.tracker = PressTracker()
        self._thread = threading.Thread(target=self._read, name="keyboard-buttons", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            typed = line.strip().lower()
            if typed == "sos":
                self.tracker.tap(self._sos, held_s=self.tracker.long_press_s)
            elif typed in _LINES:
                self.tracker.tap(_LINES[typed][0])

    def events(self) -> list[ButtonEvent]:
        return self.tracker.events()

    def close(self) -> None:
        """The reading thread ends with its stream (a daemon: it never holds up an exit)."""


class KeyboardButton(KeyboardButtons):
    """`pressed()` is True once for every press of the action button since it was last
    asked (the loop's push-to-talk)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._presses = 0
        self._lock = threading.Lock()

    def pressed(self) -> bool:
        with self._lock:
            self._presses += sum(e.button == "action" for e in self.events())
            if self._presses:
                self._presses -= 1
                return True
            return False
