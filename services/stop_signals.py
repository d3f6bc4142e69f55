"""Waiting for SIGTERM (and SIGINT) in a service's main thread, with no lock in the handler.

A signal handler runs in the main thread between two bytecodes. One that calls
`Event.set()` while the main thread is inside `Event.wait()` on the same event tries to
take the lock the interrupted wait holds, and the process hangs for good: a family-notify
worker was seen never to stop on SIGTERM that way. Here the handler only appends to a list;
the main thread polls it.
"""

from __future__ import annotations

import signal
import time

POLL_S = 0.2


class StopSignals:
    """Installs handlers for `signals`; `received` once one came."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self._got: list[int] = []
        for number in signals:
            signal.signal(number, self._handle)

    def _handle(self, number: int, _frame: object) -> None:
        self._got.append(number)  # no lock: see the module's docstring

    @property
    def received(self) -> bool:
        return bool(self._got)

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until a signal came (True) or `timeout` passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._got:
            left = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True
