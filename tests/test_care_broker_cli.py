"""`care-broker`, the real command in child processes: set up, provision a household into a
device config, run Mosquitto with it, and clear errors for what a person can fix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from assistant.config import load_config
from protocol import topics
from tests.broker import Mosquitto, free_port
from tests.secure_broker import Probe


def care_broker(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.broker.cli", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_provision_a_household_and_run_the_broker(tmp_path: Path) -> None:
    folder, port = tmp_path / "broker", free_port()
    done = care_broker(folder, "init", "--port", str(port), "--host", "127.0.0.1")
    assert done.returncode == 0, done.stderr
    device_config = tmp_path / "device.toml"
    device_config.write_text('language = "en"\n')
    done = care_broker(
        folder, "household", "smith", "--device", "kitchen", "--member", "anna",
        "--device-config", str(device_config),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "smith/device/kitchen" in done.stdout and "smith/member/anna" in done.stdout
    listed = json.loads(care_broker(folder, "list", "--json").stdout)
    assert {"smith/device/kitchen", "smith/member/anna", "service/family-notify"} <= set(listed)
    # the device's config now has its credentials, and loads as a device config
    config = load_config(device_config)
    assert (config.device.household, config.device.device_id) == ("smith", "kitchen")
    assert config.mqtt.username == "smith/device/kitchen" and config.mqtt.tls_ca
    assert oct(device_config.stat().st_mode & 0o777) == "0o600"

    running = subprocess.Popen(
        [sys.executable, "-m", "services.broker.cli", "--dir", str(folder), "run"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        broker = Mosquitto(tmp_path / "probe", config=folder / "mosquitto.conf", port=port)
        deadline = time.monotonic() + 20
        answer = ""
        while time.monotonic() < deadline and answer != "Success":
            probe = Probe(broker, config.mqtt.username, password=config.mqtt.password,
                          client_id=topics.device_client_id("smith", "kitchen"),
                          ca=config.mqtt.tls_ca)  # fmt: skip
            answer = probe.connect(timeout=5)
            if answer == "Success":
                assert probe.subscribe(topics.command("smith", "kitchen")) == "Granted QoS 1"
                assert probe.subscribe(topics.subscription("command")) == "Not authorized"
            probe.close()
            time.sleep(0.2)
        assert answer == "Success"
        # a second run with the same folder is refused while the first runs
        again = care_broker(folder, "run")
        assert again.returncode == 2 and "already runs" in again.stderr
    finally:
        os.kill(running.pid, signal.SIGTERM)
        running.wait(10)


def test_mistakes_get_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    folder = tmp_path / "broker"
    not_set_up = care_broker(folder, "household", "smith", "--device", "kitchen")
    assert not_set_up.returncode == 2
    assert "care-broker init" in not_set_up.stderr
    assert care_broker(folder, "init", "--port", str(free_port())).returncode == 0
    for args, expected in [
        (("household", "smith"), "at least one device or member"),
        (("household", "smith/x", "--device", "d"), "not a valid household or device id"),
        (("household", "smith", "--device", "+"), "not a valid household or device id"),
        (("remove", "nobody"), "no account"),
        (("credentials", "nobody"), "no account"),
        (("init", "--port", "70000"), "out of range"),
    ]:
        done = care_broker(folder, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("care-broker: ") and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
