"""The device's link to the backends: one MQTT 5 connection that never loses a message.

How the rest of the device uses it::

    from assistant.link import Link
    from protocol import EmergencyAlert

    link = Link.from_config(config, on_message=handle)  # handle(Message) -> None
    link.start()                       # returns at once; connects and reconnects by itself
    message = link.publish(EmergencyAlert(trigger="voice"))  # on disk when this returns
    ...
    link.close()                       # says "offline" (shutdown) and stops

`publish(body_or_message)` is the whole sending API: it stores the message in the outbox
(`assistant/outbox.py`, SQLite, fsync'd) and returns; sending happens in the background,
now or whenever the broker is reachable again, after a reboot if need be. It never blocks
on the network and works before `start()` and while the broker is away. The message is
deleted from the outbox only when the broker acknowledged it (PUBACK); alerts leave before
anything else that is waiting. What is not an alert leaves at a pace the services accept
(`protocol.ratelimit.DEVICE_PACE`), so a long backlog arrives whole instead of being
dropped by their rate limits.

Incoming messages (commands, acknowledgements of alerts, consultation updates) are
validated (`protocol.Receiver`), duplicates dropped by id (the ids handled are kept in the
state file, so a redelivery after a reboot is dropped too) and handed to `on_message`, on
the MQTT network thread: the handler should only queue the work. Without a handler they
are put on `link.incoming`, a queue the loop can poll. Refused payloads are counted per
reason (`link.rejections`, and in the state file for `senior-assistant status`). A message
is acknowledged to the broker only once handled: one the handler fails on (its state file,
say) is logged at ERROR and tried again (after 2 s, doubling to a minute), and one never
handled is sent again by the broker after a restart. No callback can end paho's network
thread (`_guarded`): paho 2 re-raises there, and the thread would die without a word.

The connection: MQTT 5, QoS 1, a persistent session (clean start off, a session expiry
interval) so the broker keeps commands sent while the device was away; TLS and
username/password from `[mqtt]`; a retained `device.status` "online" on every connection
and a last will "offline" (connection_lost) the broker publishes when the connection dies;
reconnection with a doubling delay between `mqtt.reconnect_min_s` and `reconnect_max_s`.

Why sending is split this way: up to `window` messages are with paho at a time (the
broker's receive maximum caps it). paho resends them itself after a reconnect, in order
and with the same packet, so the link keeps the packet-id → outbox-row map across
reconnects and only offers rows paho does not already hold. A crash loses that map; the
rows are then sent again on the next start, which is where receivers' dedup comes in.
Presence (`device.status`) is the one thing not stored: it is a state, re-published on
every connection, and a stale "online" replayed from disk would be wrong.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from assistant.config import Config, MqttConfig, default_device_id
from assistant.outbox import RETRY_MAX_S, Outbox, state_db_path
from protocol import (
    Body,
    DeviceStatus,
    DuplicateFilter,
    Message,
    Receiver,
    RejectionCounter,
    create,
    encode,
    topics,
)
from protocol.ratelimit import DEVICE_LIMIT, DEVICE_PACE, RateLimit, RateLimiter, kind_of
from protocol.reason_codes import NO_SUBSCRIBER, REFUSED, puback_outcome
from protocol.tcp import no_delay

log = logging.getLogger("assistant.link")

DEFAULT_WINDOW = 20  # messages with paho at once; mosquitto's default receive maximum
_QOS = 1
NO_LISTENER_RETRY_MAX_S = 15.0  # a service restarts in seconds; an alert must not wait long
_POLL_S = 0.5  # the sender also wakes this often, for messages whose retry time came
UNHANDLED_RETRY_S = 2.0  # an incoming message the handler failed on is tried again after,
UNHANDLED_RETRY_MAX_S = 60.0  # doubling up to this while it keeps failing (a bug, a dead disk)
# What goes through the outbox: all a device publishes but its presence (see above).
_SENDABLE = frozenset(topics.DEVICE_OUTBOUND) - {"status"}


class Link:
    def __init__(
        self,
        settings: MqttConfig,
        *,
        household: str,
        device: str,
        state_dir: str | Path,
        on_message: Callable[[Message], None] | None = None,
        window: int = DEFAULT_WINDOW,
        rate_limit: RateLimit | None = DEVICE_LIMIT,
        pace: RateLimit | None = DEVICE_PACE,
    ) -> None:
        """`rate_limit`: what the device accepts from each service (per topic kind).
        `pace`: how fast it sends what is not an alert, so that a backlog stays within the
        services' own limits instead of being dropped there (None: as fast as it can)."""
        self.settings = settings
        self.household = household
        self.device = device
        self.broker = f"{settings.host}:{settings.port}"
        self.window = window
        self.incoming: queue.Queue[Message] = queue.Queue()
        path = state_db_path(state_dir)
        self.outbox = Outbox(path)
        self.rejections = RejectionCounter(listener=self.outbox.count_rejection)
        self._dedup = DuplicateFilter(path=path)
        self._handler = on_message or self.incoming.put
        self._handler_failed = False
        self._receiving = threading.Lock()
        # incoming messages the handler failed on, unacknowledged, tried again by the sender
        self._unhandled: list[tuple[int, mqtt.MQTTMessage]] = []  # (connection, message)
        self._connection = 0  # counts connections lost: a packet id is only good on its own
        self._unhandled_at = 0.0  # when to try them again (monotonic)
        self._unhandled_wait = UNHANDLED_RETRY_S
        self._receiver = Receiver(
            self._handle,
            household=household,
            device=device,
            dedup=self._dedup,
            rejections=self.rejections,
            limiter=RateLimiter(rate_limit, key=kind_of) if rate_limit is not None else None,
        )
        self._pacer = RateLimiter(pace) if pace is not None else None
        self.state = "stopped"
        self.session_present: bool | None = None
        self._connected = threading.Event()  # CONNACK: sending may go on
        self._subscribed = threading.Event()  # SUBACK too: commands can reach the device
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        # packet id -> outbox seq (None: a presence message) for what paho holds
        self._inflight: dict[int, int | None] = {}
        self._early_acks: dict[int, ReasonCode] = {}  # PUBACKs that beat the bookkeeping
        self._acked: list[int] = []  # outbox seqs acknowledged, to delete in one commit
        # outbox seqs the broker did not take: (seq, why, longest wait), deferred on disk by
        # the sender thread; a write failing on paho's network thread would end that thread
        self._refused: list[tuple[int, str, float]] = []
        self._resting: dict[int, float] = {}  # seq -> until when (monotonic): not deferred
        self._sender: threading.Thread | None = None
        self._client = self._make_client()

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Link:
        return cls(
            config.mqtt,
            household=config.device.household,
            device=config.device.device_id or default_device_id(),
            state_dir=config.state_dir(),
            **kwargs,
        )

    # --- the API ----------------------------------------------------------------------------

    def publish(self, message: Message | Body) -> Message:
        """Store a message (or a body, wrapped for this device) and send it when possible.

        Returns the stored message; it is on disk when this returns. ValueError for what a
        device does not send (a command, its own presence) or an invalid body."""
        if not isinstance(message, Message):
            message = create(message, self.household, self.device)
        elif (message.household, message.device) != (self.household, self.device):
            raise ValueError("a message for another household or device")
        if message.kind not in _SENDABLE:
            raise ValueError(f"a device does not send {message.type} messages")
        self.outbox.put(message)
        log.debug("queued %r", message)
        self._wake.set()
        return message

    def start(self) -> None:
        """Connect in the background; returns at once."""
        if self._sender is not None:
            raise RuntimeError("the link is already started")
        self._set_state("connecting")
        s = self.settings
        self._client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type]
        connect = Properties(PacketTypes.CONNECT)
        connect.SessionExpiryInterval = s.session_expiry_s
        self._client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=connect
        )
        self._sender = threading.Thread(target=self._send_loop, name="link-sender", daemon=True)
        self._sender.start()
        self._client.loop_start()

    def close(self, timeout: float = 2.0) -> None:
        """Say "offline" when connected, disconnect, stop the threads. What is still in the
        outbox stays there for the next start."""
        self._stop.set()
        self._wake.set()
        if self._connected.is_set():
            info = self._publish_presence("offline", "shutdown")
            if info is not None:
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        if self._sender is not None:
            self._sender.join(timeout)
        self._forget_acknowledged()  # PUBACKs that came while saying "offline"
        self._connected.clear()
        self._subscribed.clear()
        self._set_state("stopped")
        self.outbox.close()
        self._dedup.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected and subscribed to the device's own topics."""
        return self._subscribed.wait(timeout) and self._connected.is_set()

    def wait_drained(self, timeout: float) -> bool:
        """True once every stored message was acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        while len(self.outbox):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    @property
    def inflight(self) -> int:
        """Outbox messages handed to paho and not yet acknowledged."""
        with self._lock:
            return sum(seq is not None for seq in self._inflight.values())

    # --- the MQTT client --------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=topics.device_client_id(self.household, self.device),
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,  # acknowledged once handled: a failed handler's message is kept
        )
        s = self.settings
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.tls_ca:
            client.tls_set(
                ca_certs=s.tls_ca, certfile=s.tls_cert or None, keyfile=s.tls_key or None
            )
        client.max_inflight_messages_set(self.window)
        client.max_queued_messages_set(0)  # no limit: the outbox bounds what paho holds
        client.on_socket_open = no_delay
        client.on_pre_connect = _guarded(self._on_pre_connect)
        client.on_connect = _guarded(self._on_connect)
        client.on_connect_fail = _guarded(self._on_connect_fail)
        client.on_disconnect = _guarded(self._on_disconnect)
        client.on_publish = _guarded(self._on_publish)
        client.on_message = _guarded(self._on_message)
        client.on_subscribe = _guarded(self._on_subscribe)
        return client

    def _presence(self, state: str, reason: str) -> tuple[str, bytes]:
        message = create(DeviceStatus(state=state, reason=reason), self.household, self.device)
        return message.topic, encode(message)

    def _publish_presence(self, state: str, reason: str) -> mqtt.MQTTMessageInfo | None:
        topic, payload = self._presence(state, reason)
        info = self._client.publish(topic, payload, qos=_QOS, retain=True)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return None
        self._register(info.mid, None)
        return info

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # A fresh will each time, so its id and time are this connection's.
        topic, payload = self._presence("offline", "connection_lost")
        client.will_set(topic, payload, qos=_QOS, retain=True)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.warning("the broker %s refused the connection: %s", self.broker, reason_code)
            self._set_state("disconnected", error=f"refused: {reason_code}")
            return
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if receive_maximum and receive_maximum < self.window:
            self.window = receive_maximum
            client.max_inflight_messages_set(receive_maximum)
        self.session_present = bool(flags.session_present)
        options = SubscribeOptions(qos=_QOS)
        client.subscribe(
            [
                (topics.device_topic(self.household, self.device, kind), options)
                for kind in topics.DEVICE_INBOUND
            ]
        )
        self._publish_presence("online", "connected")
        self._set_state("connected", session_present=self.session_present)
        self._connected.set()
        self._wake.set()
        log.info(
            "link connected to %s (session %s, %d queued)",
            self.broker,
            "kept" if self.session_present else "new",
            len(self.outbox),
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.info("cannot reach the broker %s; trying again", self.broker)
        self._set_state("disconnected", error="cannot reach the broker")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        with self._lock:
            self._unhandled.clear()  # unacknowledged: the broker sends them again
            self._connection += 1
        if self._stop.is_set() or not was_connected:
            return  # a failed attempt: on_connect or on_connect_fail said why
        log.warning("link to %s lost: %s; reconnecting", self.broker, reason_code)
        self._set_state("disconnected", error=f"lost: {reason_code}")

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:  # e.g. an ACL on the broker: sending works, nothing can reach the device
            log.warning("the broker refused the device's subscriptions: %s", ", ".join(refused))
            self._set_state("connected", error=f"subscription refused: {refused[0]}")
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            connection = self._connection
        if self._received(msg, connection):
            return
        log.error("could not handle a message from %s; trying again", msg.topic)
        self._keep_unhandled(msg, connection)

    def _keep_unhandled(self, msg: mqtt.MQTTMessage, connection: int) -> None:
        """To be tried again, after a wait that doubles while the handler keeps failing."""
        with self._lock:
            if connection != self._connection:
                return  # its connection is gone: the broker sends it again
            self._unhandled.append((connection, msg))
            self._unhandled_at = time.monotonic() + self._unhandled_wait
            self._unhandled_wait = min(UNHANDLED_RETRY_MAX_S, 2 * self._unhandled_wait)

    def _received(self, msg: mqtt.MQTTMessage, connection: int) -> bool:
        """Run an incoming message through the receiver; acknowledge it unless the handler
        failed (refused and duplicate messages are acknowledged: they are settled). Not
        when its connection is gone: its packet id may be another message's now, and the
        broker sends it again, a duplicate then."""
        with self._receiving:  # the network thread, or the sender trying again
            self._handler_failed = False
            try:
                self._receiver.receive(msg.topic, msg.payload)
            except Exception:  # the dedup's state file: kept and tried again all the same
                log.exception("could not settle a message from %s", msg.topic)
                return False
            if self._handler_failed:
                return False
        with self._lock:
            if connection != self._connection:
                return True
        self._client.ack(msg.mid, msg.qos)
        return True

    def _handle(self, message: Message) -> None:
        try:
            self._handler(message)
        except Exception:
            self._handler_failed = True
            log.exception("the handler failed on a %s message", message.type)
            raise

    def _retry_unhandled(self) -> None:
        """On the sender thread: the messages the handler failed on, again. Those of a lost
        connection are left to the broker, which sends them again on the next one."""
        with self._lock:
            if not self._unhandled or time.monotonic() < self._unhandled_at:
                return
            waiting, self._unhandled = self._unhandled, []
        for connection, msg in waiting:
            if self._received(msg, connection):
                with self._lock:
                    self._unhandled_wait = UNHANDLED_RETRY_S
            else:
                self._keep_unhandled(msg, connection)

    # --- sending and acknowledgements -------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_POLL_S)
            self._wake.clear()
            try:
                self._forget_acknowledged()
                if self._connected.is_set() and not self._stop.is_set():
                    self._retry_unhandled()
                    self._fill_window()
            except Exception:
                log.exception("sending from the outbox failed; trying again")
        self._forget_acknowledged()

    def _forget_acknowledged(self) -> None:
        """On the sender thread: delete what the broker acknowledged, defer what it did not
        take. A deferral that cannot be written (the state file) is logged, and the message
        rests in memory for as long instead, then is offered again: neither held back for
        good nor sent again at once, over and over."""
        with self._lock:
            seqs = list(self._acked)
            refused, self._refused = self._refused, []
        for seq, why, longest_s in refused:
            try:
                wait = self.outbox.defer(seq, why, longest_s)
            except Exception:
                wait = min(longest_s, NO_LISTENER_RETRY_MAX_S)
                log.exception("could not defer message %d; again in %.0f s", seq, wait)
                with self._lock:
                    self._resting[seq] = time.monotonic() + wait
                continue
            log.warning("message %d not taken (%s); again in %.0f s", seq, why, wait)
        self.outbox.remove_many(seqs)
        with self._lock:
            del self._acked[: len(seqs)]

    def _fill_window(self) -> None:
        with self._lock:
            with_paho = sum(seq is not None for seq in self._inflight.values())
            # acknowledged rows not yet deleted must not be offered again either
            held = {seq for seq in self._inflight.values() if seq is not None}
            held.update(self._acked)
            held.update(seq for seq, _, _ in self._refused)
            now = time.monotonic()
            self._resting = {seq: t for seq, t in self._resting.items() if t > now}
            held.update(self._resting)
        for row in self.outbox.pending(self.window - with_paho, exclude=held):
            if self._pacer is not None and not self._pacer.allow(row.topic):
                return  # alerts come first and are never paced: the rest waits its turn
            info = self._client.publish(row.topic, row.payload, qos=_QOS)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("paho did not take message %d: %s", row.seq, info.rc)
                return
            self._register(info.mid, row.seq)

    def _register(self, mid: int, seq: int | None) -> None:
        """Remember what a packet id stands for; handle its PUBACK if it already came."""
        with self._lock:
            early = self._early_acks.pop(mid, None)
            if early is None:
                self._inflight[mid] = seq
                return
        self._acknowledged(seq, early)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # paho may deliver the PUBACK before publish() returned the packet id to us.
        with self._lock:
            if mid not in self._inflight:
                self._early_acks[mid] = reason_code
                return
            seq = self._inflight.pop(mid)
        self._acknowledged(seq, reason_code)

    def _acknowledged(self, seq: int | None, reason_code: ReasonCode) -> None:
        """Settled on disk by the sender thread, batched: the network thread does not write
        (a failed write there would end it) nor fsync."""
        if seq is None:
            return  # presence: nothing stored
        outcome = puback_outcome(reason_code)
        with self._lock:
            if outcome == NO_SUBSCRIBER:
                # Accepted, but no service was there to take it (restarting, or all its
                # workers gone): the broker has dropped it, so it is not delivered. Kept and
                # offered again soon; a service that got an earlier copy drops the repeat.
                self._refused.append((seq, "no service listening", NO_LISTENER_RETRY_MAX_S))
            elif outcome == REFUSED:
                self._refused.append((seq, f"refused: {reason_code}", RETRY_MAX_S))
            else:
                self._acked.append(seq)
        self._wake.set()

    def _set_state(
        self, state: str, *, session_present: bool | None = None, error: str | None = None
    ) -> None:
        self.state = state
        try:
            self.outbox.set_link_state(
                state, self.broker, session_present=session_present, error=error
            )
        except Exception:  # status is informative; the link must go on without it
            log.exception("could not record the link state")


def _guarded(callback: Callable[..., None]) -> Callable[..., None]:
    """A paho callback that cannot end paho's network thread: paho 2 re-raises what a
    callback raises there, and the thread dies without a word in our log, the link still
    "connected" and nothing sent or received again until a restart."""

    @functools.wraps(callback)
    def run(*args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("the link's %s failed; the link goes on", callback.__name__)

    return run
