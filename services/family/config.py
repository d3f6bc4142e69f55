"""The family-notification service's configuration: one TOML file, defaults in code.

The file is `--config PATH`, else `$XDG_CONFIG_HOME/senior-assistant/family-notify.toml`
when it exists. Every key is documented in the README ("family-notify"); an unknown key or
a value out of range is a `ConfigError`, never silently ignored.
"""

from __future__ import annotations

import os
import socket
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from protocol import MemberAlert
from services.mqtt_service import MqttSettings

APP_NAME = "senior-assistant"
CONFIG_NAME = "family-notify.toml"
# The highest step a member.alert can carry (protocol/messages.py): the ladder and its
# repeats are numbered up to it, so no more repeats than that can ever be sent.
MAX_STEP = int(MemberAlert.__dataclass_fields__["step"].metadata["high"])


class ConfigError(ValueError):
    """A configuration the person running the service can fix."""


@dataclass(frozen=True)
class ServiceSection:
    database: str = ""  # empty: $XDG_STATE_HOME/senior-assistant/family-notify.sqlite3
    group: str = "family-notify"  # the shared-subscription group of the workers
    client_id: str = ""  # empty: family-notify-<host>-<worker>
    tick_s: float = 1.0  # how often a worker looks for due escalations and deliveries
    claim_s: float = 30.0  # a delivery a worker took and did not finish is retried after
    command_timeout_s: float = 600.0  # a command the device did not confirm by then failed
    dead_letter_retry_s: float = 60.0  # a message kept aside (dead_letters) is run again


@dataclass(frozen=True)
class EscalationSection:
    step_s: float = 60.0  # an unanswered emergency moves one step up the ladder this often
    repeat_s: float = 300.0  # after the ladder: the members' inboxes again, this often
    max_repeats: int = 12  # then it stays escalated, open for anyone to acknowledge
    emergency_channel: str = "phone"  # the channel the household's emergency number is on


@dataclass(frozen=True)
class MedicationSection:
    grace_s: float = 900.0  # a missed dose goes to the caregivers if not taken by then


@dataclass(frozen=True)
class DigestSection:
    at: str = "20:00"  # households' local time the daily digest is sent; "" turns it off


@dataclass(frozen=True)
class ChannelsSection:
    """Gateways behind the channel interface, by channel name: `file:PATH` is the recording
    gateway (one JSON line a message: for tests and dry runs); empty: the channel is off."""

    sms: str = ""
    phone: str = ""


@dataclass(frozen=True)
class WebSection:
    listen: str = ""  # HOST:PORT of the web console for members; empty: no web console
    session_hours: float = 12.0  # a sign-in lasts this long
    secure_cookies: bool = False  # true behind a TLS proxy: cookies only over HTTPS


@dataclass(frozen=True)
class FamilyConfig:
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    service: ServiceSection = field(default_factory=ServiceSection)
    escalation: EscalationSection = field(default_factory=EscalationSection)
    medication: MedicationSection = field(default_factory=MedicationSection)
    digest: DigestSection = field(default_factory=DigestSection)
    channels: ChannelsSection = field(default_factory=ChannelsSection)
    web: WebSection = field(default_factory=WebSection)

    def database(self) -> Path:
        if self.service.database:
            return Path(self.service.database).expanduser()
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / APP_NAME / "family-notify.sqlite3"

    def client_id(self, worker: str = "1") -> str:
        return self.service.client_id or f"family-notify-{socket.gethostname()}-{worker}"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_NAME / CONFIG_NAME


def load_config(path: str | Path | None = None) -> FamilyConfig:
    """Read the TOML file (an explicit path must exist; the default one may be absent)."""
    if path is None:
        path = default_config_path()
        if not path.exists():
            return FamilyConfig()
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    return config_from_dict(raw, str(path))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> FamilyConfig:
    config = _build(FamilyConfig, raw, source, "")
    _check(config, source)
    return config


def _build(cls: type, raw: Any, source: str, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [{prefix.rstrip('.')}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(prefix + k for k in unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        if is_dataclass(default):
            values[name] = _build(type(default), value, source, f"{prefix}{name}.")
            continue
        expected = type(default) if default is not None else str
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
            raise ConfigError(f"{source}: {prefix}{name} must be a {expected.__name__}")
        values[name] = value
    return cls(**values)


def _check(config: FamilyConfig, source: str) -> None:
    positive = {
        "service.tick_s": config.service.tick_s,
        "service.claim_s": config.service.claim_s,
        "service.command_timeout_s": config.service.command_timeout_s,
        "service.dead_letter_retry_s": config.service.dead_letter_retry_s,
        "escalation.step_s": config.escalation.step_s,
        "escalation.repeat_s": config.escalation.repeat_s,
        "mqtt.keepalive_s": config.mqtt.keepalive_s,
    }
    for name, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{source}: {name} must be above 0")
    if config.medication.grace_s < 0 or config.escalation.max_repeats < 0:
        raise ConfigError(f"{source}: medication.grace_s and max_repeats must not be negative")
    if config.escalation.max_repeats > MAX_STEP:
        raise ConfigError(
            f"{source}: escalation.max_repeats must be at most {MAX_STEP} (a member.alert"
            f" numbers the ladder's steps and its repeats up to {MAX_STEP})"
        )
    at = config.digest.at
    if at and not (len(at) == 5 and at[2] == ":" and at.replace(":", "").isdigit()):
        raise ConfigError(f"{source}: digest.at must be HH:MM or empty")
    for name in ("sms", "phone"):
        value = getattr(config.channels, name)
        if value and not value.startswith("file:"):
            raise ConfigError(f"{source}: channels.{name}: only file:PATH gateways exist here")
    if config.web.listen:
        try:
            parse_listen(config.web.listen)
        except ValueError as exc:
            raise ConfigError(f"{source}: web.listen: {exc}") from None
    if config.web.session_hours <= 0:
        raise ConfigError(f"{source}: web.session_hours must be above 0")
    if config.escalation.emergency_channel not in ("sms", "phone"):
        raise ConfigError(f"{source}: escalation.emergency_channel must be sms or phone")


def parse_listen(value: str) -> tuple[str, int]:
    """`HOST:PORT` (port 0: any free one) as (host, port); ValueError when it is not."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{value!r} is not HOST:PORT")
    return host.strip("[]"), int(port)
