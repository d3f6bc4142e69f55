"""doctor-connect on MQTT: `services.mqtt_service` delivers what devices and doctors' apps
send (validated, deduplicated, acknowledged only after the engine committed), a sender
thread publishes the engine's outbox (deleted only once the broker acknowledged each
message) and a ticker thread keeps promises, positions and reminders.

Subscriptions (shared by the workers of `mqtt.group`): the devices' `consultation` and
`conversation` topics of every household, and the practice's doctors' `doctor_status`,
`doctor_action` and `doctor_text` topics.
A refused message is answered with `service.refused` on its sender's own topic, counted (in
the store too, for `doctor-connect status`) and logged. A doctor not on the roster may be
added to it (`doctor-connect doctor add`): that refusal is not final, so the same message
sent again is looked at afresh.
"""

from __future__ import annotations

import logging
import threading

from protocol import Message, topics
from services.doctor_connect.config import Config
from services.doctor_connect.engine import Engine, RefusalReason, Refused
from services.doctor_connect.store import Store
from services.mqtt_service import MqttService, MqttSettings, PublishError, Refusal
from services.stop_signals import StopSignals

log = logging.getLogger("services.doctor_connect")

_BATCH = 200
# Refusals an admin makes go away (the roster): the message's id is not remembered.
MAY_CHANGE = frozenset({RefusalReason.UNKNOWN_DOCTOR})


def subscriptions(practice: str) -> list[str]:
    return [
        topics.subscription("consultation"),
        topics.doctor_subscription("doctor_status", practice),
        topics.doctor_subscription("doctor_action", practice),
        topics.doctor_subscription("doctor_text", practice),
        topics.subscription("conversation"),
    ]


class DoctorConnect:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.database_path())
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.engine = Engine(self.store, config, on_outgoing=self._wake.set)
        m = config.mqtt
        settings = MqttSettings(
            host=m.host,
            port=m.port,
            username=m.username or None,
            password=m.password or None,
            tls_ca=m.tls_ca or None,
            keepalive_s=m.keepalive_s,
            session_expiry_s=m.session_expiry_s,
            reconnect_min_s=0.1,
            reconnect_max_s=5.0,
        )
        self.mqtt = MqttService(
            settings,
            client_id=m.client_id,
            group=m.group,
            filters=subscriptions(config.service.practice),
            handler=self._handle,
            # a file of its own: with it in the store's file, other processes (the status
            # command) were seen reading stale counts
            state_path=config.database_path().with_suffix(".mqtt.sqlite3"),
            dead_letter_retry_s=config.service.dead_letter_retry_s,
        )
        # refusals counted before this run, to which this run's counts are added
        self._refused_before = self.store.rejections()
        self._threads = [
            threading.Thread(target=self._send_loop, name="dc-sender", daemon=True),
            threading.Thread(target=self._tick_loop, name="dc-ticker", daemon=True),
        ]

    def _save_refusals(self) -> None:
        """Keep the counts of refused messages in the store, for `doctor-connect status`."""
        counts = dict(self._refused_before)
        for reason, count in self.mqtt.rejections.counts().items():
            counts[reason] = counts.get(reason, 0) + count
        if counts != self.store.rejections():
            self.store.set_rejections(counts)

    def _handle(self, message: Message) -> None:
        try:
            self.engine.handle(message)
        except Refused as exc:
            raise Refusal(exc.reason, exc.detail, final=exc.reason not in MAY_CHANGE) from None

    def start(self, timeout: float | None = None) -> DoctorConnect:
        for thread in self._threads:
            thread.start()
        self.mqtt.start(timeout)
        return self

    def stop(self) -> None:
        self.mqtt.stop()
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(5)
        self.store.close()

    def _tick_loop(self) -> None:
        while not self._stop.wait(self.config.service.tick_s):
            try:
                self.engine.tick()
                self._save_refusals()
            except Exception:
                log.exception("a tick failed; trying again at the next")

    def _send_loop(self) -> None:
        """Publish the outbox in order; a row goes only once the broker acknowledged it."""
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._drain()
            except Exception:
                log.exception("publishing the outbox failed; trying again")

    def _drain(self) -> None:
        while not self._stop.is_set() and self.mqtt.connected:
            rows = self.store.pending(_BATCH)
            if not rows:
                return
            done: list[int] = []
            try:
                for seq, topic, payload in rows:
                    self.mqtt.publish_raw(topic, payload, timeout=10)
                    done.append(seq)
            except PublishError as exc:
                log.warning("the broker did not take a message (%s); trying again", exc)
                return
            finally:
                self.store.sent(done)


def serve(config: Config) -> int:
    """Run until SIGTERM or SIGINT."""
    service = DoctorConnect(config)
    stopped = StopSignals()  # no lock in the handler: see services/stop_signals.py
    service.start()
    while not stopped.received and not service.mqtt.wait_ready(10):
        log.warning("waiting for the broker %s:%d", config.mqtt.host, config.mqtt.port)
    if not stopped.received:
        log.info(
            "doctor-connect serving practice %s via %s:%d",
            config.service.practice,
            config.mqtt.host,
            config.mqtt.port,
        )
    stopped.wait()
    service.stop()
    log.info("doctor-connect stopped")
    return 0
