"""The device's link as a process of its own, killed with SIGKILL at the worst moments,
against a real Mosquitto and a backend that drops duplicates as the services will."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from protocol import DeviceStatus, Reason, Say, create, topics
from tests.backend import Backend, bad_inputs
from tests.broker import Mosquitto
from tests.cli import run_cli
from tests.device_process import DeviceProcess, write_config

pytestmark = pytest.mark.e2e

H, D = "household-7", "living-room"


@pytest.fixture
def backend(broker: Mosquitto):
    with Backend(broker, household=H) as running:
        yield running


@pytest.fixture
def config(broker: Mosquitto, tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "device.toml",
        host=broker.host,
        port=broker.port,
        state_dir=tmp_path / "state",
        household=H,
        device=D,
    )


def device(config: Path) -> DeviceProcess:
    return DeviceProcess(config, config.parent / "device.log")


def status(config: Path) -> dict:
    result = run_cli("--config", str(config), "status", "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_message_stored_when_the_device_is_killed_is_sent_after_the_restart(
    backend: Backend, config: Path
) -> None:
    first = device(config)
    stored = first.ask("publish alert", "stored")["id"]  # stored; the link never started
    first.kill()
    assert status(config)["queued_alerts"] == 1

    second = device(config)
    second.ask("start", "started")
    second.ask("wait drained", "drained")
    assert backend.wait_until(lambda: stored in backend.ids())
    assert status(config)["state"] == "connected"
    assert status(config)["queued"] == 0
    assert second.quit() == 0
    assert backend.ids().count(stored) == 1


def test_a_message_sent_but_not_acknowledged_before_a_kill_arrives_once(
    broker: Mosquitto, backend: Backend, config: Path
) -> None:
    """The broker is frozen, so the message sits in its socket unacknowledged when the
    device dies; the broker then routes it, and the restarted device sends it again."""
    first = device(config)
    first.ask("start", "started")
    first.ask("wait connected", "connected")
    broker.pause()
    try:
        stored = first.ask("publish family", "stored")["id"]
        first.ask("wait inflight", "inflight")
        time.sleep(0.3)  # paho's network thread writes it to the socket
        first.kill()
    finally:
        broker.resume()
    assert backend.wait_until(lambda: backend.raw_count(stored) == 1)
    offline = DeviceStatus(state="offline", reason="connection_lost")
    assert backend.wait_until(lambda: any(m.body == offline for m in backend.handled))  # will

    second = device(config)
    second.ask("start", "started")
    second.ask("wait drained", "drained")
    assert backend.wait_until(lambda: backend.raw_count(stored) == 2)  # sent twice...
    assert backend.ids().count(stored) == 1  # ...handed to the application once
    assert backend.receiver.rejections[Reason.DUPLICATE] >= 1
    assert second.quit() == 0


def test_a_kill_in_the_middle_of_a_stream_loses_nothing_and_doubles_nothing(
    backend: Backend, config: Path
) -> None:
    first = device(config)
    first.ask("start", "started")
    first.ask("wait connected", "connected")
    first.send("stream 5000")
    reported = [first.expect("stored")["id"] for _ in range(150)]
    first.kill()
    reported += [event["id"] for event in first.remaining() if event["event"] == "stored"]

    second = device(config)
    second.ask("start", "started")
    second.ask("wait drained", "drained")
    assert backend.wait_until(lambda: set(reported) <= set(backend.ids("family")), 20)
    handled = backend.ids("family")
    assert len(handled) == len(set(handled))  # no message reached the application twice
    assert second.quit() == 0


def test_bad_input_is_counted_and_the_device_process_keeps_serving(
    backend: Backend, config: Path
) -> None:
    dev = device(config)
    dev.ask("start", "started")
    dev.ask("wait connected", "connected")
    bad = bad_inputs(H, D)
    for payload, _ in bad.values():
        backend.send_raw(topics.command(H, D), payload)
    command = create(Say(text="your daughter called"), H, D)
    backend.send(command)
    deadline = time.monotonic() + 10
    while command.id not in [e["id"] for e in dev.handled] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e["id"] for e in dev.handled] == [command.id]
    assert dev.process.poll() is None
    assert status(config)["rejected"] == {reason: 1 for _, reason in bad.values()}
    assert dev.quit() == 0
