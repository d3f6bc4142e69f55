"""The small interfaces every hardware adapter sits behind.

The assistant talks to buttons, an indicator (an LED ring or a screen's status line), a
volume control, a position source, a phone line and a vibration motor only through these,
so the same code runs on a smart speaker, a senior phone, a development machine (keyboard
and console) and in tests (`devices/simulated.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

ButtonName = Literal["action", "sos", "volume_up", "volume_down"]
PressKind = Literal["press", "long_press"]
BUTTONS: tuple[str, ...] = ("action", "sos", "volume_up", "volume_down")

# What the indicator can show; `idle` is "nothing going on" (the ring dark).
IndicatorState = Literal["idle", "listening", "thinking", "speaking", "alert", "offline"]
INDICATOR_STATES: tuple[str, ...] = (
    "idle",
    "listening",
    "thinking",
    "speaking",
    "alert",
    "offline",
)


@dataclass(frozen=True)
class ButtonEvent:
    button: str  # one of BUTTONS
    kind: str  # "press" (released before the long-press time) or "long_press"


@dataclass(frozen=True)
class Fix:
    """A position: WGS 84 degrees, the radius it is good to, and when it was taken
    (time.time())."""

    lat: float
    lon: float
    accuracy_m: float | None = None
    at: float = 0.0


class DeviceError(ValueError):
    """Hardware that cannot do what was asked (no phone line, no such input device...);
    the message says why in words a person can act on."""


class Buttons(Protocol):
    def events(self) -> list[ButtonEvent]:
        """Presses and long presses since the last call, oldest first."""
        ...

    def close(self) -> None: ...


class Indicator(Protocol):
    def show(self, state: str) -> None:
        """Show one of INDICATOR_STATES."""
        ...


class Volume(Protocol):
    @property
    def level(self) -> float:
        """0.0 (silent) .. 1.0 (loudest)."""
        ...

    def set(self, level: float) -> float:
        """Set the level (clamped to 0..1); returns the level now in force."""
        ...


class Location(Protocol):
    def fix(self) -> Fix | None:
        """The latest usable position, or None when there is none (no signal yet)."""
        ...

    def close(self) -> None: ...


class Calls(Protocol):
    def call(self, contact: str, number: str | None = None) -> None:
        """Start a call to `contact` (a name from the phone book) or to `number`;
        DeviceError when it cannot be started."""
        ...


class Notifier(Protocol):
    def vibrate(self, pattern_ms: Sequence[int]) -> None:
        """On, off, on... durations in milliseconds."""
        ...

    def notify(self, text: str) -> None:
        """Show a short text (a phone's screen); personal data: never logged."""
        ...
