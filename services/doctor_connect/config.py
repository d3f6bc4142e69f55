"""doctor-connect's configuration: one TOML file (`--config`), defaults in code; every key
is documented in the README ("doctor-connect")."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    pass


@dataclass
class MqttSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = ""
    password: str = ""
    tls_ca: str = ""
    keepalive_s: int = 30
    client_id: str = "doctor-connect"
    group: str = "doctor-connect"  # the shared-subscription group of all workers
    session_expiry_s: int = 7 * 24 * 3600


@dataclass
class ServiceSettings:
    practice: str = "practice"  # the practice id in the doctors' topics
    database: str = ""  # default: $XDG_STATE_HOME/senior-assistant/doctor-connect.sqlite3
    timezone: str = "UTC"  # working hours and appointment times are in this zone
    tick_s: float = 1.0  # how often promises, positions and reminders are looked at
    dead_letter_retry_s: float = 60.0  # a message kept aside (dead_letters) is run again


@dataclass
class Timings:
    gp_promise_s: float = 180.0  # a GP answers within this (also for urgent specialists)
    specialist_promise_s: float = 48 * 3600.0
    consult_s: float = 600.0  # the average consultation, for wait estimates
    join_s: int = 60  # the doctor joins this long after the assignment
    # A consultation the doctor has not accepted this long after the assignment (the app
    # gone quiet, or the broker passed the session to nobody) waits again at its place for
    # another doctor; that doctor is asked again only after as long again.
    accept_s: float = 120.0
    position_interval_s: float = 30.0  # the least time between two position messages
    reminder_before_s: float = 3600.0  # the appointment reminder goes this long before
    appointment_s: float = 1800.0  # one appointment slot


@dataclass
class VideoSettings:
    base_url: str = "https://video.example.org/room"
    secret: str = ""  # signs join tokens; default: a random one per run
    token_ttl_s: int = 4 * 3600
    practice_phone: str = "+10000000000"  # calls from here when a doctor has no own number


@dataclass
class Config:
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    timings: Timings = field(default_factory=Timings)
    video: VideoSettings = field(default_factory=VideoSettings)

    def database_path(self) -> Path:
        if self.service.database:
            return Path(self.service.database).expanduser()
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "senior-assistant" / "doctor-connect.sqlite3"


def _section(cls: type, data: Any, name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"[{name}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(f"unknown key {name}.{key}")
        default = getattr(cls(), key)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            raise ConfigError(f"{name}.{key} must be a {type(default).__name__}")
        values[key] = value
    return cls(**values)


def default_config_path() -> Path:
    home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(home) / "senior-assistant" / "doctor-connect.toml"


def load_config(path: str | Path | None) -> Config:
    """The config in `path` (defaults for what it does not say); without a path the one at
    `$XDG_CONFIG_HOME/senior-assistant/doctor-connect.toml` when there is one, else the
    defaults."""
    if path is None:
        path = default_config_path()
        if not path.exists():
            return Config()
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    sections = {"mqtt": MqttSettings, "service": ServiceSettings, "timings": Timings}
    sections["video"] = VideoSettings
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]")
    config = Config(
        **{name: _section(cls, data.get(name, {}), name) for name, cls in sections.items()}
    )
    for key in ("tick_s", "dead_letter_retry_s"):
        if getattr(config.service, key) <= 0:
            raise ConfigError(f"service.{key} must be above 0")
    if config.timings.accept_s <= 0:
        raise ConfigError("timings.accept_s must be above 0")
    return config
