"""The real `family-notify` for tests: its config, its CLI, and `serve` workers as processes
of their own against a tests/broker.py Mosquitto.

    config = write_config(tmp_path, broker)          # short timings, recording gateways
    setup_household(config)                           # household "h1": Mum and her family
    with FamilyWorker(config, "1") as worker:         # `family-notify serve`, until stopped
        ...                                           # worker.kill() is a SIGKILL

Stand-ins for the other parties are `tests.backend.Backend`s: `device_standin(broker)`
hears what a device would (commands, acknowledgements of alerts, refusals) and publishes
what a device would; `apps_standin(broker)` is every member's app (inboxes, refusals).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tests.backend import Backend
from tests.broker import Mosquitto

ROOT = Path(__file__).resolve().parent.parent
H, D = "h1", "speaker-1"


@dataclass(frozen=True)
class FamilyConfigFiles:
    path: Path
    database: Path
    sms: Path
    phone: Path


def write_config(
    directory: Path,
    broker: Mosquitto,
    *,
    step_s: float = 1.0,
    repeat_s: float = 1.0,
    max_repeats: int = 1,
    grace_s: float = 1.0,
    tick_s: float = 0.1,
    claim_s: float = 2.0,
    command_timeout_s: float = 600.0,
    digest_at: str = "",
    name: str = "family-notify.toml",
) -> FamilyConfigFiles:
    """A config for a test broker, with timings short enough for tests."""
    directory.mkdir(parents=True, exist_ok=True)
    files = FamilyConfigFiles(
        directory / name,
        directory / "family.sqlite3",
        directory / "sms.jsonl",
        directory / "phone.jsonl",
    )
    files.path.write_text(
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nkeepalive_s = 5\n'
        "reconnect_min_s = 0.1\nreconnect_max_s = 0.5\n"
        f'[service]\ndatabase = "{files.database}"\ntick_s = {tick_s}\nclaim_s = {claim_s}\n'
        f"command_timeout_s = {command_timeout_s}\n"
        f"[escalation]\nstep_s = {step_s}\nrepeat_s = {repeat_s}\nmax_repeats = {max_repeats}\n"
        f"[medication]\ngrace_s = {grace_s}\n"
        f'[digest]\nat = "{digest_at}"\n'
        f'[channels]\nsms = "file:{files.sms}"\nphone = "file:{files.phone}"\n'
    )
    return files


def family_cli(config: FamilyConfigFiles, *args: str) -> subprocess.CompletedProcess[str]:
    """`family-notify --config CONFIG ARGS...` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "services.family.cli", "--config", str(config.path), *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass(frozen=True)
class MemberSpec:
    id: str
    name: str
    role: str
    relation: str | None = None
    contacts: tuple[str, ...] = ()
    quiet: str | None = None
    language: str = "en"

    def args(self) -> list[str]:
        out = ["--name", self.name, "--role", self.role, "--language", self.language]
        if self.relation:
            out += ["--relation", self.relation]
        for contact in self.contacts:
            out += ["--contact", contact]
        if self.quiet:
            out += ["--quiet", self.quiet]
        return out


FAMILY = (
    MemberSpec("mum", "Mum", "senior"),
    MemberSpec("anna", "Anna", "family", "daughter", ("sms:+4915100001", "phone:+4915100001")),
    MemberSpec("ben", "Ben", "family", "son", ("sms:+4915100002",), language="de"),
    MemberSpec("carla", "Carla", "caregiver", "carer", ("phone:+4915100003",)),
)


@dataclass
class Household:
    id: str = H
    device: str = D
    senior: str = "Mum"
    emergency_number: str | None = "+49112"
    timezone: str = "Europe/Berlin"
    members: tuple[MemberSpec, ...] = field(default=FAMILY)


def setup_household(config: FamilyConfigFiles, household: Household | None = None) -> Household:
    """A household set up through the real CLI."""
    household = household or Household()
    args = ["household", "add", household.id, "--senior", household.senior]
    args += ["--device", household.device, "--timezone", household.timezone]
    if household.emergency_number:
        args += ["--emergency-number", household.emergency_number]
    ok(family_cli(config, *args))
    for member in household.members:
        ok(
            family_cli(
                config, "household", "member", "add", household.id, member.id, *member.args()
            )
        )
    return household


class FamilyWorker:
    """`family-notify serve --worker NAME` as a child process; its log goes to a file."""

    def __init__(self, config: FamilyConfigFiles, name: str = "1", web: str | None = None) -> None:
        """`web`: HOST:PORT for the web console (port 0: a free one; `web_url` says which)."""
        self.config = config
        self.name = name
        self.web = web
        self.web_url: str | None = None
        self.log_path = config.path.parent / f"worker-{name}.log"
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> FamilyWorker:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.family.cli", "--config", str(self.config.path),
             "serve", "--worker", self.name, *(["--web", self.web] if self.web else [])],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )  # fmt: skip
        log.close()
        ready = threading.Event()
        assert self.process.stdout is not None
        stdout = self.process.stdout

        def read() -> None:
            for line in stdout:
                if "web console at " in line:
                    self.web_url = line.split("web console at ", 1)[1].strip()
                if "serving as" in line:
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            self.kill()
            raise AssertionError(f"family-notify did not serve:\n{self.log()}")
        return self

    def stop(self) -> int:
        """SIGTERM: the worker hands its share over and ends its session."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def __enter__(self) -> FamilyWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()


def device_standin(broker: Mosquitto, client_id: str = "device-standin") -> Backend:
    """What the senior's device hears from the service: commands, acknowledgements of its
    alerts, refusals. It publishes what a device would with `send`."""
    return Backend(broker, kinds=("command", "alert_ack", "refused"), client_id=client_id)


def apps_standin(broker: Mosquitto, client_id: str = "family-apps") -> Backend:
    """Every member's app at once: their inboxes and refusals."""
    return Backend(broker, kinds=("inbox", "member_refused"), client_id=client_id)
