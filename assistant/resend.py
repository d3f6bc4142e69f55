"""Sending a message again until the service's answer says it arrived, on a growing wait,
and again after a restart.

The broker's acknowledgement only says a broker has a message: a service worker that died
holding its share of a shared subscription keeps what it was dealt for the life of its
session (a day), and a worker that comes back under another client id never gets it. So
the device sends such a message again, with the same id (the service drops a copy it has),
until the service's answer settles it: an emergency until someone answers it (`alert.ack`,
assistant/emergency.py), the other alerts until the family service has stored them
(`alert.received`, assistant/device.py). What waits is kept on disk
(assistant/unanswered_alerts.py), so a restart does not forget it.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from dataclasses import dataclass

from assistant.link import Link
from assistant.unanswered_alerts import UnansweredAlertStore
from protocol import Message

log = logging.getLogger(__name__)

POLL_S = 0.2


@dataclass
class _Waiting:
    message: Message
    next_send: float
    wait: float


class Resender:
    def __init__(
        self,
        link: Link,
        store: UnansweredAlertStore | None,
        first_s: float,
        max_s: float,
        waits_for: str,
        give_up_after_s: float | None = None,
    ) -> None:
        """`store`: where the messages are kept across a restart (None: in memory only);
        `first_s`, `max_s`: the first wait, doubled after each sending up to `max_s`;
        `waits_for`: what settles them, for the log ("an answer");
        `give_up_after_s`: a message older than this (its `ts`) is dropped with an ERROR
        instead of sent again (None: never; a service that refuses it for good, say)."""
        self.link = link
        self.store = store
        self.first_s, self.max_s = first_s, max_s
        self.waits_for = waits_for
        self.give_up_after_s = give_up_after_s
        self._lock = threading.Lock()
        self._waiting: dict[str, _Waiting] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, message: Message) -> None:
        """Send `message` (already in the link's outbox) again after the first wait, unless
        settled before. A store that fails is logged: the message is resent while this
        process runs, and it is in the outbox either way."""
        if self.store is not None:
            try:
                self.store.add(message)
            except Exception:
                log.exception("%s %s not kept for a restart", message.type, message.id)
        with self._lock:
            self._schedule(message, time.monotonic())

    def settle(self, message_id: str) -> int:
        """`message_id` needs no more sending; how many messages still wait. Never raises:
        a store that fails is logged (the message would be sent again after a restart, a
        copy the service drops), and whoever settles it goes on (an answer is still said)."""
        with self._lock:
            self._waiting.pop(message_id, None)
            left = len(self._waiting)
        if self.store is not None:
            try:
                self.store.answered(message_id)
            except Exception:
                log.exception("%s settled, but still in %s", message_id, self.store.path.name)
        return left

    def type_of(self, message_id: str) -> str | None:
        """The type of a message waiting here (what a refusal of it refers to)."""
        with self._lock:
            waiting = self._waiting.get(message_id)
        return waiting.message.type if waiting is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._waiting)

    def send_due(self, now: float | None = None) -> None:
        """Messages the broker took a while ago and nobody settled go out once more."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due = [w for w in self._waiting.values() if w.next_send <= now]
            for waiting in due:
                waiting.wait = min(self.max_s, waiting.wait * 2)
                # Jitter: a broker deals a shared subscription's messages in turn, so
                # messages sent again together in the same order meet the same worker again.
                waiting.next_send = now + waiting.wait * random.uniform(0.7, 1.3)
        for waiting in due:
            message = waiting.message
            if self._too_old(message):
                log.error("%s %s given up: no %s in %.0f h", message.type, message.id,
                          self.waits_for, (self.give_up_after_s or 0) / 3600)  # fmt: skip
                self.settle(message.id)
                continue
            if self.link.outbox.contains(message.id):
                continue  # still on its way: nothing to repeat
            log.info("%s %s still without %s: sending it again", message.type, message.id,
                     self.waits_for)  # fmt: skip
            self.link.publish(message)

    def start(self) -> int:
        """Take up what a previous run left waiting, and send again from now on; how many
        messages were left."""
        left: list[Message] = []
        if self.store is not None:
            try:
                left = self.store.all(self.link.household, self.link.device)
            except Exception:  # the rest of the device must still start
                log.exception("could not read what waits for %s in %s", self.waits_for,
                              self.store.path.name)  # fmt: skip
        if left:
            log.warning("%d message(s) from before the restart still without %s",
                        len(left), self.waits_for)  # fmt: skip
        with self._lock:
            now = time.monotonic()
            for message in left:
                self._schedule(message, now)
        name = f"resend until {self.waits_for}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        return len(left)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _schedule(self, message: Message, now: float) -> None:
        first = now + self.first_s * random.uniform(0.85, 1.15)  # not in lockstep either
        self._waiting[message.id] = _Waiting(message, first, self.first_s)

    def _too_old(self, message: Message) -> bool:
        if self.give_up_after_s is None:
            return False
        try:
            raised = dt.datetime.fromisoformat(message.ts)
        except ValueError:
            return False
        age = dt.datetime.now(dt.UTC) - raised
        return age.total_seconds() > self.give_up_after_s

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.send_due()
            except Exception:  # e.g. the outbox closed under us at shutdown
                log.exception("could not send again what waits for %s", self.waits_for)
