"""The dialog's actions and the family's commands on this device's hardware
(devices/): the emergency with its position, volume, calls and location sharing.

Location and consent: the position is the senior's personal data, so whether it leaves the
device is the senior's choice, made where the data is - the device's config,
`device.location_with_alerts` (an alert carries the position) and
`device.location_on_request` ("share my location with my daughter" sends it). Both are on
by default, as most families set such a phone up to be found. With a choice off, nothing
about the position leaves the device and the senior is told so when they ask.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from assistant.actions import ALL_FAMILY, ActionHandler, message_body
from assistant.announcer import Announcer, CommandFailed
from assistant.config import Config
from assistant.dialog import Action
from assistant.emergency import Emergencies
from assistant.replies import relation
from devices import hardware as hw
from devices.evdev import parse_keymap
from devices.gpsd import GpsdLocation
from devices.hardware import Hardware
from devices.interfaces import DeviceError, Fix
from devices.leds import SysfsLeds
from devices.profiles import profile
from protocol import Call, FamilyMessage, Location, Message, Volume

log = logging.getLogger(__name__)

NO_POSITION = "I could not find out where you are just now, so I could not share it."
SHARING_OFF = "Sharing where you are is switched off on this device."
HERE_I_AM = "Here is where I am."
CALL_FAILED = "Sorry, the call did not go through. I have asked {who} to call you back."


def location_of(fix: Fix | None) -> Location | None:
    if fix is None:
        return None
    return Location(lat=fix.lat, lon=fix.lon, accuracy_m=fix.accuracy_m)


def hardware_from_config(config: Config, *, terminal_keys: bool = False) -> Hardware:
    """The real drivers for this device's kind: evdev keys from `device.input`, else the
    terminal's keys (when `terminal_keys`); the assistant's own voice as its volume; a
    phone's position from gpsd (`device.gpsd`); an LED ring (`device.leds`) or the log."""
    kind = profile(config.device.kind)
    paths = [p.strip() for p in config.device.input.split(",") if p.strip()]
    indicator = SysfsLeds(config.device.leds) if config.device.leds else None
    location = GpsdLocation(config.device.gpsd) if kind.has("location") else None

    def apply_volume(level: float) -> None:
        config.speech.volume = level  # the synthesizer reads it at every sentence

    try:
        return hw.build(
            kind,
            volume=config.speech.volume,
            apply_volume=apply_volume,
            input_paths=paths,
            keymap=parse_keymap(config.device.keys),
            long_press_s=config.device.long_press_s,
            terminal_keys=terminal_keys,
            location=location,
            indicator=indicator,
        )
    except DeviceError:
        if location is not None:
            location.close()
        raise


class DeviceActions:
    """What the dialog's actions do on this hardware; everything else goes on to the
    ActionHandler (messages to the services)."""

    def __init__(
        self,
        handler: ActionHandler,
        hardware: Hardware,
        emergencies: Emergencies,
        announcer: Announcer,
        *,
        location_with_alerts: bool = True,
        location_on_request: bool = True,
    ) -> None:
        self.handler = handler
        self.hardware = hardware
        self.emergencies = emergencies
        self.announcer = announcer
        self.location_with_alerts = location_with_alerts
        self.location_on_request = location_on_request
        self.sent = handler.sent

    def __call__(self, action: Action, said: str | None = None) -> Message | None:
        kind = action.kind
        if kind == "emergency":
            return self._emergency(action, said)
        if kind in ("volume_up", "volume_down"):
            level = self.hardware.volume.step(up=kind == "volume_up")
            log.info("volume %.1f", level)
            return None
        if kind == "call_family" and self.hardware.calls is not None:
            return self._call(action, said)
        if kind == "share_location" and not self.location_on_request:
            self.announcer.queue(SHARING_OFF)
            return None
        if kind == "share_location" and self.hardware.location is not None:
            return self._share_location(action)
        return self.handler(action, said)

    def _call(self, action: Action, said: str | None) -> Message | None:
        """A phone calls; when the call cannot be started, the family is asked to call
        back instead, and the senior hears so."""
        assert self.hardware.calls is not None
        contact = action.slots.get("contact", ALL_FAMILY)
        try:
            self.hardware.calls.call(contact)
            return None
        except DeviceError as exc:
            log.warning("the call could not be started: %s", exc)
        self.announcer.queue(CALL_FAILED.format(who=relation(action.slots)), urgent=True)
        return self.handler(action, said)

    def _fix(self) -> Location | None:
        if self.hardware.location is None:
            return None
        return location_of(self.hardware.location.fix())

    def _emergency(self, action: Action, said: str | None) -> Message | None:
        body = message_body(action, said)
        if self.location_with_alerts:
            body = dataclasses.replace(body, location=self._fix())
        message = self.handler.send(body)
        self.emergencies.raised(message)
        return message

    def _share_location(self, action: Action) -> Message | None:
        to = action.slots.get("contact", ALL_FAMILY)
        where = self._fix()
        if where is None:
            self.announcer.queue(NO_POSITION)
            return None
        return self.handler.send(FamilyMessage(to=to, text=HERE_I_AM, location=where))


class RemoteControl:
    """The family's hardware commands (`command.volume`, `command.call`), for the
    Announcer's `on_command`: carried out, and what the senior hears about it returned."""

    def __init__(self, hardware: Hardware) -> None:
        self.hardware = hardware

    def __call__(self, message: Message) -> str:
        body: Any = message.body
        if isinstance(body, Volume):
            level = self.hardware.volume.set(body.level)
            log.info("volume set to %.1f from afar", level)
            return f"Your family set my volume to {round(level * 10)} out of 10."
        if isinstance(body, Call):
            if self.hardware.calls is None:
                raise CommandFailed("this device has no phone line")
            try:
                self.hardware.calls.call(body.contact, body.number)
            except DeviceError as exc:
                raise CommandFailed(f"the call could not be started: {exc}") from None
            return f"Your family asked me to call {body.contact}. Calling now."
        raise CommandFailed(f"{message.type} is not a hardware command")
