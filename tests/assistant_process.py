"""The real assistant (`senior-assistant run`) as a long-running child process on a virtual
microphone (tests/audio_devices.py), for end-to-end tests with the services."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.broker import Mosquitto


class AssistantProcess:
    """`senior-assistant run --no-wake` on the virtual microphone; its stdout lines kept."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []  # its log, read as it comes: a full pipe would stop it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "--config", str(config), "run", "--no-wake"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._readers = [
            threading.Thread(
                target=self._read, args=(self.process.stdout, self.lines), daemon=True
            ),
            threading.Thread(
                target=self._read, args=(self.process.stderr, self.errors), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def said(self) -> list[str]:
        return [line.removeprefix("said: ") for line in self.lines if line.startswith("said: ")]

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        return "\n".join(self.errors)


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def device_config(path: Path, broker: Mosquitto, household: str, device: str) -> Path:
    """A config file for the assistant on this broker, its state next to the file."""
    path.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\n"
        f'[device]\nhousehold = "{household}"\ndevice_id = "{device}"\n'
        f'[paths]\nstate_dir = "{path.parent / "device-state"}"\n'
    )
    return path
