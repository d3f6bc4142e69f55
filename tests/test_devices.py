"""The hardware layer on its own: profiles, presses and long presses, the Linux input
driver on real `input_event` bytes, the terminal's keys, what the buttons do, the
indicator's rules, and the config keys that choose all this."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from assistant.announcer import CommandFailed
from assistant.config import ConfigError, config_from_dict
from assistant.hardware import RemoteControl, hardware_from_config
from devices import hardware as hw
from devices.buttons import PressTracker
from devices.controls import Controls
from devices.evdev import (
    EV_KEY,
    KEY_HELP,
    KEY_VOLUMEUP,
    EvdevButtons,
    decode_events,
    encode_event,
    parse_keymap,
)
from devices.gpsd import GpsdLocation, fix_from_tpv
from devices.indicator import StatusLights
from devices.interfaces import ButtonEvent, DeviceError, Fix
from devices.keyboard import KeyboardButton, KeyboardButtons
from devices.leds import SysfsLeds
from devices.profiles import PHONE, SPEAKER, profile
from devices.simulated import SimulatedButtons
from devices.volume import MIN_AUDIBLE, SoftwareVolume
from protocol import Call, Location, Volume, create
from services.family.texts import where
from tests.broker import free_port
from tests.gpsd import Gpsd

EV_SYN = 0


def test_the_profiles_say_what_each_device_has() -> None:
    assert profile("phone") is PHONE and profile("speaker") is SPEAKER
    assert PHONE.has("location") and PHONE.has("calls") and PHONE.has("sos_key")
    assert not SPEAKER.has("location") and not SPEAKER.has("calls")
    assert (SPEAKER.wake_word, PHONE.wake_word) == (True, False)
    assert (SPEAKER.sos_button, PHONE.sos_button) == ("action", "sos")
    assert SPEAKER.far_field and not PHONE.far_field
    with pytest.raises(ValueError, match="one of speaker, phone"):
        profile("tablet")
    with pytest.raises(ValueError, match="unknown capability"):
        PHONE.has("teleport")
    speaker, phone = hw.simulated(SPEAKER), hw.simulated(PHONE)
    assert speaker.location is None and speaker.calls is None and speaker.notifier is None
    assert None not in (phone.location, phone.calls, phone.notifier)


def test_a_press_and_a_long_press() -> None:
    tracker = PressTracker(long_press_s=2.0, clock=lambda: 100.0)
    tracker.down("sos", at=10.0)
    tracker.down("sos", at=10.5)  # key repeat: still the first down
    tracker.up("sos", at=11.9)
    tracker.tap("action", held_s=0.1, at=20.0)
    tracker.up("volume_up", at=21.0)  # an up without a down: nothing
    assert tracker.events(now=22.0) == [ButtonEvent("sos", "press"), ButtonEvent("action", "press")]
    assert tracker.events(now=22.0) == []
    with pytest.raises(ValueError):
        PressTracker(long_press_s=0)


def test_a_long_press_is_reported_while_the_key_is_still_held_and_only_once() -> None:
    tracker = PressTracker(long_press_s=2.0)
    tracker.down("sos", at=10.0)
    assert tracker.events(now=11.0) == []
    assert tracker.events(now=12.0) == [ButtonEvent("sos", "long_press")]
    assert tracker.events(now=13.0) == []
    tracker.up("sos", at=15.0)  # let go at last: no second event
    assert tracker.events(now=16.0) == []


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "event0"
    os.mkfifo(path)
    return path


def test_evdev_reads_real_input_events(tmp_path: Path) -> None:
    path = _fifo(tmp_path)
    keys: list[ButtonEvent] = []
    writer: list[int] = []
    opened = threading.Thread(target=lambda: writer.append(os.open(path, os.O_WRONLY)))
    opened.start()
    buttons = EvdevButtons([path], long_press_s=2.0)
    opened.join(5)
    try:
        t = 1_700_000_000.25
        stream = b"".join(
            [
                encode_event(t, EV_KEY, KEY_HELP, 1),  # SOS down ...
                encode_event(t, EV_SYN, 0, 0),
                encode_event(t + 0.2, EV_KEY, KEY_HELP, 2),  # (auto-repeat)
                encode_event(t + 2.5, EV_KEY, KEY_HELP, 0),  # ... up 2.5 s later
                encode_event(t + 3.0, EV_KEY, 30, 1),  # KEY_A: not a button here
                encode_event(t + 3.0, EV_KEY, KEY_VOLUMEUP, 1),
                encode_event(t + 3.1, EV_KEY, KEY_VOLUMEUP, 0),
            ]
        )
        os.write(writer[0], stream[:37])  # split mid-event, as a read may be
        time.sleep(0.3)
        os.write(writer[0], stream[37:])
        deadline = time.monotonic() + 5
        while len(keys) < 2 and time.monotonic() < deadline:
            keys += buttons.events()
            time.sleep(0.05)
        assert keys == [ButtonEvent("sos", "long_press"), ButtonEvent("volume_up", "press")]
    finally:
        os.close(writer[0])
        buttons.close()


def test_the_input_event_layout_round_trips() -> None:
    data = encode_event(12.5, EV_KEY, KEY_HELP, 1) + b"\x00" * 5  # a torn tail is left
    assert decode_events(data) == [(12.5, EV_KEY, KEY_HELP, 1)]


def test_an_input_device_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match=r"cannot read the keys from .*missing"):
        EvdevButtons([tmp_path / "missing"])


def test_key_maps() -> None:
    keymap = parse_keymap("248:action, 59:sos")
    assert keymap[248] == "action" and keymap[59] == "sos" and keymap[KEY_HELP] == "sos"
    for bad in ("x:sos", "59:panic", "59"):
        with pytest.raises(ValueError, match="CODE:BUTTON"):
            parse_keymap(bad)


def test_the_terminal_keys() -> None:
    buttons = KeyboardButtons(io.StringIO("\nSOS\n+\n-\nhello\n"), sos_button="action")
    deadline = time.monotonic() + 5
    events: list[ButtonEvent] = []
    while len(events) < 4 and time.monotonic() < deadline:
        events += buttons.events()
        time.sleep(0.02)
    assert events == [
        ButtonEvent("action", "press"),
        ButtonEvent("action", "long_press"),  # the speaker's emergency key
        ButtonEvent("volume_up", "press"),
        ButtonEvent("volume_down", "press"),
    ]
    button = KeyboardButton(io.StringIO("\n\n"))
    time.sleep(0.2)
    assert [button.pressed(), button.pressed(), button.pressed()] == [True, True, False]


@pytest.mark.parametrize("device", [SPEAKER, PHONE])
def test_what_the_buttons_do(device) -> None:
    buttons = SimulatedButtons(long_press_s=1.0)
    volume = SoftwareVolume(0.5)
    controls = Controls(buttons, device, volume)
    buttons.press("action")
    assert controls.wake_pressed() and not controls.wake_pressed()
    buttons.press("sos", held_s=0.2)  # short: never an alert
    buttons.press("sos", held_s=1.5)
    assert controls.sos_pressed() is (device is PHONE)
    buttons.press("action", held_s=1.5)
    assert controls.sos_pressed() is (device is SPEAKER)
    assert not controls.wake_pressed()  # a long press does not also wake
    for _ in range(2):
        buttons.press("volume_up")
    buttons.press("volume_down")
    controls.poll()
    assert volume.changes == [0.6, 0.7, 0.6]


def test_an_old_press_does_not_wake_the_assistant_later() -> None:
    now = [0.0]
    buttons = SimulatedButtons()
    controls = Controls(buttons, SPEAKER, clock=lambda: now[0])
    buttons.press("action")
    controls.poll()  # seen while the assistant was busy answering
    now[0] = 10.0
    assert not controls.wake_pressed()


def test_the_volume_stays_in_range_and_reaches_the_voice() -> None:
    applied: list[float] = []
    volume = SoftwareVolume(0.3, apply=applied.append)
    volume.step(up=False)
    volume.step(up=False)
    assert volume.level == MIN_AUDIBLE  # the keys never silence it
    assert volume.set(7) == 1.0 and volume.set(-1) == 0.0  # the family may
    assert applied == [0.2, 0.2, 1.0, 0.0]


def test_device_keys_in_the_config() -> None:
    config = config_from_dict(
        {"device": {"kind": "phone", "long_press_s": 3, "keys": "59:sos", "input": ""}}
    )
    assert (config.device.kind, config.device.long_press_s) == ("phone", 3.0)
    assert config.device.location_with_alerts and config.device.location_on_request
    for bad, message in [
        ({"kind": "watch"}, "device.kind must be one of speaker, phone"),
        ({"long_press_s": 0.1}, "device.long_press_s must be 0.3..10"),
        ({"keys": "59:panic"}, "device.keys: key map entry"),
        ({"location_with_alerts": "yes"}, "device.location_with_alerts has the wrong type"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_from_dict({"device": bad})


def test_the_config_builds_the_real_drivers(tmp_path: Path) -> None:
    config = config_from_dict({"device": {"kind": "phone", "input": str(tmp_path / "none")}})
    with pytest.raises(DeviceError, match="cannot read the keys"):
        hardware_from_config(config)
    config = config_from_dict({"device": {"kind": "speaker"}, "speech": {"volume": 0.5}})
    hardware = hardware_from_config(config)
    assert hardware.buttons is None and hardware.calls is None and hardware.location is None
    hardware.volume.set(0.8)
    assert config.speech.volume == 0.8  # what the synthesizer reads at every sentence


def test_remote_commands_on_each_device() -> None:
    phone, speaker = hw.simulated(PHONE), hw.simulated(SPEAKER)
    call = create(Call(contact="Anna"), "h1", "d1")
    assert RemoteControl(phone)(call) == "Your family asked me to call Anna. Calling now."
    with pytest.raises(CommandFailed, match="no phone line"):
        RemoteControl(speaker)(call)
    phone.calls.fail = "no network"  # type: ignore[union-attr]
    with pytest.raises(CommandFailed, match="could not be started: no network"):
        RemoteControl(phone)(call)
    quieter = create(Volume(level=0.25), "h1", "d1")
    assert RemoteControl(speaker)(quieter) == "Your family set my volume to 2 out of 10."
    assert speaker.volume.level == 0.25


def test_the_familys_alert_text_gives_the_position() -> None:
    assert where(None, "en") == ""
    text = where(Location(lat=52.52, lon=13.405, accuracy_m=8.4), "en")
    assert text.startswith(" Position: 52.52000, 13.40500 (within 8 m) https://")
    assert "mlat=52.52000&mlon=13.40500" in text
    assert where(Location(lat=1.0, lon=2.0), "de").startswith(" Standort: 1.00000, 2.00000 http")


# --- the phone's position from a real gpsd ------------------------------------------------


def test_the_phones_position_comes_from_gpsd(tmp_path: Path) -> None:
    with Gpsd(tmp_path / "gpsd") as gpsd:
        location = GpsdLocation(gpsd.address, retry_s=0.2)
        try:
            time.sleep(1.0)
            assert location.fix() is None  # no sky yet: no position, no guess
            gpsd.fix = (52.5163, 13.3777)
            assert wait_until(lambda: location.fix() is not None, 20), gpsd_log(tmp_path)
            fix = location.fix()
            assert fix is not None
            assert (fix.lat, fix.lon) == (pytest.approx(52.5163), pytest.approx(13.3777))
            assert fix.accuracy_m is not None and fix.accuracy_m > 0
        finally:
            location.close()


def test_without_gpsd_there_is_no_position_and_no_crash(tmp_path: Path) -> None:
    location = GpsdLocation(f"127.0.0.1:{free_port()}", retry_s=0.1)
    time.sleep(0.5)
    assert location.fix() is None
    location.close()
    with pytest.raises(DeviceError, match="HOST:PORT"):
        GpsdLocation("gps-without-port")
    with pytest.raises(ConfigError, match=r"device\.gpsd"):
        config_from_dict({"device": {"gpsd": "localhost:99999"}})


def test_gpsd_reports_without_a_position_are_not_fixes() -> None:
    assert fix_from_tpv({"class": "TPV", "mode": 1}, 0.0) is None
    assert fix_from_tpv({"class": "SKY", "mode": 3, "lat": 1, "lon": 2}, 0.0) is None
    assert fix_from_tpv({"class": "TPV", "mode": 2, "lat": "x", "lon": 2}, 0.0) is None
    fix = fix_from_tpv({"class": "TPV", "mode": 2, "lat": 1, "lon": 2, "epx": 3, "epy": 9}, 5.0)
    assert fix == Fix(1.0, 2.0, 9.0, 5.0)


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def gpsd_log(tmp_path: Path) -> str:
    return (tmp_path / "gpsd" / "gpsd.log").read_text()


def _led_ring(directory: Path) -> Path:
    for colour in ("red", "green", "blue"):
        led = directory / f"ring:{colour}"
        led.mkdir(parents=True)
        (led / "max_brightness").write_text("255\n")
        (led / "brightness").write_text("0\n")
    return directory


def test_the_led_ring_shows_each_state_in_its_colour(tmp_path: Path) -> None:
    leds = _led_ring(tmp_path / "leds")
    lights = StatusLights(SysfsLeds("ring:red,ring:green,ring:blue", leds))

    def colour() -> tuple[int, ...]:
        return tuple(int((leds / f"ring:{c}" / "brightness").read_text()) for c in COLOURS_RGB)

    lights.activity("listening")
    assert colour() == (0, 0, 255)
    lights.alert(True)
    assert colour() == (255, 0, 0)
    lights.alert(False)
    lights.activity("idle")
    assert colour() == (0, 0, 0)
    for bad in ("ring:red,ring:green", "ring:red,ring:green,ring:nope", "../x,a,b"):
        with pytest.raises(DeviceError):
            SysfsLeds(bad, leds)


def test_a_failing_light_does_not_stop_the_assistant(tmp_path: Path) -> None:
    leds = _led_ring(tmp_path / "leds")
    ring = SysfsLeds("ring:red,ring:green,ring:blue", leds)
    shutil.rmtree(leds / "ring:blue")  # unplugged
    lights = StatusLights(ring)
    lights.activity("speaking")  # logged, not raised
    assert lights.shown == "speaking"


COLOURS_RGB = ("red", "green", "blue")
