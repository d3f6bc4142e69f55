"""The device's link in a process of its own, for tests that kill it with SIGKILL.

    python -m tests.device_process --config CONFIG.toml

It reads one command a line on stdin and answers with JSON lines on stdout:

| command          | answer                                                          |
|------------------|-----------------------------------------------------------------|
| `start`          | `{"event": "started"}` (the link connects in the background)    |
| `publish KIND`   | `{"event": "stored", "id": ...}` (KIND: family or alert)        |
| `stream N`       | N times `{"event": "stored", "id": ..., "n": i}`, as fast as it can |
| `wait connected` | `{"event": "connected", "session_present": ...}`                |
| `wait inflight`  | `{"event": "inflight"}` once paho holds a stored message        |
| `wait drained`   | `{"event": "drained"}` once the broker acknowledged everything  |
| `quit`           | closes the link and exits                                       |

Every message it is sent is reported as `{"event": "handled", "id": ..., "type": ...}`.
`DeviceProcess` is the test side.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- the child ----------------------------------------------------------------------------

_print_lock = threading.Lock()


def _emit(event: str, **fields: Any) -> None:
    with _print_lock:
        print(json.dumps({"event": event, **fields}), flush=True)


def _wait(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def child(config_path: str) -> int:
    import logging

    from assistant.config import load_config
    from assistant.link import Link
    from protocol import EmergencyAlert, FamilyMessage

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    config = load_config(config_path)
    link = Link.from_config(config, on_message=lambda m: _emit("handled", id=m.id, type=m.type))
    bodies = {
        "family": lambda: FamilyMessage(to="all", text="I am fine"),
        "alert": lambda: EmergencyAlert(trigger="voice"),
    }
    for line in sys.stdin:
        command, *args = line.split()
        if command == "start":
            link.start()
            _emit("started")
        elif command == "publish":
            _emit("stored", id=link.publish(bodies[args[0]]()).id)
        elif command == "stream":
            for n in range(int(args[0])):
                _emit("stored", id=link.publish(bodies["family"]()).id, n=n)
        elif command == "wait" and args == ["connected"]:
            if link.wait_connected(30):
                _emit("connected", session_present=link.session_present)
        elif command == "wait" and args == ["inflight"]:
            if _wait(lambda: link.inflight > 0):
                _emit("inflight")
        elif command == "wait" and args == ["drained"]:
            if link.wait_drained(30):
                _emit("drained")
        elif command == "quit":
            break
    link.close()
    return 0


# --- the test side ------------------------------------------------------------------------


def write_config(
    path: Path, *, host: str, port: int, state_dir: Path, household: str, device: str
) -> Path:
    """A config file for a device on a test broker: short keepalive and backoff."""
    path.write_text(
        f'[mqtt]\nhost = "{host}"\nport = {port}\nkeepalive_s = 2\n'
        "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\n"
        f'[device]\nhousehold = "{household}"\ndevice_id = "{device}"\n'
        f'[paths]\nstate_dir = "{state_dir}"\n'
    )
    return path


class DeviceProcess:
    def __init__(self, config: Path, log: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self._log = log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.device_process", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.events: queue.Queue[dict] = queue.Queue()
        self.handled: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            if event["event"] == "handled":
                self.handled.append(event)
            else:
                self.events.put(event)

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, name: str, timeout: float = 15.0) -> dict:
        """The next event (other than `handled`), which must be `name`."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the device process did not answer {name!r}") from None
        assert event["event"] == name, event
        return event

    def ask(self, command: str, answer: str, timeout: float = 15.0) -> dict:
        self.send(command)
        return self.expect(answer, timeout)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a power cut of the process."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(5)
        self._log.close()

    def remaining(self) -> list[dict]:
        """The events not read yet (after the process ended: all it said)."""
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def quit(self) -> int:
        self.send("quit")
        code = self.process.wait(15)
        self._log.close()
        return code


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    sys.exit(child(parser.parse_args().config))
