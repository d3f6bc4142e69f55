"""Counting what a receiver refused, so bad input is visible and never silent."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from protocol import topics
from protocol.messages import Reason, RejectedMessage

log = logging.getLogger("protocol.rejections")

# A flood of bad messages must not become a flood of log lines: per reason, at most this many
# are logged one by one in a window, the rest in one line when the next window opens.
LOG_WINDOW_S = 60.0
LOG_PER_WINDOW = 20


class RejectionCounter:
    """Counts per reason and logs each one (at WARNING, duplicates at INFO): the reason, the
    topic and a detail that names a field or limit. Never the payload: it may carry health
    data. Every rejection is counted; past `LOG_PER_WINDOW` a minute per reason, the rest
    are logged as one summary line."""

    def __init__(
        self,
        listener: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._listener = listener  # e.g. persisting the counts for `senior-assistant status`
        self._clock = clock
        self._windows: dict[str, list[float]] = {}  # reason -> [start, logged, unlogged]

    def _may_log(self, reason: str, level: int) -> bool:
        """Whether this rejection is logged by itself (called under the lock)."""
        now = self._clock()
        window = self._windows.setdefault(reason, [now, 0, 0])
        if now - window[0] >= LOG_WINDOW_S:
            if window[2]:
                log.log(
                    level,
                    "%d more messages rejected (%s) in %.0f s were not logged one by one",
                    window[2],
                    reason,
                    now - window[0],
                )
            window[:] = [now, 0, 0]
        if window[1] < LOG_PER_WINDOW:
            window[1] += 1
            return True
        window[2] += 1
        return False

    def count(self, reason: str, *, topic: str | None = None, detail: str = "") -> None:
        # A duplicate is QoS 1 doing its job after a reconnect; everything else is a fault.
        level = logging.INFO if reason == Reason.DUPLICATE else logging.WARNING
        with self._lock:
            self._counts[reason] += 1
            loud = self._may_log(reason, level)
        if loud:
            # A topic that is not one of ours is the sender's free text: not put in a log
            # line as it is (a line break in it would forge log lines).
            where = topic if topic and topics.parse(topic) else "a topic not ours"
            log.log(
                level,
                "rejected a message%s: %s%s",
                f" on {where}" if topic is not None else "",
                reason,
                f" ({detail})" if detail else "",
            )
        if self._listener is not None:
            try:
                self._listener(reason)
            except Exception:  # counting must never take the receiver down
                log.exception("could not record a rejection")

    def reject(self, error: RejectedMessage, topic: str | None = None) -> None:
        self.count(error.reason, topic=topic, detail=error.detail)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def __getitem__(self, reason: str) -> int:
        with self._lock:
            return self._counts[reason]

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())
