"""Real keys through the Linux input layer: `/dev/input/event*` read with the standard
library (the `input_event` struct), no extra package.

Each file is read by a thread of its own; key downs and ups go to a PressTracker, which
turns them into presses and long presses. The kernel's timestamps measure how long a key
was held, so a press is timed right even when the reader was busy for a moment.

Which key is which button is a key map, code → button; the default knows the usual codes
(`linux/input-event-codes.h`) of an action button (play/pause, Enter), the volume keys and
an SOS key (KEY_HELP), and `device.keys` in the config adds or replaces entries
("164:action,138:sos").
"""

from __future__ import annotations

import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from devices.buttons import DEFAULT_LONG_PRESS_S, PressTracker
from devices.interfaces import BUTTONS, ButtonEvent, DeviceError

log = logging.getLogger(__name__)

# struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; }
EVENT = struct.Struct("llHHi")
EV_KEY = 0x01
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2

KEY_ENTER = 28
KEY_VOLUMEDOWN = 114
KEY_VOLUMEUP = 115
KEY_HELP = 138
KEY_PLAYPAUSE = 164
DEFAULT_KEYMAP: dict[int, str] = {
    KEY_PLAYPAUSE: "action",
    KEY_ENTER: "action",
    KEY_VOLUMEUP: "volume_up",
    KEY_VOLUMEDOWN: "volume_down",
    KEY_HELP: "sos",
}
_POLL_S = 0.2


def parse_keymap(text: str, base: dict[int, str] | None = None) -> dict[int, str]:
    """ "164:action,138:sos" → {164: "action", 138: "sos"} over `base`; ValueError with
    the entry that is wrong."""
    keymap = dict(DEFAULT_KEYMAP if base is None else base)
    for entry in filter(None, (e.strip() for e in text.split(","))):
        code, _, button = entry.partition(":")
        if not code.strip().isdigit() or button.strip() not in BUTTONS:
            raise ValueError(f"key map entry {entry!r}: CODE:BUTTON, BUTTON one of "
                             f"{', '.join(BUTTONS)}")  # fmt: skip
        keymap[int(code)] = button.strip()
    return keymap


def decode_events(data: bytes) -> list[tuple[float, int, int, int]]:
    """Whole `input_event`s in `data` as (timestamp, type, code, value)."""
    out = []
    for offset in range(0, len(data) - EVENT.size + 1, EVENT.size):
        sec, usec, kind, code, value = EVENT.unpack_from(data, offset)
        out.append((sec + usec / 1e6, kind, code, value))
    return out


def encode_event(timestamp: float, kind: int, code: int, value: int) -> bytes:
    """One `input_event` as the kernel writes it (tests, and replaying recordings)."""
    sec = int(timestamp)
    return EVENT.pack(sec, round((timestamp - sec) * 1e6), kind, code, value)


class EvdevButtons:
    """Buttons read from input event files (`/dev/input/event3`, or a FIFO in tests)."""

    def __init__(
        self,
        paths: Iterable[str | Path],
        keymap: dict[int, str] | None = None,
        long_press_s: float = DEFAULT_LONG_PRESS_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keymap = dict(DEFAULT_KEYMAP if keymap is None else keymap)
        self.tracker = PressTracker(long_press_s, clock)
        self._clock = clock
        self._stop = threading.Event()
        self._fds: list[int] = []
        self._threads: list[threading.Thread] = []
        for path in paths:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                self.close()
                raise DeviceError(
                    f"cannot read the keys from {path}: {exc.strerror} (is the user in the "
                    "'input' group?)"
                ) from None
            self._fds.append(fd)
            thread = threading.Thread(target=self._read, args=(fd, str(path)), daemon=True)
            thread.name = f"evdev-{Path(path).name}"
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def events(self) -> list[ButtonEvent]:
        return self.tracker.events()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2 * _POLL_S + 1)
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def _read(self, fd: int, path: str) -> None:
        offset: float | None = None  # kernel time → our clock
        rest = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([fd], [], [], _POLL_S)
            if not ready:
                continue
            try:
                data = os.read(fd, EVENT.size * 64)
            except BlockingIOError:
                continue
            except OSError as exc:  # unplugged
                log.warning("input device %s went away: %s", path, exc.strerror)
                return
            if not data:  # a FIFO whose writer closed: wait for the next one
                time.sleep(_POLL_S)
                continue
            data, rest = rest + data, b""
            whole = len(data) - len(data) % EVENT.size
            data, rest = data[:whole], data[whole:]
            for stamp, kind, code, value in decode_events(data):
                if kind != EV_KEY or code not in self.keymap:
                    continue
                if offset is None:
                    offset = self._clock() - stamp
                button, at = self.keymap[code], stamp + offset
                if value == KEY_DOWN:
                    self.tracker.down(button, at)
                elif value == KEY_UP:
                    self.tracker.up(button, at)
