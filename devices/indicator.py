"""What the indicator shows, from three sources that change independently: the speech
loop's activity (idle, listening, thinking, speaking), an emergency in progress, and the
link to the family being down.

An alert outranks everything until someone answered it (the senior can see help is being
fetched); "offline" shows only while nothing else is going on, so a conversation without a
network still shows listening and speaking.
"""

from __future__ import annotations

import logging
import threading

from devices.interfaces import Indicator

log = logging.getLogger(__name__)

ACTIVITIES = ("idle", "listening", "thinking", "speaking")


class StatusLights:
    def __init__(self, indicator: Indicator) -> None:
        self.indicator = indicator
        self._lock = threading.Lock()
        self._activity = "idle"
        self._alert = False
        self._offline = False
        self._shown: str | None = None

    def activity(self, state: str) -> None:
        """The loop's state: one of ACTIVITIES."""
        if state not in ACTIVITIES:
            raise ValueError(f"unknown activity {state!r}")
        with self._lock:
            self._activity = state
            self._refresh()

    def alert(self, on: bool) -> None:
        with self._lock:
            self._alert = on
            self._refresh()

    def offline(self, on: bool) -> None:
        with self._lock:
            self._offline = on
            self._refresh()

    @property
    def shown(self) -> str | None:
        return self._shown

    def _refresh(self) -> None:
        if self._alert:
            state = "alert"
        elif self._offline and self._activity == "idle":
            state = "offline"
        else:
            state = self._activity
        if state != self._shown:
            self._shown = state
            try:
                self.indicator.show(state)
            except Exception as exc:  # a light that fails must not stop the assistant
                log.warning("the indicator could not show %s: %s", state, exc)


class ConsoleIndicator:
    """The indicator of a development machine: a debug log line per change (`-v`)."""

    def show(self, state: str) -> None:
        log.debug("indicator: %s", state)
