"""An LED ring through the Linux LED class: `/sys/class/leds/<name>/brightness`.

A ring's controller shows up as three LEDs, red, green and blue (`device.leds`, their
names, e.g. "ring:red,ring:green,ring:blue"); each indicator state is a colour:

| state     | colour                  |
|-----------|-------------------------|
| idle      | off                     |
| listening | blue                    |
| thinking  | cyan                    |
| speaking  | white                   |
| alert     | red                     |
| offline   | amber (dim)             |
"""

from __future__ import annotations

from pathlib import Path

from devices.interfaces import INDICATOR_STATES, DeviceError

LEDS_DIR = Path("/sys/class/leds")
COLOURS: dict[str, tuple[float, float, float]] = {
    "idle": (0.0, 0.0, 0.0),
    "listening": (0.0, 0.0, 1.0),
    "thinking": (0.0, 0.6, 1.0),
    "speaking": (1.0, 1.0, 1.0),
    "alert": (1.0, 0.0, 0.0),
    "offline": (0.3, 0.15, 0.0),
}
assert set(COLOURS) == set(INDICATOR_STATES)


class SysfsLeds:
    def __init__(self, names: str, directory: Path = LEDS_DIR) -> None:
        """`names`: "RED,GREEN,BLUE", the LEDs' names under `directory`."""
        parts = [n.strip() for n in names.split(",")]
        if len(parts) != 3 or not all(parts) or any("/" in n for n in parts):
            raise DeviceError(f"device.leds {names!r}: three LED names, red,green,blue")
        self._leds: list[tuple[Path, int]] = []
        for name in parts:
            led = directory / name
            try:
                highest = int((led / "max_brightness").read_text().strip() or 0)
            except (OSError, ValueError):
                raise DeviceError(f"no usable LED {name!r} in {directory}") from None
            self._leds.append((led / "brightness", highest))

    def show(self, state: str) -> None:
        if state not in COLOURS:
            raise ValueError(f"unknown indicator state {state!r}")
        for (path, highest), share in zip(self._leds, COLOURS[state], strict=True):
            try:
                path.write_text(str(round(share * highest)))
            except OSError as exc:  # the light is a nicety: the assistant goes on without it
                raise DeviceError(f"cannot set {path}: {exc.strerror}") from None
