"""One device's hardware, put together from its profile: the parts it has, each behind its
interface (`devices/interfaces.py`), real drivers or simulated ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devices.buttons import DEFAULT_LONG_PRESS_S
from devices.controls import Controls
from devices.indicator import ConsoleIndicator, StatusLights
from devices.interfaces import Buttons, Calls, Indicator, Location, Notifier
from devices.profiles import Profile
from devices.simulated import (
    RecordingCalls,
    RecordingIndicator,
    RecordingNotifier,
    SimulatedButtons,
    SimulatedGps,
)
from devices.volume import SoftwareVolume


@dataclass
class Hardware:
    profile: Profile
    lights: StatusLights
    volume: SoftwareVolume
    buttons: Buttons | None = None
    location: Location | None = None  # None: the device cannot tell where it is
    calls: Calls | None = None  # None: no phone line
    notifier: Notifier | None = None  # None: no vibration or screen
    controls: Controls | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.buttons is not None:
            self.controls = Controls(self.buttons, self.profile, self.volume)

    def close(self) -> None:
        if self.buttons is not None:
            self.buttons.close()
        if self.location is not None:
            self.location.close()


def simulated(profile: Profile, long_press_s: float = DEFAULT_LONG_PRESS_S) -> Hardware:
    """Every part the profile has, simulated: the test presses keys and reads the rest."""
    has = profile.has
    return Hardware(
        profile=profile,
        lights=StatusLights(RecordingIndicator()),
        volume=SoftwareVolume(profile.volume),
        buttons=SimulatedButtons(long_press_s),
        location=SimulatedGps() if has("location") else None,
        calls=RecordingCalls() if has("calls") else None,
        notifier=RecordingNotifier() if has("vibration") or has("screen") else None,
    )


def build(
    profile: Profile,
    *,
    volume: float,
    apply_volume: Callable[[float], None] | None = None,
    input_paths: Sequence[str | Path] = (),
    keymap: dict[int, str] | None = None,
    long_press_s: float = DEFAULT_LONG_PRESS_S,
    terminal_keys: bool = False,
    location: Location | None = None,
    calls: Calls | None = None,
    notifier: Notifier | None = None,
    indicator: Indicator | None = None,
) -> Hardware:
    """Real drivers: keys from `input_paths` (evdev), else from the terminal when
    `terminal_keys`, else none; the indicator on the console unless one is given."""
    buttons: Buttons | None = None
    if input_paths:
        from devices.evdev import EvdevButtons

        buttons = EvdevButtons(input_paths, keymap, long_press_s)
    elif terminal_keys:
        from devices.keyboard import KeyboardButtons

        buttons = KeyboardButtons(sos_button=profile.sos_button)
    return Hardware(
        profile=profile,
        lights=StatusLights(indicator or ConsoleIndicator()),
        volume=SoftwareVolume(volume, apply_volume),
        buttons=buttons,
        location=location if profile.has("location") else None,
        calls=calls if profile.has("calls") else None,
        notifier=notifier,
    )
