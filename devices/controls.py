"""The buttons as the assistant uses them: which press wakes it, which long press is an
emergency, and the volume keys (handled here, at once).

On a speaker the action button wakes it and a long press of the same button raises an
emergency (it has no SOS key); on a phone the SOS key's long press does, and a short press
of it is ignored (a phone in a bag must not call for help by itself).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from devices.interfaces import Buttons
from devices.profiles import Profile
from devices.volume import SoftwareVolume

WAKE_VALID_S = 2.0  # a press not taken up by the loop within this is forgotten


class Controls:
    def __init__(
        self,
        buttons: Buttons,
        profile: Profile,
        volume: SoftwareVolume | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.buttons = buttons
        self.profile = profile
        self.volume = volume
        self.clock = clock
        self._lock = threading.Lock()
        self._wakes: list[float] = []
        self._sos = 0

    def poll(self) -> None:
        now = self.clock()
        for event in self.buttons.events():
            with self._lock:
                if event.button == self.profile.sos_button and event.kind == "long_press":
                    self._sos += 1
                elif event.button == "action" and event.kind == "press":
                    if self.profile.push_to_talk:
                        self._wakes.append(now)
                elif event.button in ("volume_up", "volume_down") and self.volume is not None:
                    self.volume.step(up=event.button == "volume_up")

    def wake_pressed(self) -> bool:
        """True once per press of the action button (the loop's push-to-talk)."""
        self.poll()
        now = self.clock()
        with self._lock:
            self._wakes = [t for t in self._wakes if now - t <= WAKE_VALID_S]
            if self._wakes:
                self._wakes.pop(0)
                return True
            return False

    def sos_pressed(self) -> bool:
        """True once per long press of the emergency key."""
        self.poll()
        with self._lock:
            if self._sos:
                self._sos -= 1
                return True
            return False
