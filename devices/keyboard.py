"""The action button on a development machine: the Enter key of the terminal."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class KeyboardButton:
    """`pressed()` is True once for every line typed (Enter) since it was last asked."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdin
        self._presses = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="action-button", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for _line in self._stream:
            with self._lock:
                self._presses += 1

    def pressed(self) -> bool:
        with self._lock:
            if self._presses:
                self._presses -= 1
                return True
            return False
