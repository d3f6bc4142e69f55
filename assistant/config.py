"""Configuration: one TOML file, defaults in code, every key documented in the README.

The file is `--config PATH`, else `$XDG_CONFIG_HOME/senior-assistant/config.toml` when it exists;
state (SQLite) lives under `$XDG_STATE_HOME/senior-assistant/`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_NAME = "senior-assistant"


class ConfigError(Exception):
    """The configuration file cannot be used; the message names the file and the key."""


@dataclass
class AudioConfig:
    input_device: str | int | None = None  # None: the system default
    output_device: str | int | None = None
    sample_rate: int = 16000  # what the recognizers take
    frame_ms: int = 30  # webrtcvad accepts 10, 20 or 30 ms frames


@dataclass
class WakeConfig:
    phrase: str = "hey helper"
    # the wake network for the phrase (`senior-assistant wake-train`); empty: the one that
    # ships, for "hey helper". A phrase with no network falls back to pocketsphinx.
    model: str = ""
    # a second network for the same phrase that must agree (`wake-train --front-end pcen`);
    # with `model` only: the shipped pair has its own
    confirm_model: str = ""
    # the averaged log-odds a phrase needs, the lower of the two networks' (assistant/speech/
    # wake.py): lower catches more, and wakes by itself more. `senior-assistant eval
    # --calibrate` sets it for a false-alarm rate (README, "Wake word": the figures). 1.67:
    # calibrated to no false alarm on the whole 10 dB evaluation set (seed 12), midway
    # between its highest negative (1.298) and the lowest positive above it (2.042).
    threshold: float = 1.67
    # the same for one network alone (`model` without `confirm_model`): 2.11, the shipped
    # log-mel network's, calibrated to no false alarm on the 10 dB set (2.104)
    single_threshold: float = 2.11
    keyphrase_threshold: float = -1.7  # the same for the pocketsphinx fallback
    push_to_talk: bool = True  # the action button (Enter on a terminal) also wakes


@dataclass
class EndpointConfig:
    vad_aggressiveness: int = 2  # webrtcvad 0 (lenient) .. 3 (strict)
    speech_start_ms: int = 150  # voiced audio needed before an utterance counts as begun
    # A pause this long ends a request ("call my daughter") unless only its start was heard
    # ("call my"): the answer comes promptly. What was heard so far is checked with the
    # recognizer's grammar and the intents (assistant/endpoint.py).
    quick_end_ms: int = 300
    # A pause this long ends any utterance: the longest pause allowed mid-request, long
    # enough for a senior's pause mid-sentence ("I need ... a doctor", 1.2 s) not to cut it.
    end_silence_ms: int = 1500
    max_utterance_s: float = 12.0
    no_speech_timeout_s: float = 6.0  # after waking, give up if nothing is said
    pre_roll_ms: int = 300  # audio kept from before the start, so first syllables are not lost


@dataclass
class RecognizerConfig:
    engine: str = "pocketsphinx"  # or "vosk"
    vosk_model: str = "vosk-model-small-en-us-0.15"  # a manifest name or a folder
    use_grammar: bool = True  # constrain recognition to what the intents understand


@dataclass
class SpeechOutputConfig:
    rate_wpm: int = 140  # espeak-ng's default of 175-200 is too fast for many older listeners
    volume: float = 1.0  # 0.0 .. 1.0
    voice: str = ""  # an espeak-ng voice id; empty: the engine's default


@dataclass
class PathsConfig:
    models_dir: str = ""  # empty: the project's models/ folder (or $SENIOR_ASSISTANT_MODELS_DIR)
    state_dir: str = ""  # empty: $XDG_STATE_HOME/senior-assistant


@dataclass
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    username: str = ""  # empty: connect without credentials
    password: str = ""
    tls_ca: str = ""  # a CA certificate file; set: TLS on
    tls_cert: str = ""  # a client certificate file, for brokers that ask for one
    tls_key: str = ""  # its private key, when not inside tls_cert
    keepalive_s: int = 30  # a silent connection is given up within about twice this
    session_expiry_s: int = 7 * 24 * 3600  # the broker keeps subscriptions and queued commands
    reconnect_min_s: float = 1.0  # the first wait after a lost connection, doubled per failure
    # the longest wait between attempts: an alert raised as the network comes back waits
    # for the next attempt (paho cannot be woken early): 60 s made it wait 52 s in a test
    reconnect_max_s: float = 10.0


def default_device_id() -> str:
    """The host name as a topic-safe id (letters, digits, `_`, `.`, `-`), else "device-1"."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", socket.gethostname()).strip("-_.")[:64]
    return name or "device-1"


