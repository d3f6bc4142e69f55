"""How the service reaches people: channels behind one interface.

`mqtt` is a member's inbox topic (what a family app subscribes to) and a device's topics;
a delivery over it counts as sent only when the broker passed it on (see `MqttChannel`);
`sms` and `phone` go through gateways. No SMS or telephony gateway exists on this machine,
so the one gateway here is `FileGateway`, which records what it was asked to send (one JSON
line each, fsync'd) exactly where a real gateway would make the HTTP call; a real one
implements the same `send_many`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from protocol import topics
from services.mqtt_service import MqttService, PublishError, Undelivered

# How long a gateway may take to answer one send before its deliveries count as failed
GATEWAY_DEADLINE_S = 10.0


@dataclass(frozen=True)
class Delivery:
    """One row of the outbox, to send."""

    id: str
    household: str
    channel: str
    address: str  # a topic or a phone number
    payload: bytes  # an encoded message, or the text of an SMS or a call
    purpose: str
    alert_id: str | None
    member: str | None
    step: int


class ChannelError(Exception):
    """A delivery the channel could not make now (it is tried again later)."""


class Channel(Protocol):
    name: str

    def send_many(self, deliveries: list[Delivery]) -> list[Exception | None]:
        """Send each; one error (or None when it went out) per delivery, in order."""
        ...


class MqttChannel:
    """Publishes to the delivery's topic and waits for the broker's acknowledgement.

    An acknowledgement is not a delivery: a PUBACK that says the broker refused the message
    (0x80 and up) is an `Undelivered` error, and so is one saying nobody subscribed to a
    member's topic (0x10: the app never connected, or its session expired; the broker has
    dropped it), so the outbox keeps it and tries again until the app takes it. On a
    device's topic 0x10 counts as sent, as before: a device away longer than its session
    gets the commands it has not confirmed again when it says it is online, and sends again
    the alerts nobody answered."""

    name = "mqtt"

    def __init__(self, service: MqttService, timeout: float = 10.0) -> None:
        self.service = service
        self.timeout = timeout

    def send_many(self, deliveries: list[Delivery]) -> list[Exception | None]:
        if not self.service.connected:  # fail fast: the outbox tries again after a backoff
            return [ChannelError("the broker is unreachable")] * len(deliveries)
        pairs = [(d.address, d.payload) for d in deliveries]
        errors = self.service.publish_many(pairs, self.timeout, delivered=True)
        return [_judged(d, e) for d, e in zip(deliveries, errors, strict=True)]


def _judged(delivery: Delivery, error: PublishError | None) -> Exception | None:
    """A publication's error, but none for 0x10 on a device's topic (see MqttChannel)."""
    if isinstance(error, Undelivered) and error.no_subscriber:
        info = topics.parse(delivery.address)
        if info is None or info.party != "member":
            return None
    return error


class FileGateway:
    """The recording stand-in for an SMS or phone gateway (`file:PATH` in the config)."""

    def __init__(self, name: str, path: str | Path) -> None:
        self.name = name
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def send_many(self, deliveries: list[Delivery]) -> list[Exception | None]:
        lines = "".join(
            json.dumps(
                {
                    "id": d.id,
                    "channel": self.name,
                    "to": d.address,
                    "text": d.payload.decode("utf-8"),
                    "household": d.household,
                    "alert_id": d.alert_id,
                    "member": d.member,
                    "step": d.step,
                    "at": time.time(),
                },
                ensure_ascii=False,
            )
            + "\n"
            for d in deliveries
        )
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    os.write(fd, lines.encode("utf-8"))
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as exc:
            return [ChannelError(f"{self.name} gateway: {exc.strerror}")] * len(deliveries)
        return [None] * len(deliveries)


def read_gateway_file(path: str | Path) -> list[dict]:
    """What a FileGateway recorded (for tests and `family-notify` users checking a dry run)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def gateways(
    settings: dict[str, str], deadline_s: float = GATEWAY_DEADLINE_S
) -> dict[str, Channel]:
    """The configured gateways by channel name (`file:PATH` values; empty: off), each
    within a deadline (`WithDeadline`)."""
    out: dict[str, Channel] = {}
    for name, value in settings.items():
        if value.startswith("file:"):
            out[name] = WithDeadline(FileGateway(name, value.removeprefix("file:")), deadline_s)
    return out


class WithDeadline:
    """A channel whose sending may hang (a gateway's HTTP call that never answers, a disk
    that stalls) kept from holding up everything else: the service's scheduler sends every
    household's deliveries and takes every escalation step on one thread. A send that has
    not answered within `deadline_s` counts as failed (tried again later, the same ids);
    while it still hangs, the channel's next sends fail at once rather than pile up threads.
    One that went out after all is sent once more: a second text rather than none. Each
    send runs on a daemon thread, so a hung one does not hold up the service's exit."""

    def __init__(self, channel: Channel, deadline_s: float) -> None:
        self.channel = channel
        self.name = channel.name
        self.deadline_s = deadline_s
        self._hung: threading.Thread | None = None

    def send_many(self, deliveries: list[Delivery]) -> list[Exception | None]:
        hung = self._hung
        if hung is not None and hung.is_alive():
            error = ChannelError(f"the {self.name} gateway has not answered an earlier send")
            return [error] * len(deliveries)
        outcome: list[list[Exception | None] | Exception] = []

        def send() -> None:
            try:
                outcome.append(self.channel.send_many(deliveries))
            except Exception as exc:  # the channel broke: the deliveries are tried again
                outcome.append(exc)

        thread = threading.Thread(target=send, name=f"send-{self.name}", daemon=True)
        thread.start()
        thread.join(self.deadline_s)
        if thread.is_alive():
            self._hung = thread
            error = ChannelError(f"the {self.name} gateway did not answer in {self.deadline_s:g} s")
            return [error] * len(deliveries)
        result = outcome[0]
        if isinstance(result, Exception):
            return [ChannelError(f"the {self.name} gateway failed: {result}")] * len(deliveries)
        return result
