"""The project's secured Mosquitto for tests: the configuration `care-broker` writes (TLS
with its CA, dynamic-security accounts and ACL) on a free port, and a bare MQTT 5 client
to probe it with.

    broker_dir, broker = secure_broker(tmp_path)      # started; broker.stop() at the end
    broker_dir.add_household("hA", ["dA"], ["mA"])      # applied to the running broker
    with Probe(broker, "hA/device/dA", broker_dir) as probe:
        probe.subscribe(topic)  # -> "Granted QoS 1" or "Not authorized"
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from services.broker.provision import BrokerDir
from tests.broker import Mosquitto, free_port


def secure_broker(directory: Path, practice: str = "practice") -> tuple[BrokerDir, Mosquitto]:
    """A broker folder set up by `care-broker init` and a Mosquitto running it."""
    broker_dir = BrokerDir(directory / "broker")
    port = free_port()
    broker_dir.init(
        hosts=["127.0.0.1"],
        port=port,
        practice=practice,
        log_file=str(directory / "broker" / "mosquitto.log"),
    )
    broker = Mosquitto(directory / "broker", config=broker_dir.config, port=port)
    broker.start()
    return broker_dir, broker


class Probe:
    """A bare paho client that records what the broker answers: CONNACK, SUBACKs, PUBACKs
    and the messages delivered."""

    def __init__(
        self,
        broker: Mosquitto,
        username: str | None,
        broker_dir: BrokerDir | None = None,
        *,
        password: str | None = None,
        client_id: str | None = None,
        tls: bool = True,
        ca: str | None = None,
        clean_start: bool = True,
    ) -> None:
        account = broker_dir.accounts().get(username or "") if broker_dir else None
        if password is None and username and broker_dir is not None:
            password = broker_dir.read_credentials(username)["password"]
        if client_id is None and account is not None:
            client_id = account.client_id  # the one the account is bound to
        self.broker = broker
        self.clean_start = clean_start
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"probe-{id(self)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls:
            assert broker_dir is not None or ca is not None
            self.client.tls_set(ca_certs=ca or str(broker_dir.ca))  # type: ignore[union-attr]
        self.connack: str | None = None
        self.results: dict[int, str] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect
        self.error: str | None = None

    # --- callbacks ---------------------------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, props) -> None:
        with self._cond:
            self.connack = str(reason_code)
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, flags, reason_code, props) -> None:
        with self._cond:
            if self.connack is None:
                self.connack = f"disconnected: {reason_code}"
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, reason_codes, props) -> None:
        with self._cond:
            self.results[mid] = str(reason_codes[0])
            self._cond.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, props) -> None:
        with self._cond:
            self.results[mid] = str(reason_code)
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._cond.notify_all()

    # --- the API -----------------------------------------------------------------------------

    def connect(self, timeout: float = 15.0) -> str:
        """The CONNACK's reason ("Success", "Not authorized"...), or how the connection
        ended without one."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if self.clean_start else 3600
        try:
            self.client.connect(
                self.broker.host,
                self.broker.port,
                keepalive=10,
                clean_start=self.clean_start,
                properties=props,
            )
        except OSError as exc:  # a TLS handshake that failed, a refused connection
            self.connack = f"failed: {type(exc).__name__}"
            return self.connack
        self.client.loop_start()
        with self._cond:
            self._cond.wait_for(lambda: self.connack is not None, timeout)
        return self.connack or "no answer"

    def _wait_result(self, mid: int, timeout: float) -> str:
        with self._cond:
            self._cond.wait_for(lambda: mid in self.results, timeout)
            return self.results.get(mid, "no answer")

    def subscribe(self, topic_filter: str, timeout: float = 10.0) -> str:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        return self._wait_result(mid, timeout)

    def publish(
        self, topic: str, payload: bytes = b"{}", *, retain: bool = False, timeout: float = 10.0
    ) -> str:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        return self._wait_result(info.mid, timeout)

    def received(self, topic: str | None = None) -> list[bytes]:
        with self._cond:
            return [p for t, p, _ in self.messages if topic is None or t == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = 15.0) -> list[bytes]:
        with self._cond:
            self._cond.wait_for(
                lambda: sum(t == topic for t, _, _ in self.messages) >= count, timeout
            )
        return self.received(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Probe:
        answer = self.connect()
        if answer != "Success":
            self.close()
            raise ConnectionError(f"not connected: {answer}")
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