@dataclass
class DeviceConfig:
    household: str = "demo"  # the household's id, shared with the backends
    device_id: str = ""  # empty: default_device_id(), the host name
    kind: str = "speaker"  # the hardware profile, devices/profiles.py: speaker or phone
    long_press_s: float = 2.0  # a key held this long is a long press (the emergency key)
    input: str = ""  # evdev key files, comma-separated; empty: the terminal's keys
    keys: str = ""  # key code → button entries over the defaults: "164:action,138:sos"
    location_with_alerts: bool = True  # the senior's consent: an alert carries the position
    location_on_request: bool = True  # "share my location" sends the position
    gpsd: str = "127.0.0.1:2947"  # a phone's position: the gpsd daemon, HOST:PORT
    leds: str = ""  # an LED ring's red,green,blue LEDs in /sys/class/leds; empty: the log


@dataclass
class RemindersConfig:
    repeat_every_min: float = 10.0  # an unanswered reminder is said again after this long
    repeats: int = 3  # times it is said before the family service is told it was missed
    catch_up_min: float = 120.0  # one that fell due while the device was off: said late
    #                              up to this long after its time, else reported missed


@dataclass
class CareConfig:
    check_in_at: str = "09:00"  # the morning greeting(s), "HH:MM[,HH:MM]"; "" for none
    inactivity_hours: float = 12.0  # no interaction this long: the family is told; 0: off


