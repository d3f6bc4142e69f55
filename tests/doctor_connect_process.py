"""`doctor-connect serve` as a real process against a test Mosquitto, with a roster set up
through the real CLI, and a simulated doctor's app (a real MQTT client).

    backend = DoctorConnectProcess.setup(tmp_path, broker, doctors=[("weber", "general_practice")])
    with DoctorClient(broker, "weber") as weber:
        weber.set_status("available")
        ...
    backend.kill()      # SIGKILL: a crash
    backend.start()     # the same database, the same MQTT client id
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from paho.mqtt.subscribeoptions import SubscribeOptions

from protocol import DoctorAccept, DoctorEnd, DoctorStatus, create, encode, topics
from tests.backend import Backend
from tests.broker import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
COMMAND = str(Path(sys.executable).with_name("doctor-connect"))
PRACTICE = "test-practice"
AROUND_THE_CLOCK = "daily 00:00-24:00"

# Short timings so tests see promises, positions and reminders within seconds.
FAST = {
    "gp_promise_s": 30,
    "specialist_promise_s": 3600,
    "consult_s": 300,
    "join_s": 60,
    "position_interval_s": 0,
    "reminder_before_s": 3600,
    "appointment_s": 1800,
}


def write_config(
    path: Path, broker: Mosquitto, database: Path, *, tick_s: float = 0.2, **timings: float
) -> Path:
    lines = [
        "[mqtt]",
        f'host = "{broker.host}"',
        f"port = {broker.port}",
        "keepalive_s = 5",
        "[service]",
        f'practice = "{PRACTICE}"',
        f'database = "{database}"',
        f"tick_s = {tick_s}",
        "[timings]",
        *(f"{key} = {value}" for key, value in {**FAST, **timings}.items()),
        "[video]",
        'base_url = "https://video.test/room"',
        'secret = "test-secret"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


class DoctorConnectProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self.process: subprocess.Popen[str] | None = None

    @classmethod
    def setup(
        cls,
        directory: Path,
        broker: Mosquitto,
        doctors: list[tuple[str, str]] = (),  # type: ignore[assignment]
        **timings: Any,
    ) -> DoctorConnectProcess:
        """A config, a roster (id, department; around the clock, offline) and a running
        process that has subscribed."""
        directory.mkdir(parents=True, exist_ok=True)
        config = write_config(
            directory / "doctor-connect.toml", broker, directory / "dc.sqlite3", **timings
        )
        backend = cls(config, directory / "doctor-connect.log")
        for doctor_id, department in doctors:
            backend.add_doctor(doctor_id, department)
        backend.start()
        return backend

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [COMMAND, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def add_doctor(self, doctor_id: str, department: str, **options: str) -> None:
        options.setdefault("hours", AROUND_THE_CLOCK)
        options.setdefault("name", f"Dr. {doctor_id.title()}")
        flags = [x for key, value in options.items() for x in (f"--{key}", value)]
        self.cli("doctor", "add", doctor_id, "--department", department, *flags)

    def status(self) -> dict:
        return json.loads(self.cli("status", "--json").stdout)

    def start(self, timeout: float = 20.0) -> None:
        assert self.process is None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [COMMAND, "--config", str(self.config), "serve"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        deadline = time.monotonic() + timeout
        while "doctor-connect serving" not in self.log()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"doctor-connect did not start:\n{self.log()[offset:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None
        self._log.close()

    def stop(self) -> int:
        if self.process is None:
            return 0
        self.process.terminate()
        code = self.process.wait(20)
        self.process = None
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class DoctorClient(Backend):
    """A doctor's app: sets its status (retained, last will `offline`), receives sessions on
    its own topic and accepts or ends them."""

    def __init__(self, broker: Mosquitto, doctor: str, practice: str = PRACTICE) -> None:
        super().__init__(broker, household=practice, kinds=(), client_id=f"doctor-app-{doctor}")
        self.doctor = doctor
        self.practice = practice
        will = create(DoctorStatus("offline"), practice, doctor)
        self._client.will_set(will.topic, encode(will), qos=1, retain=True)

    def _on_connect(self, client, userdata, flags, reason_code, props) -> None:
        if reason_code.is_failure:
            return
        options = SubscribeOptions(qos=1)
        client.subscribe(
            [
                (topics.doctor_topic(self.practice, self.doctor, kind), options)
                for kind in topics.DOCTOR_INBOUND
            ]
        )

    def set_status(self, state: str) -> None:
        message = create(DoctorStatus(state), self.practice, self.doctor)
        info = self._client.publish(message.topic, encode(message), qos=1, retain=True)
        info.wait_for_publish(5)
        assert info.is_published()

    def accept(self, request_id: str) -> None:
        self.send(create(DoctorAccept(request_id), self.practice, self.doctor))

    def end(self, request_id: str) -> None:
        self.send(create(DoctorEnd(request_id), self.practice, self.doctor))

    def sessions(self) -> list:
        return [m.body for m in self.handled if m.type == "doctor.session"]
