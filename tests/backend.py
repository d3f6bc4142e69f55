"""A stand-in for a backend service: a real paho MQTT 5 client with a persistent session
that receives what devices publish through `protocol.Receiver` (validation, dedup by id)
and sends them commands, as the family-notification and doctor-connect services will.

Given other topic kinds (a device's `command`, a member's `inbox`...) it stands in for the
other side: a device or a family member's app."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from protocol import Message, Reason, Receiver, Say, create, encode, topics
from protocol.ratelimit import RateLimiter
from tests.broker import Mosquitto


class Backend:
    def __init__(
        self,
        broker: Mosquitto,
        *,
        household: str | None = None,
        kinds: Iterable[str] = topics.DEVICE_OUTBOUND,
        client_id: str = "test-backend",
        limiter: RateLimiter | None = None,
        group: str | None = None,
    ) -> None:
        """`group`: subscribe as a member of this shared subscription (a service worker)."""
        self.household = household
        self.group = group
        self.kinds = tuple(kinds)
        self.handled: list[Message] = []
        self.arrivals: dict[str, float] = {}  # message id -> perf_counter at first handling
        self.raw: list[tuple[str, bytes]] = []  # every delivery, duplicates included
        self.receiver = Receiver(self._handle, household=household, limiter=limiter)
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        self._client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        if broker.users:  # the first user is the service's account
            self._client.username_pw_set(*next(iter(broker.users.items())))
        if broker.tls:
            self._client.tls_set(ca_certs=str(broker.tls.ca))
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._broker = broker

    def start(self, timeout: float = 10.0) -> Backend:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect_async(
            self._broker.host, self._broker.port, keepalive=5, clean_start=False, properties=props
        )
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError("the backend did not subscribe")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags, reason_code, props) -> None:
        if reason_code.is_failure:
            return
        household = self.household or topics.ANY
        filters = [
            (
                topics.member_subscription(kind, household)
                if topics.party_of(kind) == "member"
                else topics.subscription(kind, household),
                SubscribeOptions(qos=1),
            )
            for kind in self.kinds
        ]
        if self.group is not None:
            filters = [(topics.shared(self.group, f), options) for f, options in filters]
        client.subscribe(filters)

    def _on_subscribe(self, client, userdata, mid, reason_codes, props) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.raw.append((msg.topic, msg.payload))
            self.receiver.receive(msg.topic, msg.payload)
            self._cond.notify_all()

    def _handle(self, message: Message) -> None:
        self.handled.append(message)
        self.arrivals[message.id] = time.perf_counter()

    # --- sending to devices ---------------------------------------------------------------

    def send_raw(
        self, topic: str, payload: bytes, timeout: float = 5.0, retain: bool = False
    ) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout)
        assert info.is_published(), "the broker did not acknowledge"

    def send(self, message: Message, timeout: float = 5.0, retain: bool = False) -> None:
        self.send_raw(message.topic, encode(message), timeout, retain)

    def send_many(self, messages: list[Message], timeout: float = 30.0) -> None:
        """Publish all at once (QoS 1), then wait for every acknowledgement."""
        infos = [self._client.publish(m.topic, encode(m), qos=1) for m in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            assert info.is_published(), "the broker did not acknowledge"

    # --- waiting for what arrives ---------------------------------------------------------

    def wait_until(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def ids(self, type_prefix: str = "") -> list[str]:
        with self._cond:
            return [m.id for m in self.handled if m.type.startswith(type_prefix)]

    def raw_count(self, message_id: str) -> int:
        """How many times a message reached this client, duplicates included."""
        needle = message_id.encode()
        with self._cond:
            return sum(needle in payload for _, payload in self.raw)


def bad_inputs(household: str, device: str) -> dict[str, tuple[bytes, str]]:
    """What a broken or hostile sender might put on a device's command topic, with the
    reason the device must give for refusing it."""
    good = create(Say(text="hello"), household, device).to_dict()
    return {
        "garbage": (b"\x00\xff\x13\x37 not even text \xfe", Reason.NOT_UTF8),
        "truncated json": (json.dumps(good).encode()[:-20], Reason.NOT_JSON),
        "wrong types": (
            json.dumps({**good, "body": {"text": 42, "urgent": "yes"}}).encode(),
            Reason.BAD_BODY,
        ),
        "one megabyte": (
            json.dumps({**good, "body": {"text": "x" * (1 << 20)}}).encode(),
            Reason.TOO_LARGE,
        ),
        "another household": (
            json.dumps({**good, "household": "other-household"}).encode(),
            Reason.WRONG_HOUSEHOLD,
        ),
    }
