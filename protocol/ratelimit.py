"""Rate limits per sender, so that one chatty or hostile party cannot flood a receiver.

A token bucket per sender: `burst` messages at once, then `rate_per_s` on average. With
the broker's ACL (`services/broker/acl.py`) a party can publish only on its own topics, so
the topic names the sender: its household and endpoint (device, member or doctor). On the
device everything arrives on its own topics; there the kind tells the senders apart
(family-notify's commands, doctor-connect's updates...).

Senders are remembered up to `max_senders`; the one unheard of longest is forgotten first
(it starts again with a full bucket), so memory stays bounded whatever the topics.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from protocol import topics

UNKNOWN_SENDER = ("?",)
NEVER_LIMITED = ("alert",)  # topic kinds  # a topic that is not ours: all such share one bucket


@dataclass(frozen=True)
class RateLimit:
    rate_per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.rate_per_s <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")


# A service: a device back from a week offline may send a few hundred stored messages at
# once (about 3 an hour); beyond that, one every half second.
SERVICE_LIMIT = RateLimit(rate_per_s=2.0, burst=600)
# The device: what the services send it (commands, updates, answers) per topic kind.
DEVICE_LIMIT = RateLimit(rate_per_s=5.0, burst=200)


def pace_within(limit: RateLimit, share: float = 0.8) -> RateLimit:
    """The pace a sender keeps so that a receiver's `limit` never drops its messages: the
    same token bucket with `share` of its burst and rate. The margin is for what the
    sender cannot know: a receiver that remembers an earlier burst across the sender's
    restart, and clocks that disagree a little."""
    if not 0 < share <= 1:
        raise ValueError("a pace is a share of the limit, between 0 and 1")
    return RateLimit(rate_per_s=limit.rate_per_s * share, burst=max(1, int(limit.burst * share)))


# How fast a device's outbox drains a backlog (a week offline): within what the services
# accept, so nothing it stored is dropped as `rate_limited` on arrival. Alerts are exempt
# on both sides and leave first.
DEVICE_PACE = pace_within(SERVICE_LIMIT)


def sender_of(topic: str) -> Hashable:
    """The sender a topic stands for: (household, party, endpoint)."""
    info = topics.parse(topic)
    if info is None:
        return UNKNOWN_SENDER
    return (info.household, info.party, info.device)


def kind_of(topic: str) -> Hashable:
    """On a device's own topics: the topic kind, which says which service sent it."""
    info = topics.parse(topic)
    return UNKNOWN_SENDER if info is None else (info.kind,)


class RateLimiter:
    def __init__(
        self,
        limit: RateLimit,
        *,
        key: Callable[[str], Hashable] = sender_of,
        max_senders: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.key = key
        self.max_senders = max_senders
        self._clock = clock
        self._buckets: collections.OrderedDict[Hashable, tuple[float, float]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def allow(self, topic: str) -> bool:
        """True when the sender of `topic` may have one more message now (and it is
        counted), False when it is over its limit. A device's alerts are never limited:
        an emergency must not be lost to a flood, even the device's own backlog (only the
        device may publish there, and each is bounded by the packet size limit)."""
        info = topics.parse(topic)
        if info is not None and info.kind in NEVER_LIMITED:
            return True
        sender = self.key(topic)
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.pop(sender, (float(self.limit.burst), now))
            tokens = min(float(self.limit.burst), tokens + (now - last) * self.limit.rate_per_s)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[sender] = (tokens, now)  # most recently heard last
            while len(self._buckets) > self.max_senders:
                self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)
