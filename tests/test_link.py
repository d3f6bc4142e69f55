"""The device's MQTT link against a real Mosquitto: outages, restarts, refusals, security."""

from __future__ import annotations

import queue
import re
import sqlite3
import time
from pathlib import Path

import pytest

from assistant.config import ConfigError, MqttConfig, config_from_dict, default_device_id
from assistant.link import Link
from assistant.status import read_status
from protocol import (
    DeviceStatus,
    EmergencyAlert,
    FamilyMessage,
    Message,
    Reason,
    Say,
    create,
    topics,
)
from protocol.ratelimit import (
    DEVICE_PACE,
    SERVICE_LIMIT,
    RateLimit,
    RateLimiter,
    pace_within,
)
from tests.backend import Backend, bad_inputs
from tests.broker import Mosquitto, make_tls

H, D = "household-1", "kitchen-speaker"
KEEPALIVE_S = 2


def settings(broker: Mosquitto, **changes) -> MqttConfig:
    base = dict(
        host=broker.host,
        port=broker.port,
        keepalive_s=KEEPALIVE_S,
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    return MqttConfig(**{**base, **changes})


def make_link(broker: Mosquitto, state_dir: Path, **changes) -> Link:
    return Link(settings(broker, **changes), household=H, device=D, state_dir=state_dir)


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def family(text: str = "I am fine") -> FamilyMessage:
    return FamilyMessage(to="Anna", text=text)


def say(text: str = "Anna is on her way") -> Message:
    return create(Say(text=text), H, D)


@pytest.fixture
def backend(broker: Mosquitto):
    with Backend(broker, household=H) as running:
        yield running


@pytest.fixture
def link(broker: Mosquitto, tmp_path: Path):
    device = make_link(broker, tmp_path / "state")
    device.start()
    assert device.wait_connected(10)
    yield device
    device.close()


def test_a_message_published_while_the_broker_is_down_arrives_when_it_returns(
    broker: Mosquitto, backend: Backend, link: Link
) -> None:
    broker.stop()
    assert wait_for(lambda: not link.connected)
    message = link.publish(family())
    time.sleep(KEEPALIVE_S + 0.5)  # down for longer than the keepalive; retries keep failing
    assert link.state == "disconnected"
    assert link.outbox.contains(message.id)
    broker.start()
    assert backend.wait_until(lambda: message.id in backend.ids(), 15)
    assert link.wait_drained(5)
    assert backend.ids().count(message.id) == 1


def test_a_frozen_broker_is_noticed_by_the_keepalive_and_the_link_comes_back(
    broker: Mosquitto, backend: Backend, link: Link
) -> None:
    """No FIN, no RST: the connection just goes silent, as when a router dies."""
    broker.pause()
    try:
        assert wait_for(lambda: not link.connected, timeout=4 * KEEPALIVE_S)
        message = link.publish(EmergencyAlert(trigger="voice"))
    finally:
        broker.resume()
    assert link.wait_connected(15)
    assert backend.wait_until(lambda: message.id in backend.ids(), 15)
    assert link.wait_drained(5)


def test_the_session_and_a_command_sent_while_away_survive_a_broker_restart(
    broker: Mosquitto, backend: Backend, tmp_path: Path
) -> None:
    first = make_link(broker, tmp_path / "state")
    first.start()
    assert first.wait_connected(10)
    assert first.session_present is False  # a new device
    first.close()

    command = say()
    backend.send(command)  # the device is away: the broker queues it in its session
    broker.restart()  # persistence: the session and the queued command are on disk

    again = make_link(broker, tmp_path / "state")
    again.start()
    try:
        assert again.wait_connected(10)
        assert again.session_present is True
        assert again.incoming.get(timeout=10) == command
        time.sleep(0.3)
        assert again.incoming.empty()
    finally:
        again.close()


def test_alerts_overtake_messages_waiting_in_the_outbox(
    broker: Mosquitto, backend: Backend, tmp_path: Path
) -> None:
    device = make_link(broker, tmp_path / "state")
    waiting = [device.publish(family(str(i))) for i in range(3)]  # stored, link not started
    urgent = device.publish(EmergencyAlert(trigger="sos_button"))
    device.start()
    try:
        expected = [urgent.id] + [m.id for m in waiting]
        assert backend.wait_until(lambda: len(backend.ids("alert") + backend.ids("family")) == 4)
        received = [m.id for m in backend.handled if m.type != DeviceStatus.TYPE]
        assert received == expected
    finally:
        device.close()


def backlog_after_an_outage(broker: Mosquitto, state_dir: Path, pace, limit) -> Backend:
    """31 messages stored while offline (an alert last), then sent to a service that keeps
    `limit` per sender; returns the service's view once the link is connected."""
    device = Link(settings(broker), household=H, device=D, state_dir=state_dir, pace=pace)
    for i in range(30):
        device.publish(family(f"message {i}"))
    device.publish(EmergencyAlert(trigger="voice"))
    service = Backend(
        broker, household=H, client_id=f"service-{state_dir.name}", limiter=RateLimiter(limit)
    ).start()
    device.start()
    service.device = device  # type: ignore[attr-defined]  # closed by the caller
    return service


def test_a_backlog_arrives_whole_within_the_services_rate_limit(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """A device back from days offline: everything it stored reaches the service, none of
    it dropped as over the limit, and the alert leads. Without pacing, the same backlog
    loses messages to the same limit (the control below)."""
    limit = RateLimit(rate_per_s=4.0, burst=10)
    service = backlog_after_an_outage(broker, tmp_path / "paced", pace_within(limit), limit)
    try:
        assert service.wait_until(lambda: len(service.ids("family")) == 30, 30)
        assert service.receiver.rejections[Reason.RATE_LIMITED] == 0
        sent = [m.type for m in service.handled if m.type != DeviceStatus.TYPE]
        assert sent[0] == EmergencyAlert.TYPE
    finally:
        service.device.close()
        service.stop()

    control = backlog_after_an_outage(broker, tmp_path / "unpaced", None, limit)
    try:
        assert control.wait_until(lambda: control.receiver.rejections[Reason.RATE_LIMITED], 10)
        assert control.ids("alert")  # alerts are exempt either way
    finally:
        control.device.close()
        control.stop()


def test_a_device_paces_within_what_the_services_accept() -> None:
    assert DEVICE_PACE.burst < SERVICE_LIMIT.burst
    assert DEVICE_PACE.rate_per_s < SERVICE_LIMIT.rate_per_s
    with pytest.raises(ValueError):
        pace_within(SERVICE_LIMIT, share=1.5)


def test_an_alert_no_service_was_there_to_take_is_kept_and_sent_again(
    broker: Mosquitto, link: Link
) -> None:
    """The broker acknowledges a message nobody subscribes to ("no matching subscribers")
    and drops it: while family-notify restarts, that would be an alert lost for good."""
    message = link.publish(EmergencyAlert(trigger="voice"))
    time.sleep(1.0)
    assert link.outbox.contains(message.id)
    with Backend(broker, household=H, client_id="service-back") as service:
        assert service.wait_until(lambda: message.id in service.ids(), 30)
    assert link.wait_drained(5)


def test_a_state_file_failing_while_a_puback_is_handled_does_not_silence_the_link(
    broker: Mosquitto, link: Link, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """A disk error in the bookkeeping of an acknowledgement (here: deferring an alert the
    broker dropped for want of a subscriber) used to be raised on paho's network thread,
    which died: no log record, the link still "connected", and the alert never sent until
    the device restarted. The disk cannot be filled here, so the deferral fails once."""
    real_defer = link.outbox.defer
    failures = []

    def defer_failing_once(seq: int, error: str, longest_s: float = 300.0) -> float:
        if not failures:
            failures.append(seq)
            raise sqlite3.OperationalError("disk I/O error")
        return real_defer(seq, error, longest_s)

    monkeypatch.setattr(link.outbox, "defer", defer_failing_once)
    alert = link.publish(EmergencyAlert(trigger="voice"))
    assert wait_for(lambda: failures, 5)
    assert "could not defer message" in caplog.text
    with Backend(broker, household=H, client_id="service-back") as service:
        assert service.wait_until(lambda: alert.id in service.ids(), 30)
        later = link.publish(family("after the failure"))
        assert service.wait_until(lambda: later.id in service.ids(), 10)
    assert link.connected and link.wait_drained(5)


def test_a_deferral_that_keeps_failing_rests_the_message_instead_of_a_hot_loop(
    broker: Mosquitto, link: Link, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the state file cannot take a deferral, a message nobody took rests in memory
    for the deferral's time: offered again later, not at once and over and over (each
    time an ERROR with a traceback)."""
    tries: list[int] = []

    def defer_failing(seq: int, error: str, longest_s: float = 300.0) -> float:
        tries.append(seq)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(link.outbox, "defer", defer_failing)
    alert = link.publish(EmergencyAlert(trigger="voice"))
    assert wait_for(lambda: tries, 5)
    time.sleep(2.0)
    assert len(tries) == 1  # resting: not offered again within its 15 s
    assert link.outbox.contains(alert.id)


def test_a_message_whose_settling_fails_is_kept_and_handled(
    broker: Mosquitto, backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler ran but remembering the id failed (the state file): the message is kept
    unacknowledged and tried again, not dropped with the exception."""
    handled: list[Message] = []
    device = Link(settings(broker), household=H, device=D, state_dir=tmp_path / "s",
                  on_message=handled.append)  # fmt: skip
    real_add = device._dedup.add
    failures = []

    def add_failing_once(message_id: str) -> None:
        if not failures:
            failures.append(message_id)
            raise sqlite3.OperationalError("disk I/O error")
        real_add(message_id)

    monkeypatch.setattr(device._dedup, "add", add_failing_once)
    device.start()
    try:
        assert device.wait_connected(10)
        command = say("settled at last")
        backend.send(command)
        assert wait_for(lambda: failures, 5)
        assert wait_for(lambda: len(handled) == 2, 10)  # handled again on the retry
        assert handled == [command, command]
    finally:
        device.close()


def test_presence_is_retained_online_and_then_offline_after_a_shutdown(
    broker: Mosquitto, link: Link
) -> None:
    with Backend(broker, household=H, kinds=["status"], client_id="late-1") as late:
        assert late.wait_until(lambda: late.handled)
        assert late.handled[-1].body == DeviceStatus(state="online", reason="connected")
    link.close()
    with Backend(broker, household=H, kinds=["status"], client_id="late-2") as later:
        assert later.wait_until(lambda: later.handled)
        assert later.handled[-1].body == DeviceStatus(state="offline", reason="shutdown")


def test_bad_input_is_refused_counted_and_the_link_keeps_serving(
    backend: Backend, link: Link, tmp_path: Path
) -> None:
    topic = topics.command(H, D)
    bad = bad_inputs(H, D)
    for done, (payload, reason) in enumerate(bad.values(), 1):
        backend.send_raw(topic, payload)
        assert wait_for(lambda n=done: link.rejections.total == n), reason
        assert link.rejections[reason] >= 1
    command = say()
    backend.send(command)
    assert link.incoming.get(timeout=5) == command
    assert link.connected
    expected = {reason: 1 for _, reason in bad.values()}
    assert link.rejections.counts() == expected
    assert read_status(tmp_path / "state").rejections == expected  # what `status` shows


def test_a_command_delivered_again_after_a_restart_is_handled_once(
    broker: Mosquitto, backend: Backend, tmp_path: Path
) -> None:
    command = say()
    first = make_link(broker, tmp_path / "state")
    first.start()
    assert first.wait_connected(10)
    backend.send(command)
    assert first.incoming.get(timeout=5) == command
    first.close()

    again = make_link(broker, tmp_path / "state")
    again.start()
    try:
        assert again.wait_connected(10)
        backend.send(command)  # the same id, as a service resending it would
        assert wait_for(lambda: again.rejections[Reason.DUPLICATE] == 1)
        with pytest.raises(queue.Empty):
            again.incoming.get(timeout=0.3)
    finally:
        again.close()


def test_a_message_the_handler_failed_on_is_handled_again_not_lost(
    broker: Mosquitto, backend: Backend, tmp_path: Path
) -> None:
    """The device's handler failing (its state file, say, for an alert.ack) used to lose the
    message: paho acknowledged it when the callback returned. It is now acknowledged only
    once handled: tried again while connected, and sent again by the broker after a
    restart when the device could not handle it at all."""
    handled: list[Message] = []
    failures = {"left": 1}
    state = tmp_path / "state"

    def flaky(message: Message) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        handled.append(message)

    first = Link(settings(broker), household=H, device=D, state_dir=state, on_message=flaky)
    first.start()
    try:
        assert first.wait_connected(10)
        command = say("first")
        backend.send(command)
        assert wait_for(lambda: handled == [command], 10)
        assert first.rejections[Reason.HANDLER_ERROR] == 1
        failures["left"] = 10**6  # from now on the device cannot handle anything
        lost = say("second")
        backend.send(lost)
        assert wait_for(lambda: first.rejections[Reason.HANDLER_ERROR] >= 2)
    finally:
        first.close()
    failures["left"] = 0
    again = Link(settings(broker), household=H, device=D, state_dir=state, on_message=flaky)
    again.start()
    try:
        assert again.wait_connected(10)
        assert wait_for(lambda: handled == [command, lost], 10)  # the broker sent it again
    finally:
        again.close()


def test_credentials_are_required_and_a_refusal_keeps_the_message(tmp_path: Path) -> None:
    users = {"family-service": "service-secret", "kitchen-speaker": "device-secret"}
    with Mosquitto(tmp_path / "auth", users=users) as broker, Backend(broker) as backend:
        wrong = make_link(broker, tmp_path / "wrong", username="kitchen-speaker", password="guess")
        message = wrong.publish(family())
        wrong.start()
        try:
            assert wait_for(lambda: "refused" in _last_error(tmp_path / "wrong"))
            assert not wrong.connected and wrong.outbox.contains(message.id)
        finally:
            wrong.close()

        right = make_link(
            broker, tmp_path / "right", username="kitchen-speaker", password="device-secret"
        )
        message = right.publish(family())
        right.start()
        try:
            assert backend.wait_until(lambda: message.id in backend.ids())
        finally:
            right.close()


def test_tls_with_the_brokers_ca(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with Mosquitto(tmp_path / "tls-broker", tls=tls) as broker, Backend(broker) as backend:
        device = make_link(broker, tmp_path / "state", tls_ca=str(tls.ca))
        message = device.publish(EmergencyAlert(trigger="voice"))
        device.start()
        try:
            assert backend.wait_until(lambda: message.id in backend.ids())
        finally:
            device.close()


def _last_error(state_dir: Path) -> str:
    link = read_status(state_dir).link
    return (link.last_error or "") if link else ""


# --- the link's configuration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"mqtt": {"port": 0}}, "mqtt.port"),
        ({"mqtt": {"keepalive_s": 0}}, "mqtt.keepalive_s"),
        ({"mqtt": {"session_expiry_s": 0}}, "mqtt.session_expiry_s"),
        ({"mqtt": {"reconnect_min_s": 5.0, "reconnect_max_s": 1.0}}, "mqtt.reconnect_min_s"),
        ({"mqtt": {"password": "secret"}}, "mqtt.password needs mqtt.username"),
        ({"mqtt": {"tls_cert": "client.pem"}}, "need mqtt.tls_ca"),
        ({"device": {"household": "a/b"}}, "device.household"),
        ({"device": {"device_id": "+"}}, "device.device_id"),
    ],
)
def test_link_settings_that_cannot_work_are_refused(raw: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        config_from_dict(raw)


def test_without_a_device_id_the_host_name_is_used(tmp_path: Path) -> None:
    config = config_from_dict({"paths": {"state_dir": str(tmp_path)}, "device": {}})
    device = Link.from_config(config)
    try:
        assert device.device == default_device_id()
        assert topics.valid_id(device.device)
    finally:
        device.close()


def test_a_device_only_publishes_what_devices_send(tmp_path: Path) -> None:
    config = config_from_dict({"paths": {"state_dir": str(tmp_path)}})
    device = Link.from_config(config)
    try:
        with pytest.raises(ValueError, match=r"does not send command\.say"):
            device.publish(Say(text="hello"))
        with pytest.raises(ValueError, match=r"does not send device\.status"):
            device.publish(DeviceStatus(state="online", reason="connected"))
        with pytest.raises(ValueError, match="another household"):
            device.publish(create(family(), "elsewhere", device.device))
        assert len(device.outbox) == 0
    finally:
        device.close()
