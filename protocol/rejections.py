"""Counting what a receiver refused, so bad input is visible and never silent."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from protocol.messages import Reason, RejectedMessage

log = logging.getLogger("protocol.rejections")


class RejectionCounter:
    """Counts per reason and logs each one (at WARNING, duplicates at INFO): the reason, the
    topic and a detail that names a field or limit. Never the payload: it may carry health
    data."""

    def __init__(self, listener: Callable[[str], None] | None = None) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._listener = listener  # e.g. persisting the counts for `senior-assistant status`

    def count(self, reason: str, *, topic: str | None = None, detail: str = "") -> None:
        with self._lock:
            self._counts[reason] += 1
        # A duplicate is QoS 1 doing its job after a reconnect; everything else is a fault.
        level = logging.INFO if reason == Reason.DUPLICATE else logging.WARNING
        log.log(
            level,
            "rejected a message%s: %s%s",
            f" on {topic}" if topic else "",
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
