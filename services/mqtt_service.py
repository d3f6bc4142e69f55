"""The MQTT side of a backend service: what every service process shares.

    from services.mqtt_service import MqttService, MqttSettings, Refusal

    def handle(message: Message) -> None:   # runs on the service's worker thread
        if unknown(message.household):
            raise Refusal(ServiceReason.UNKNOWN_HOUSEHOLD, "no such household here")
        ...                                 # persist what must not be lost, then return

    service = MqttService(
        MqttSettings(host=..., port=...),
        client_id="family-notify-1",        # unique per worker, stable across restarts
        group="family-notify",              # workers of one group split the messages
        filters=[topics.subscription("alert")],
        handler=handle,
        state_path=state_dir / "mqtt-service.sqlite3",  # shared by the group's workers
    )
    with service:                           # connects, subscribes, serves
        service.publish(create(body, household, device))  # returns once the broker has it

How a message is handled, and why it is never lost:

- The connection is MQTT 5 with a persistent session (clean start off, a session expiry
  interval), so the broker keeps what arrives while the worker is away.
- Every filter is subscribed at QoS 1 as a shared subscription (`$share/<group>/...`): the
  broker gives each message to one worker of the group.
- Acknowledgements are manual: paho hands the message over, a worker thread runs it through
  `protocol.Receiver` (validation, dedup by id) and the handler, and only then sends the
  PUBACK. A crash in between leaves the message unacknowledged and the broker delivers it
  again when the worker's session comes back.
- With `state_path`, the ids handled are kept in SQLite and checked by every worker that
  shares the file, so a message handled by one worker is dropped by another.
- A handler that raises `Refusal` refuses a valid message for a service reason (unknown
  household, not a member...); a payload the Receiver refuses is refused for its
  `protocol.Reason`. Either way the refusal is counted, logged (reason and topic, never the
  content) and answered with `service.refused` on the sender's own `refused` topic.
- A refused message's id is remembered as handled (a resend is a duplicate) only when the
  refusal is `final` and its answer reached the broker. A refusal whose cause may change
  (`final=False`: a device or member not registered yet) and one that could not be
  answered leave the id unremembered: a resend of it (a device resends an unanswered
  emergency) is handled afresh, taken once the cause is gone, else refused and answered
  again. A payload the Receiver refuses never had its id remembered.
- A handler that fails otherwise is tried again (`handler_attempts` in all); a message that
  still fails is kept in the state file's `dead_letters` table, logged at ERROR, and only
  then acknowledged. Its id is not recorded as handled (the Receiver records an id only
  after the handler returned), so it can be run again.
- The kept-aside messages are run again, through the same validation and dedup as a fresh
  message (not the rate limit) and one try of the handler each: when the worker starts and
  then every `dead_letter_retry_s` (60 s), on the worker thread. One that is handled,
  refused, or already handled by some worker (its id in the shared file) leaves the table;
  one that fails again stays, its `replays`, `tried_at` and `error` (the exception's type,
  never the content) updated, and is logged at ERROR again. A worker claims a row before
  running it (one UPDATE, so one transaction), so two workers sharing the file never run
  the same row at once; the claim of a worker that died is freed when it starts again
  under its client id, or lapses after 5 minutes. An older file's table gets the new
  columns when opened.

What a PUBACK means: paho counts any PUBACK as "published", whatever its MQTT 5 reason code,
but a broker answers 0x10 "No matching subscribers" when nobody was there to take the
message (it is dropped) and 0x80 and up when it refused it (not authorised...). The reason
code of every PUBACK is kept by packet id (`on_publish`), and `publish_many(...,
delivered=True)` reports either as an `Undelivered` error: for a sender that must know
someone got it (a member's inbox). Without it any PUBACK is success, as before.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from protocol import (
    DuplicateFilter,
    Message,
    Reason,
    Receiver,
    RejectedMessage,
    RejectionCounter,
    ServiceRefused,
    create,
    encode,
    topics,
)
from protocol.dedup import DEFAULT_CAPACITY, prepare_seen_ids
from protocol.ratelimit import SERVICE_LIMIT, RateLimit, RateLimiter
from protocol.reason_codes import DELIVERED, NO_MATCHING_SUBSCRIBERS, puback_outcome
from protocol.schema import canonical_uuid
from protocol.sqlite import open_db
from protocol.tcp import no_delay

log = logging.getLogger("services.mqtt")

_QOS = 1
_STOP = object()


@dataclass(frozen=True)
class MqttSettings:
    """How a service reaches the broker (the `[mqtt]` table of a service's config)."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls_ca: str | None = None  # a CA file turns TLS on
    tls_cert: str | None = None  # client certificate and key, when the broker wants them
    tls_key: str | None = None
    keepalive_s: int = 30
    session_expiry_s: int = 24 * 3600  # how long the broker keeps the session when away
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MqttSettings:
        """From a config table; unknown keys are a ValueError (a typo must not pass)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mqtt setting(s): {', '.join(unknown)}")
        return cls(**data)


class Refusal(Exception):
    """Raised by a handler to refuse a valid message: `reason` is a `ServiceReason` (or the
    service's own), `detail` a short text for the sender without the payload's content.

    `final`: the same message would be refused again whatever changes (a type not taken, a
    time in the past), so its id is remembered and a resend dropped as a duplicate. False
    when the cause may change (a household, device, member or doctor an admin has not
    registered yet): the id is not remembered, and a resend of it is handled afresh."""

    def __init__(self, reason: str, detail: str = "", *, final: bool = True) -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.final = final


class PublishError(RuntimeError):
    """The broker did not acknowledge a publication in time (or the client refused it)."""


class Undelivered(PublishError):
    """The broker acknowledged a publication without passing it on: nobody subscribed to
    its topic (0x10 "No matching subscribers", so it was dropped) or it refused it (a reason
    code of 0x80 and up, e.g. 0x87 "Not authorized"). Only with `delivered=True`."""

    def __init__(self, reason_code: int, reason: str) -> None:
        self.reason_code = reason_code
        self.reason = reason
        what = "no subscriber" if self.no_subscriber else "refused by the broker"
        super().__init__(f"{what} (0x{reason_code:02x} {reason})")

    @property
    def no_subscriber(self) -> bool:
        return self.reason_code == NO_MATCHING_SUBSCRIBERS


def undelivered(reason_code: ReasonCode) -> Undelivered | None:
    """The error a PUBACK's reason code stands for when the message went nowhere, else None."""
    if puback_outcome(reason_code) == DELIVERED:
        return None
    return Undelivered(reason_code.value, str(reason_code))


class SharedDuplicateFilter(DuplicateFilter):
    """A `DuplicateFilter` whose SQLite file several worker processes share: an id one
    worker handled is seen by all, not only by the one that remembers it in memory."""

    def __init__(self, path: str | Path, capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__(capacity, path)
        # An id lost in a power cut only means a redelivered message is handled again, which
        # the handlers must take anyway (at least once); not worth an fsync per message.
        assert self._db is not None
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _open(self, path: Path) -> sqlite3.Connection:
        """Opened as it is: several workers have it open, so one must never move it
        aside nor go on without it (each would then miss the others' ids)."""
        db = open_db(path)
        prepare_seen_ids(db)
        return db

    def seen(self, message_id: str) -> bool:
        if super().seen(message_id):
            return True
        with self._lock:
            if self._db is None:
                return False
            row = self._db.execute("SELECT 1 FROM seen_ids WHERE id = ?", (message_id,))
            return row.fetchone() is not None


class _RefusalNotes(RejectionCounter):
    """Counts as usual and remembers the last payload refusal, so it can be answered."""

    last: RejectedMessage | None = None

    def reject(self, error: RejectedMessage, topic: str | None = None) -> None:
        self.last = error
        super().reject(error, topic)


def readable_id(payload: bytes) -> str | None:
    """The message id of a payload that may be broken, when one can be read from it."""
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return canonical_uuid(data.get("id")) if isinstance(data, dict) else None


def refusal_for(topic: str, payload: bytes, reason: str, detail: str = "") -> Message | None:
    """The `service.refused` answer to what came on `topic`, addressed to its sender (the
    device or the member whose topic it came on); None when the topic names no sender."""
    info = topics.parse(topic)
    if info is None:
        return None
    body = ServiceRefused(
        reason=reason, refused_id=readable_id(payload), detail=detail[:500] or None
    )
    kind = topics.REFUSAL_KIND[info.party]
    return create(body, info.household, info.device, on=kind)


@dataclass
class _Delivery:
    generation: int  # which connection it came on: a PUBACK only makes sense on that one
    mid: int
    qos: int
    topic: str
    payload: bytes


class MqttService:
    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        group: str | None,
        filters: Iterable[str],
        handler: Callable[[Message], bool | None],
        state_path: str | Path | None = None,
        handler_attempts: int = 3,
        retry_delay_s: float = 0.2,
        rejection_listener: Callable[[str], None] | None = None,
        plain_filters: Iterable[str] = (),
        rate_limit: RateLimit | None = SERVICE_LIMIT,
        dead_letter_retry_s: float = 60.0,
        on_duplicate: Callable[[Message], None] | None = None,
    ) -> None:
        """`filters`: topic filters (`topics.subscription(...)`), subscribed as shared
        subscriptions of `group` (None: plain subscriptions, every worker gets everything).
        `plain_filters`: subscribed plainly even in a group, for retained messages (presence),
        which a broker does not give to shared subscriptions.
        `rejection_listener(reason)` is told of every refusal (e.g. to persist the counts).
        `rate_limit`: per sender (a device, member or doctor), in this worker; what is over
        it is counted as `rate_limited`, acknowledged and dropped unanswered (an answer per
        message would let a flood double itself).
        `dead_letter_retry_s`: how often the kept-aside messages (`dead_letters`) are run
        through the handler again; also once when the service starts.
        `on_duplicate(message)`: told of a message whose id was handled already
        (`protocol.Receiver`), to answer its sender again.
        """
        if dead_letter_retry_s <= 0:
            raise ValueError("dead_letter_retry_s must be positive")
        self.settings = settings
        self.client_id = client_id
        self.group = group
        self.filters = tuple(filters)
        self.plain_filters = tuple(plain_filters)
        self.handler = handler
        self.handler_attempts = max(1, handler_attempts)
        self.retry_delay_s = retry_delay_s
        self.dead_letter_retry_s = dead_letter_retry_s
        self.rejections = _RefusalNotes(listener=rejection_listener)
        self.dedup: DuplicateFilter = (
            SharedDuplicateFilter(state_path) if state_path is not None else DuplicateFilter()
        )
        self._dead = open_dead_letters(state_path, client_id) if state_path is not None else None
        self._dead_lock = threading.Lock()
        self.receiver = Receiver(
            self._run_handler,
            household=None,
            dedup=self.dedup,
            rejections=self.rejections,
            limiter=RateLimiter(rate_limit) if rate_limit is not None else None,
            on_duplicate=on_duplicate,
        )
        # The replays' own: the same validation and dedup, but a kept-aside message already
        # passed the sender's rate limit once, and the replays do not count as deliveries.
        self._replayer = Receiver(
            self._run_handler, household=None, dedup=self.dedup, rejections=self.rejections
        )
        self.refused_sent = 0  # `service.refused` answers the broker acknowledged
        self.dead_letters = 0  # messages this worker kept aside
        self.dead_letters_done = 0  # kept-aside messages this worker's replays took out
        self._refusal: Refusal | None = None
        self._refused_id: str | None = None  # the id of the message refused
        self._failure: Exception | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._generation = 0
        self._gen_lock = threading.Lock()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._stopping = threading.Event()
        self._abandon = threading.Event()  # stop now, leaving the rest unacknowledged
        self._unsubscribed = threading.Event()
        self._worker: threading.Thread | None = None
        self.last_error: str | None = None
        # The reason code of each PUBACK by packet id, until publish_many reads it. paho calls
        # on_publish before it marks the message published, so a publication seen published
        # has its own code here (a packet id used again overwrites an older, unread one).
        self._pubacks: dict[int, ReasonCode] = {}
        self._pubacks_lock = threading.Lock()
        self._client = self._make_client()

    # --- the API ----------------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> MqttService:
        """Connect and serve in the background. With `timeout`, wait until subscribed
        (TimeoutError when not)."""
        if self._worker is not None:
            raise RuntimeError("the service is already started")
        s = self.settings
        self._client.reconnect_delay_set(s.reconnect_min_s, s.reconnect_max_s)  # type: ignore[arg-type]
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = s.session_expiry_s
        self._worker = threading.Thread(target=self._work, name="mqtt-service", daemon=True)
        self._worker.start()
        self._client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=props
        )
        self._client.loop_start()
        if timeout is not None and not self.wait_ready(timeout):
            self.stop()
            raise TimeoutError(f"not subscribed at {s.host}:{s.port}: {self.last_error}")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and hand the work over to the other workers of the group.

        A broker keeps giving a share of the messages to a worker whose session lives on
        while it is away, so a clean stop unsubscribes, handles and acknowledges what had
        already arrived, and ends the session. (A worker that crashed keeps its session: what
        it had not acknowledged waits for it to come back under the same client id.)

        When that takes longer than `timeout` (a backlog, a slow handler), the worker stops
        after the message in hand and the session is kept, as after a crash: ending it would
        make the broker discard what this worker was dealt and had not acknowledged, which
        no other worker gets. Logged at ERROR with the count left."""
        self._stopping.set()
        unsubscribed = True
        if self._connected.is_set() and self._worker is not None:
            self._unsubscribed.clear()
            self._client.unsubscribe(self._subscriptions())
            if not self._unsubscribed.wait(timeout):
                unsubscribed = False  # the broker may go on dealing messages to this worker
                log.warning("%s: no UNSUBACK; stopping anyway", self.client_id)
        self._queue.put(_STOP)  # after everything that arrived before the UNSUBACK
        drained = unsubscribed
        if self._worker is not None:
            self._worker.join(timeout)
            if self._worker.is_alive():
                drained = False
                self._abandon.set()
                self._worker.join(60.0)  # the message in hand: its handler's own timeouts
        drained = drained and self._queue.empty()  # nothing came after the sentinel
        if drained:
            end = Properties(PacketTypes.DISCONNECT)
            end.SessionExpiryInterval = 0
            self._client.disconnect(properties=end)
        else:
            left = sum(1 for item in list(self._queue.queue) if item is not _STOP)
            log.error(
                "%s: stopped with %d message(s) not handled; the session is kept, so they "
                "come again when this worker starts again under the same client id",
                self.client_id,
                left,
            )
            self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        self._subscribed.clear()
        self.dedup.close()
        with self._dead_lock:
            if self._dead is not None:
                self._dead.close()
                self._dead = None

    def __enter__(self) -> MqttService:
        return self.start(timeout=30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float) -> bool:
        """True once connected and subscribed."""
        return self._subscribed.wait(timeout) and self._connected.is_set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, message: Message, timeout: float = 10.0, *, delivered: bool = False) -> None:
        """Publish at QoS 1 and return once the broker acknowledged it; PublishError when it
        did not in `timeout` (paho keeps trying; a receiver drops the copy by its id), and
        with `delivered`, `Undelivered` when the broker passed it on to nobody."""
        self.publish_raw(message.topic, encode(message), timeout, delivered=delivered)

    def publish_raw(
        self, topic: str, payload: bytes, timeout: float = 10.0, *, delivered: bool = False
    ) -> None:
        error = self.publish_many([(topic, payload)], timeout, delivered=delivered)[0]
        if error is not None:
            raise error

    def publish_many(
        self, messages: list[tuple[str, bytes]], timeout: float = 10.0, *, delivered: bool = False
    ) -> list[PublishError | None]:
        """Publish (topic, payload) pairs at QoS 1 together and wait for every PUBACK: one
        error (or None) per message, in order. `delivered`: a PUBACK saying the broker had no
        subscriber for it (0x10) or refused it (0x80 and up) is an `Undelivered` error, not
        success."""
        infos: list[mqtt.MQTTMessageInfo | PublishError] = []
        for topic, payload in messages:
            info = self._client.publish(topic, payload, qos=_QOS)
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                infos.append(info)
            else:
                infos.append(PublishError(f"paho refused it: {mqtt.error_string(info.rc)}"))
        deadline = time.monotonic() + timeout
        errors: list[PublishError | None] = []
        for info in infos:
            if isinstance(info, PublishError):
                errors.append(info)
                continue
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                published = info.is_published()
            except (RuntimeError, ValueError) as exc:
                errors.append(PublishError(str(exc)))
                continue
            if not published:
                errors.append(PublishError(f"no PUBACK in {timeout:.0f} s"))
                continue
            with self._pubacks_lock:
                reason_code = self._pubacks.pop(info.mid, None)
            refused = undelivered(reason_code) if reason_code is not None else None
            errors.append(refused if delivered else None)
        return errors

    def refuse(self, topic: str, payload: bytes, reason: str, detail: str = "") -> bool:
        """Tell the sender of what came on `topic` why it was refused (best effort: a
        refusal that cannot be sent is logged, not raised). False when it could not be;
        True when the broker took it, or the topic names no sender to tell."""
        try:
            answer = refusal_for(topic, payload, reason, detail)
            if answer is not None:
                self.publish(answer)
                self.refused_sent += 1
        except (PublishError, ValueError) as exc:
            log.warning("could not answer a refusal (%s) on %s: %s", reason, topic, exc)
            return False
        return True

    # --- the MQTT client --------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        s = self.settings
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if s.tls_ca:
            client.tls_set(
                ca_certs=s.tls_ca, certfile=s.tls_cert or None, keyfile=s.tls_key or None
            )
        client.max_queued_messages_set(0)
        client.on_socket_open = no_delay
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = lambda *args: self._unsubscribed.set()
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def _subscriptions(self) -> list[str]:
        if self.group is None:
            return [*self.filters, *self.plain_filters]
        return [*(topics.shared(self.group, f) for f in self.filters), *self.plain_filters]

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.last_error = f"refused: {reason_code}"
            log.warning("the broker refused %s: %s", self.client_id, reason_code)
            return
        with self._gen_lock:
            self._generation += 1
        self.last_error = None
        self._connected.set()
        options = SubscribeOptions(qos=_QOS)
        client.subscribe([(f, options) for f in self._subscriptions()])
        log.info(
            "%s connected (session %s)", self.client_id, "kept" if flags.session_present else "new"
        )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.last_error = "cannot reach the broker"
        log.info("%s cannot reach the broker; trying again", self.client_id)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        if was and not self._stopping.is_set():
            self.last_error = f"lost: {reason_code}"
            log.warning("%s lost the broker: %s; reconnecting", self.client_id, reason_code)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        refused = [str(code) for code in reason_codes if code.is_failure]
        if refused:
            self.last_error = f"subscription refused: {refused[0]}"
            log.error("the broker refused %s's subscriptions: %s", self.client_id, refused)
            return
        self._subscribed.set()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # The network thread: only noted here, publish_many judges it.
        with self._pubacks_lock:
            self._pubacks[mid] = reason_code

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # Only queued here: the handler publishes and waits for PUBACKs, which needs this
        # (the network) thread free.
        with self._gen_lock:
            generation = self._generation
        self._queue.put(_Delivery(generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload)))

    # --- the worker -------------------------------------------------------------------------

    def _work(self) -> None:
        replay_at = time.monotonic()  # at once, then every dead_letter_retry_s
        while True:
            if self._dead is not None and time.monotonic() >= replay_at:
                try:
                    self._replay()
                except Exception:  # the state file; the rows stay for the next round
                    log.exception("replaying the kept-aside messages failed")
                replay_at = time.monotonic() + self.dead_letter_retry_s
            try:
                wait = max(0.0, replay_at - time.monotonic()) if self._dead is not None else None
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if item is _STOP or self._abandon.is_set():
                return
            try:
                if self._process(item):
                    self._ack(item)
            except Exception:  # never let the worker die: the message stays unacknowledged
                log.exception("processing a message failed; the broker will send it again")

    def _ack(self, item: _Delivery) -> None:
        if item.qos == 0:
            return
        with self._gen_lock:
            current = self._generation
        if item.generation != current or not self._connected.is_set():
            return  # a packet id of a dead connection; the broker sends it again
        self._client.ack(item.mid, item.qos)

    def _run_handler(self, message: Message) -> bool:
        """The Receivers' handler; False (the id not remembered) for a refusal, whose id
        `_handle` remembers itself once it is final and answered, and when the service's
        handler returns False (its outcome may change: an alert nobody could be told of)."""
        try:
            remember = self.handler(message)
        except Refusal as refusal:
            self._refusal, self._refused_id = refusal, message.id
            return False
        except Exception as exc:
            self._failure = exc
            raise
        return remember is not False

    def _process(self, item: _Delivery) -> bool:
        """Handle one delivery; True when it may be acknowledged."""
        failure = self._handle(self.receiver, item.topic, item.payload, self.handler_attempts)
        return True if failure is None else self._park(item, failure)

    def _handle(
        self, receiver: Receiver, topic: str, payload: bytes, attempts: int
    ) -> Exception | None:
        """Run a payload through `receiver` and the handler, up to `attempts` times while the
        handler fails, and answer a refusal; the handler's last error when it kept failing."""
        for attempt in range(1, attempts + 1):
            self.rejections.last = None
            self._refusal = self._failure = None
            self._refused_id = None
            receiver.receive(topic, payload)
            if self._failure is None:
                break
            log.warning(
                "handler failed on %s (attempt %d of %d): %s",
                topic,
                attempt,
                attempts,
                type(self._failure).__name__,
            )
            if attempt < attempts:
                time.sleep(self.retry_delay_s * attempt)
        else:
            return self._failure
        if self._refusal is not None:
            refusal, refused_id = self._refusal, self._refused_id
            self.rejections.count(refusal.reason, topic=topic, detail=refusal.detail)
            answered = self.refuse(topic, payload, refusal.reason, refusal.detail)
            if refusal.final and answered and refused_id is not None:
                receiver.dedup.add(refused_id)  # a resend is a duplicate
            else:  # a resend is handled afresh: taken if the cause is gone, else refused again
                log.info(
                    "refused (%s) on %s; a resend will be looked at again", refusal.reason, topic
                )
        elif self.rejections.last is not None:
            error = self.rejections.last
            self.refuse(topic, payload, error.reason, error.detail)
        return None

    def _park(self, item: _Delivery, error: Exception | None) -> bool:
        """Keep a message the handler keeps failing on; True once it is on disk."""
        name = type(error).__name__ if error else "unknown"
        with self._dead_lock:
            if self._dead is None:
                log.error("no state file to keep a failing message; left unacknowledged")
                return False
            self._dead.execute(
                "INSERT INTO dead_letters (at, topic, payload, error) VALUES (?, ?, ?, ?)",
                (time.time(), item.topic, item.payload, name),
            )
        self.dead_letters += 1
        self.rejections.count(Reason.HANDLER_ERROR, topic=item.topic, detail="kept aside")
        log.error("kept a message from %s aside after %s; see dead_letters", item.topic, name)
        return True

    def _replay(self) -> None:
        """Run every kept-aside message no other worker holds through the handler again,
        one at a time (on the worker thread, as the handler expects)."""
        after = 0  # each row once a round, even one that fails again
        while not self._stopping.is_set():
            with self._dead_lock:
                if self._dead is None:
                    return
                row = claim_dead_letter(self._dead, self.client_id, after)
            if row is None:
                return
            after, topic, payload, replays = row
            handled = self._replayer.handled
            failure = self._handle(self._replayer, topic, payload, 1)
            with self._dead_lock:
                if self._dead is None:
                    return  # stopped: the claim is freed when this worker starts again
                settle_dead_letter(self._dead, self.client_id, after, failure)
            if failure is not None:
                name = type(failure).__name__
                log.error(
                    "kept message from %s failed again (replay %d): %s", topic, replays + 1, name
                )
                continue
            self.dead_letters_done += 1
            done = "handled" if self._replayer.handled > handled else "refused or a duplicate"
            log.info("a kept-aside message from %s is out of dead_letters (%s)", topic, done)


# How long a worker's claim on a kept-aside message holds: a worker that died replaying it
# frees it when it starts again (its client id); another worker takes it after this.
_CLAIM_S = 300.0
_DEAD_LETTER_COLUMNS = {  # added since the first version of the table
    "replays": "INTEGER NOT NULL DEFAULT 0",  # replays that failed
    "tried_at": "REAL",  # when the last one did
    "claimed_by": "TEXT",  # the worker replaying it now
    "claimed_until": "REAL",
}


def open_dead_letters(path: str | Path, client_id: str) -> sqlite3.Connection:
    """The state file's `dead_letters` table (made, or given the columns an older version
    lacked), with the claims `client_id` left from an earlier run freed."""
    db = open_db(path)
    db.execute("BEGIN IMMEDIATE")  # the workers sharing the file may start together
    try:
        db.execute(
            "CREATE TABLE IF NOT EXISTS dead_letters (id INTEGER PRIMARY KEY,"
            " at REAL NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " error TEXT NOT NULL)"
        )
        have = {row[1] for row in db.execute("PRAGMA table_info(dead_letters)")}
        for name, kind in _DEAD_LETTER_COLUMNS.items():
            if name not in have:
                db.execute(f"ALTER TABLE dead_letters ADD COLUMN {name} {kind}")
        db.execute(
            "UPDATE dead_letters SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?",
            (client_id,),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        db.close()
        raise
    return db


def claim_dead_letter(
    db: sqlite3.Connection, client_id: str, after: int
) -> tuple[int, str, bytes, int] | None:
    """Claim the first kept-aside message after row `after` that no other worker holds:
    (row, topic, payload, failed replays), or None when there is none. One statement, so
    one transaction: two workers never claim the same row."""
    now = time.time()
    row = db.execute(
        "UPDATE dead_letters SET claimed_by = ?, claimed_until = ? WHERE id = ("
        " SELECT id FROM dead_letters WHERE id > ?"
        " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT 1)"
        " RETURNING id, topic, payload, replays",
        (client_id, now + _CLAIM_S, after, now),
    ).fetchone()
    return None if row is None else (row[0], row[1], bytes(row[2]), row[3])


def settle_dead_letter(
    db: sqlite3.Connection, client_id: str, row: int, failure: Exception | None
) -> None:
    """After a replay of a claimed row: out of the table when it is done (handled, refused,
    or already handled elsewhere), else its failure noted and the claim freed."""
    if failure is None:
        db.execute("DELETE FROM dead_letters WHERE id = ?", (row,))
        return
    db.execute(
        "UPDATE dead_letters SET replays = replays + 1, tried_at = ?, error = ?,"
        " claimed_by = NULL, claimed_until = NULL WHERE id = ? AND claimed_by = ?",
        (time.time(), type(failure).__name__, row, client_id),
    )