@dataclass
class Config:
    language: str = "en"
    timezone: str = ""  # the household's IANA time zone (reminders); "": this machine's
    audio: AudioConfig = field(default_factory=AudioConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    recognizer: RecognizerConfig = field(default_factory=RecognizerConfig)
    speech: SpeechOutputConfig = field(default_factory=SpeechOutputConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig)
    care: CareConfig = field(default_factory=CareConfig)

    def check_in_times(self) -> list[str]:
        return [at.strip() for at in self.care.check_in_at.split(",") if at.strip()]

    def state_dir(self) -> Path:
        if self.paths.state_dir:
            return Path(self.paths.state_dir).expanduser()
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / APP_NAME


def cache_dir() -> Path:
    """Where what can be made again is kept ($XDG_CACHE_HOME/senior-assistant)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / APP_NAME


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_NAME / "config.toml"


def load_config(path: str | Path | None = None) -> Config:
    """Read the TOML file (explicit path must exist; the default one may be absent)."""
    if path is None:
        candidate = default_config_path()
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> Config:
    config = _build(Config, raw, source, prefix="")
    _check_ranges(config, source)
    return config


RECOGNIZER_ENGINES = ("pocketsphinx", "vosk")


def _check_ranges(config: Config, source: str) -> None:
    problems = []
    if config.audio.frame_ms not in (10, 20, 30):
        problems.append("audio.frame_ms must be 10, 20 or 30")
    if config.audio.sample_rate not in (8000, 16000, 32000, 48000):
        problems.append("audio.sample_rate must be 8000, 16000, 32000 or 48000")
    if not 0 <= config.endpoint.vad_aggressiveness <= 3:
        problems.append("endpoint.vad_aggressiveness must be 0..3")
    if config.endpoint.end_silence_ms < config.audio.frame_ms:
        problems.append("endpoint.end_silence_ms must be at least one frame")
    if not config.audio.frame_ms <= config.endpoint.quick_end_ms <= config.endpoint.end_silence_ms:
        problems.append("endpoint.quick_end_ms must be one frame .. endpoint.end_silence_ms")
    if config.endpoint.max_utterance_s <= 0 or config.endpoint.no_speech_timeout_s <= 0:
        problems.append("endpoint timeouts must be positive")
    if config.recognizer.engine not in RECOGNIZER_ENGINES:
        problems.append(f"recognizer.engine must be one of {', '.join(RECOGNIZER_ENGINES)}")
    if not 0.0 <= config.speech.volume <= 1.0:
        problems.append("speech.volume must be between 0.0 and 1.0")
    if not 60 <= config.speech.rate_wpm <= 400:
        problems.append("speech.rate_wpm must be between 60 and 400")
    if not config.wake.phrase.strip():
        problems.append("wake.phrase must not be empty")
    problems.extend(_mqtt_problems(config.mqtt, config.device))
    problems.extend(_care_problems(config))
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def _mqtt_problems(mqtt: MqttConfig, device: DeviceConfig) -> list[str]:
    from protocol.topics import valid_id

    problems = []
    if not mqtt.host.strip():
        problems.append("mqtt.host must not be empty")
    if not 1 <= mqtt.port <= 65535:
        problems.append("mqtt.port must be 1..65535")
    if not 1 <= mqtt.keepalive_s <= 65535:  # 0 would never notice a dead connection
        problems.append("mqtt.keepalive_s must be 1..65535")
    if not 60 <= mqtt.session_expiry_s <= 0xFFFFFFFF:
        problems.append("mqtt.session_expiry_s must be at least 60 (and below 2^32)")
    if not 0 < mqtt.reconnect_min_s <= mqtt.reconnect_max_s <= 3600:
        problems.append("mqtt.reconnect_min_s/reconnect_max_s must be 0 < min <= max <= 3600")
    if mqtt.password and not mqtt.username:
        problems.append("mqtt.password needs mqtt.username")
    if mqtt.tls_key and not mqtt.tls_cert:
        problems.append("mqtt.tls_key needs mqtt.tls_cert")
    if (mqtt.tls_cert or mqtt.tls_key) and not mqtt.tls_ca:
        problems.append("mqtt.tls_cert and mqtt.tls_key need mqtt.tls_ca (TLS on)")
    if not valid_id(device.household):
        problems.append("device.household must be 1-64 letters, digits, '_', '.' or '-'")
    if device.device_id and not valid_id(device.device_id):
        problems.append("device.device_id must be 1-64 letters, digits, '_', '.' or '-'")
    problems.extend(_device_problems(device))
    return problems


def _device_problems(device: DeviceConfig) -> list[str]:
    from devices.evdev import parse_keymap
    from devices.gpsd import parse_address
    from devices.profiles import PROFILES

    problems = []
    if device.kind not in PROFILES:
        problems.append(f"device.kind must be one of {', '.join(PROFILES)}")
    if not 0.3 <= device.long_press_s <= 10.0:
        problems.append("device.long_press_s must be 0.3..10 seconds")
    try:
        parse_keymap(device.keys)
    except ValueError as exc:
        problems.append(f"device.keys: {exc}")
    try:
        parse_address(device.gpsd)
    except ValueError as exc:
        problems.append(f"device.gpsd: {exc}")
    return problems


def _care_problems(config: Config) -> list[str]:
    from assistant.schedule import ScheduleError, parse_clock, time_zone

    problems = []
    try:
        time_zone(config.timezone)
    except ScheduleError as exc:
        problems.append(f"timezone: {exc}")
    for at in config.check_in_times():
        try:
            parse_clock(at)
        except ScheduleError:
            problems.append(f"care.check_in_at: {at!r} is not a time HH:MM")
    if config.reminders.repeat_every_min <= 0 or config.reminders.catch_up_min < 0:
        problems.append("reminders.repeat_every_min must be positive, catch_up_min not negative")
    if not 1 <= config.reminders.repeats <= 10:
        problems.append("reminders.repeats must be 1..10")
    if config.care.inactivity_hours < 0:
        problems.append("care.inactivity_hours must not be negative")
    return problems


def _build(cls: type, raw: dict[str, Any], source: str, prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        names = ", ".join(prefix + k for k in unknown)
        raise ConfigError(f"{source}: unknown key(s) {names}")
    defaults = cls()
    values: dict[str, Any] = {}
    for name, value in raw.items():
        default = getattr(defaults, name)
        key = prefix + name
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: [{key}] must be a table")
            values[name] = _build(type(default), value, source, prefix=key + ".")
        else:
            values[name] = _check_type(key, value, default, source)
    return cls(**values)


def _check_type(key: str, value: Any, default: Any, source: str) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:  # device choices: a name, an index, or absent
        ok = isinstance(value, str | int) and not isinstance(value, bool)
    if not ok:
        raise ConfigError(f"{source}: {key} has the wrong type ({type(value).__name__})")
    return value
