"""The receiving half of the contract, the same on the device and in the services.

Every incoming MQTT payload goes through `Receiver.receive(topic, payload)`: it is decoded
and validated, a message whose id was already handled is dropped, the rest is handed to the
application. Whatever is refused is counted by reason and logged without its content; no
payload, however broken, raises out of `receive`, so the MQTT client keeps serving.

A message is remembered as handled only after its handler returned: a crash in between
means it is handled again after a redelivery (at least once), never that it is lost. A
handler that returns False ran, but asks that the id not be remembered: a service refusing
a message for a cause that may change (a device not registered yet), or that remembers the
id itself once its refusal is answered. A resend of that id is then handled afresh.

A duplicate is not handled again, but `on_duplicate` (optional) is told of it: a sender
that sends again may not have heard the answer to its first copy (a service confirms an
alert it has stored again, `alert.received`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from protocol.dedup import DuplicateFilter
from protocol.messages import Message, Reason, RejectedMessage, decode
from protocol.ratelimit import RateLimiter
from protocol.rejections import RejectionCounter

log = logging.getLogger("protocol.receiver")

# Returns None (or True): remember the id; False: do not (see the module's docstring).
Handler = Callable[[Message], bool | None]


class Receiver:
    def __init__(
        self,
        handler: Handler,
        *,
        household: str | None,
        device: str | None = None,
        dedup: DuplicateFilter | None = None,
        rejections: RejectionCounter | None = None,
        limiter: RateLimiter | None = None,
        on_duplicate: Callable[[Message], None] | None = None,
    ) -> None:
        """`household`/`device`: what this receiver serves (None: any, as a service).
        `limiter`: a sender over its rate limit is refused before its payload is read.
        `on_duplicate(message)`: told of a valid message whose id was handled already."""
        self.handler = handler
        self.on_duplicate = on_duplicate
        self.household = household
        self.device = device
        self.dedup = dedup if dedup is not None else DuplicateFilter()
        self.rejections = rejections if rejections is not None else RejectionCounter()
        self.limiter = limiter
        self.received = 0  # payloads offered, valid or not, duplicates included
        self.handled = 0

    def receive(self, topic: str, payload: bytes) -> Message | None:
        """The message handed to the handler, or None when it was refused or a duplicate."""
        self.received += 1
        if self.limiter is not None and not self.limiter.allow(topic):
            self.rejections.count(Reason.RATE_LIMITED, topic=topic)
            return None
        try:
            message = decode(payload, self.household, expected_device=self.device, topic=topic)
        except RejectedMessage as exc:
            self.rejections.reject(exc, topic)
            return None
        if self.dedup.seen(message.id):
            self.rejections.count(Reason.DUPLICATE, topic=topic, detail=message.id)
            if self.on_duplicate is not None:
                try:
                    self.on_duplicate(message)
                except Exception:  # as a handler's failure: it must not stop the link
                    log.exception("the answer to a duplicate %s failed", message.type)
            return None
        try:
            remember = self.handler(message)
        except Exception as exc:  # the application's bug must not stop the link
            self.rejections.count(Reason.HANDLER_ERROR, topic=topic, detail=type(exc).__name__)
            log.debug("handler failed on %r", message, exc_info=True)
            return None
        if remember is not False:
            self.dedup.add(message.id)
        self.handled += 1
        log.debug("handled %r", message)
        return message
