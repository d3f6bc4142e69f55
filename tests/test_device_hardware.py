"""Both hardware profiles end to end through their adapters (simulated drivers behind the
real interfaces), the real speech loop, a real Mosquitto and, for the family's remote
commands, the real `family-notify serve`.

What issue 8 asks to see: the SOS long press and the spoken "I fell" each make one alert,
with the position on the phone and without on the speaker; with the broker down the alert
waits, the senior is told so, and it goes out when the link is back; the family's "say"
and volume commands work from the household and are refused from another one; the
indicator passes through its states in order."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from assistant import replies
from assistant.config import Config, EndpointConfig, SpeechOutputConfig
from assistant.device import Device
from assistant.dialog import Action
from assistant.emergency import QUEUED, SENT
from assistant.endpoint import frames_of
from assistant.loop import Assistant
from assistant.speech.tts import SpeechSynthesizer
from assistant.voice import Voice, WavRecorder
from devices import hardware as hw
from devices.indicator import StatusLights
from devices.profiles import PHONE, SPEAKER
from devices.simulated import RecordingIndicator, SimulatedGps
from protocol import AlertAck, Call, CommandDone, Say, Volume, create, encode
from tests.backend import Backend
from tests.broker import Mosquitto
from tests.family_process import (
    FAMILY,
    FamilyWorker,
    Household,
    MemberSpec,
    apps_standin,
    setup_household,
    write_config,
)
from tests.test_device import D, H, device_config, wait_for

PROFILES = {"speaker": SPEAKER, "phone": PHONE}
LONG_PRESS_S = 1.0


@pytest.fixture(scope="module")
def synthesizer() -> SpeechSynthesizer:
    return SpeechSynthesizer(SpeechOutputConfig())


def make_device(config, kind: str) -> tuple[Device, hw.Hardware]:
    hardware = hw.simulated(PROFILES[kind], long_press_s=LONG_PRESS_S)
    return Device(config, hardware=hardware), hardware


def make_assistant(
    device: Device, engine, synthesizer, path: Path, said: list[str], recognizer=None
) -> Assistant:
    assistant = Assistant(
        engine,
        Voice(synthesizer, WavRecorder(path)),
        recognizer=recognizer,
        endpoint=EndpointConfig(),
        on_action=device.actions,
        announcer=device.announcer,
        routines=device.routines,
        on_say=said.append,
        indicator=device.hardware.lights.activity,
    )
    assistant.dialog.phone_line = device.hardware.calls is not None  # as `run` sets it
    return assistant


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(16000 * seconds), np.int16)


def states(hardware: hw.Hardware) -> list[str]:
    indicator = hardware.lights.indicator
    assert isinstance(indicator, RecordingIndicator)
    return indicator.states


def the_alert(backend: Backend):
    assert backend.wait_until(lambda: backend.ids("alert.emergency"), timeout=15)
    [alert] = [m for m in backend.handled if m.type == "alert.emergency"]
    return alert


def check_location(alert, kind: str) -> None:
    if kind == "phone":
        gps = SimulatedGps()
        assert alert.body.location is not None
        assert (alert.body.location.lat, alert.body.location.lon) == (
            gps.position.lat,
            gps.position.lon,
        )
        assert alert.body.location.accuracy_m == gps.position.accuracy_m
    else:
        assert alert.body.location is None


@contextlib.contextmanager
def sos_pressed(kind: str, held_s: float, listen_s: float, broker, tmp_path: Path, speech):
    """The SOS key held `held_s`, then `listen_s` of quiet through the loop: (the turns,
    the backend that heard the device, the hardware), the device still running."""
    engine, synthesizer, recognizer = speech
    device, hardware = make_device(device_config(broker, tmp_path), kind)
    with Backend(broker, household=H) as backend, device:
        assert device.link is not None and device.link.wait_connected(10)
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", [],
                                   recognizer)  # fmt: skip
        controls = hardware.controls
        assert controls is not None
        hardware.buttons.press(PROFILES[kind].sos_button, held_s=held_s)  # type: ignore[union-attr]
        frames = frames_of(silence(listen_s))
        yield (
            list(assistant.listen(frames, button=controls.wake_pressed, sos=controls.sos_pressed)),
            backend,
            hardware,
        )


@pytest.mark.parametrize("kind", ["speaker", "phone"])
def test_a_long_press_of_the_sos_key_sends_one_alert_and_keeps_listening(
    kind: str, broker: Mosquitto, engine, command_recognizer, synthesizer, tmp_path: Path
) -> None:
    speech = (engine, synthesizer, command_recognizer)
    with sos_pressed(kind, LONG_PRESS_S + 0.5, 8.0, broker, tmp_path, speech) as pressed:
        turns, backend, hardware = pressed
        alert = the_alert(backend)
        assert (alert.body.trigger, alert.body.said) == ("sos_button", None)
        check_location(alert, kind)
        # The reassurance, then the assistant listened on without waking: silence there is
        # answered, and no second alert goes out.
        assert turns[0].reply == replies.EMERGENCY_SENT["help"]
        assert turns[1].end_reason == "no_speech" and turns[1].reply == replies.STILL_HERE
        assert len(backend.ids("alert.emergency")) == 1
        assert "alert" in states(hardware)
        if kind == "phone":  # it vibrates too
            assert hardware.notifier.vibrations  # type: ignore[union-attr]


def test_after_a_restart_an_unanswered_alert_is_told_of_and_listened_on_without_waking(
    broker: Mosquitto, engine, command_recognizer, synthesizer, tmp_path: Path, capsys
) -> None:
    """The power went during an emergency nobody has answered yet. At the next start the
    device sends it again, tells the senior so, and listens without the wake phrase, as it
    did right after the alert: silence is answered."""
    from assistant.cli import _resume

    config = device_config(broker, tmp_path)
    device, _ = make_device(config, "speaker")
    with device:
        assert device.link is not None and device.link.wait_connected(10)
        device.actions(Action("emergency", {"kind": "fall"}))
        assert device.emergencies.unanswered is not None
        assert len(device.emergencies.unanswered) == 1
    device, hardware = make_device(config, "speaker")
    with device:
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", [],
                                   command_recognizer)  # fmt: skip
        _resume(assistant, device, None)
        assert f"reply: {replies.STILL_WAITING}" in capsys.readouterr().out
        controls = hardware.controls
        assert controls is not None
        turns = list(assistant.listen(frames_of(silence(6.0)), button=controls.wake_pressed))
        assert [t.reply for t in turns] == [replies.STILL_HERE]  # listened, no wake needed
        assert turns[0].end_reason == "no_speech"
        assert "alert" in states(hardware)  # the light is on again
    # without an unanswered alert, the same start waits for the wake phrase or the button
    device, hardware = make_device(device_config(broker, tmp_path / "calm"), "speaker")
    with device:
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", [],
                                   command_recognizer)  # fmt: skip
        _resume(assistant, device, None)
        assert "reply:" not in capsys.readouterr().out
        controls = hardware.controls
        assert controls is not None
        assert list(assistant.listen(frames_of(silence(6.0)), button=controls.wake_pressed)) == []


@pytest.mark.parametrize("kind", ["speaker", "phone"])
def test_a_short_press_of_the_sos_key_sends_nothing(
    kind: str, broker: Mosquitto, engine, command_recognizer, synthesizer, tmp_path: Path
) -> None:
    speech = (engine, synthesizer, command_recognizer)
    with sos_pressed(kind, 0.2, 3.0, broker, tmp_path, speech) as (turns, backend, _):
        assert all(not t.actions for t in turns)
        assert not backend.wait_until(lambda: backend.ids("alert."), timeout=1.5)


@pytest.mark.parametrize("kind", ["speaker", "phone"])
def test_a_spoken_i_fell_sends_one_alert_with_the_position_only_on_the_phone(
    kind: str,
    broker: Mosquitto,
    speech,
    engine,
    command_recognizer,
    synthesizer,
    tmp_path: Path,
) -> None:
    said: list[str] = []
    device, _hardware = make_device(device_config(broker, tmp_path), kind)
    samples = speech.samples(speech.flite("help, I fell.", "rms"), tail_s=8.0)
    with Backend(broker, household=H) as backend, device:
        assert device.link is not None and device.link.wait_connected(10)
        assistant = make_assistant(
            device, engine, synthesizer, tmp_path / "said.wav", said, command_recognizer
        )
        turns = list(assistant.listen(frames_of(samples), wake_required=False))
        assert turns[0].intent == "emergency" and turns[0].slots == {"kind": "fall"}
        alert = the_alert(backend)
        assert alert.body.trigger == "voice" and alert.body.kind == "fall"
        assert "fell" in (alert.body.said or "")
        check_location(alert, kind)
        assert len(backend.ids("alert.emergency")) == 1


def test_help_said_twice_is_an_emergency(broker: Mosquitto, engine, synthesizer, tmp_path) -> None:
    said: list[str] = []
    device, _hardware = make_device(device_config(broker, tmp_path), "phone")
    with Backend(broker, household=H) as backend, device:
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", said)
        first = assistant.respond("help")
        assert first.actions == [] and first.reply == replies.EMERGENCY_CHECK
        assistant.respond("help")
        alert = the_alert(backend)
        assert alert.body.location is not None
        assistant.respond("no")  # leaves the after-alert listening
        assert [a.kind for a in assistant.respond("help help").actions] == ["emergency"]
        assert backend.wait_until(lambda: len(backend.ids("alert.emergency")) == 2)


@pytest.mark.parametrize("kind", ["speaker", "phone"])
def test_call_my_daughter_calls_from_the_phone_and_asks_back_from_the_speaker(
    kind: str, broker: Mosquitto, engine, synthesizer, tmp_path: Path
) -> None:
    said: list[str] = []
    device, hardware = make_device(device_config(broker, tmp_path), kind)
    with Backend(broker, household=H) as backend, device:
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", said)
        assert assistant.respond("call my daughter").reply == "Shall I call your daughter?"
        turn = assistant.respond("yes")
        if kind == "phone":
            assert turn.reply == "Calling your daughter now."
            assert hardware.calls.calls == [("daughter", None)]  # type: ignore[union-attr]
            assert not backend.wait_until(lambda: backend.ids("family."), timeout=1.0)
            # The network refuses the call: the family is asked to call back instead.
            hardware.calls.fail = "no signal"  # type: ignore[union-attr]
            assistant.respond("call my son")
            assistant.respond("yes")
            assistant.speak_pending()
            assert said == [
                "Sorry, the call did not go through. I have asked your son to call you back."
            ]
            assert backend.wait_until(lambda: backend.ids("family.message"))
            [ask] = [m.body for m in backend.handled if m.type == "family.message"]
            assert (ask.to, ask.text) == ("son", "Please call me back.")
        else:
            assert turn.reply == "I have asked your daughter to call you back."
            assert backend.wait_until(lambda: backend.ids("family.message"))


def test_location_is_not_sent_without_the_seniors_consent(
    broker: Mosquitto, engine, synthesizer, tmp_path: Path
) -> None:
    config = device_config(broker, tmp_path)
    config.device.location_with_alerts = False
    config.device.location_on_request = False
    said: list[str] = []
    device, _hardware = make_device(config, "phone")
    with Backend(broker, household=H) as backend, device:
        # connected first: an alert raised before would rightly add "could not reach yet"
        assert device.link is not None and device.link.wait_connected(10)
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", said)
        assistant.respond("help I fell")
        assert the_alert(backend).body.location is None
        assistant.respond("share my location with my daughter")
        assistant.respond("yes")
        assistant.speak_pending()
        assert said == ["Sharing where you are is switched off on this device."]
        assert not backend.wait_until(lambda: backend.ids("family."), timeout=1.0)


def test_share_my_location_sends_the_position_from_the_phone(
    broker: Mosquitto, engine, synthesizer, tmp_path: Path
) -> None:
    said: list[str] = []
    device, hardware = make_device(device_config(broker, tmp_path), "phone")
    with Backend(broker, household=H) as backend, device:
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", said)
        assistant.respond("share my location with my daughter")
        assistant.respond("yes")
        assert backend.wait_until(lambda: backend.ids("family.message"))
        [shared] = [m.body for m in backend.handled if m.type == "family.message"]
        assert shared.to == "daughter" and shared.location is not None
        assert shared.location.lat == pytest.approx(52.52)

        hardware.location.position = None  # type: ignore[union-attr]  # indoors, no fix yet
        assistant.respond("share my location with my son")
        assistant.respond("yes")
        assistant.speak_pending()
        assert said == ["I could not find out where you are just now, so I could not share it."]


def test_with_the_broker_down_the_alert_waits_is_announced_and_goes_out_later(
    broker: Mosquitto, engine, synthesizer, tmp_path: Path
) -> None:
    said: list[str] = []
    device, hardware = make_device(device_config(broker, tmp_path), "phone")
    with Backend(broker, household=H) as backend:  # its session keeps what comes meanwhile
        broker.stop()
        with device:
            assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", said)
            turn = assistant.respond("help I fell")
            assert turn.reply == replies.EMERGENCY_SENT["fall"]  # the local part: at once
            assert device.link is not None and device.link.outbox.contains(turn_alert_id(device))
            assert wait_for(lambda: (assistant.speak_pending(), QUEUED in said)[1], 10)
            assert states(hardware)[-1] == "alert"

            broker.start()
            alert = the_alert(backend)
            assert wait_for(lambda: (assistant.speak_pending(), SENT in said)[1], 20)
            assert said == [QUEUED, SENT]  # each once
            assert len(backend.ids("alert.emergency")) == 1
            check_location(alert, "phone")

            # Someone answers: the senior hears who, and the alert light goes off.
            backend.send(create(AlertAck(alert_id=alert.id, by="Anna", action="calling"), H, D))
            assert wait_for(lambda: (assistant.speak_pending(), len(said) == 3)[1], 10)
            assert said[-1] == "Anna is calling you now."
            assert states(hardware)[-1] != "alert"


def turn_alert_id(device: Device) -> str:
    [alert_id] = [i for i, t in device.actions.sent.items() if t == "alert.emergency"]
    return alert_id


# --- the family's remote commands, through the real family-notify --------------------------


OTHER = Household(
    id="h2",
    device="phone-2",
    senior="Grandpa Joe",
    emergency_number=None,
    members=(MemberSpec("joe", "Joe", "senior"), MemberSpec("zoe", "Zoe", "family", "niece")),
)


def test_remote_say_and_volume_work_from_the_household_and_not_from_another(
    broker: Mosquitto, engine, synthesizer, tmp_path: Path
) -> None:
    family = write_config(tmp_path / "family", broker)
    household = setup_household(family)
    setup_household(family, OTHER)
    config = device_config(broker, tmp_path / "device")
    config.device.household, config.device.device_id = household.id, household.device
    said: list[str] = []
    device, hardware = make_device(config, "speaker")
    anna = next(m.id for m in FAMILY if m.relation == "daughter")

    def results(member: str, status: str) -> list[str]:
        return [
            m.body.command_id
            for m in list(apps.handled)
            if m.type == "member.command.result" and m.device == member and m.body.status == status
        ]

    with apps_standin(broker) as apps, FamilyWorker(family), device:
        assert device.link is not None and device.link.wait_connected(10)
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "said.wav", said)
        say = create(Say(text="Dinner is at six."), household.id, anna, on="member_command")
        apps.send(say)
        assert wait_for(lambda: (assistant.speak_pending(), said)[1], 15)
        assert said == ["Dinner is at six."]
        assert apps.wait_until(lambda: say.id in results(anna, "confirmed"), 15)

        louder = create(Volume(level=0.4), household.id, anna, on="member_command")
        apps.send(louder)
        assert apps.wait_until(lambda: louder.id in results(anna, "confirmed"), 15)
        assert hardware.volume.level == 0.4
        assert wait_for(lambda: (assistant.speak_pending(), len(said) == 2)[1], 10)
        assert said[-1] == "Your family set my volume to 4 out of 10."

        # Zoe belongs to another household: her commands for this one are refused, and
        # the device neither speaks nor changes.
        for body in (Say(text="Open the door."), Volume(level=1.0)):
            apps.send(create(body, household.id, "zoe", on="member_command"))
        assert apps.wait_until(
            lambda: len([m for m in apps.handled if m.type == "service.refused"]) == 2, 15
        )
        refused = [m for m in apps.handled if m.type == "service.refused"]
        assert {m.body.reason for m in refused} == {"not_a_member"}
        assert {m.device for m in refused} == {"zoe"}

        # Straight onto this device's topic with her own household in the envelope: the
        # device refuses it itself.
        forged = create(Say(text="Open the door."), OTHER.id, household.device)
        topic = create(Say(text="x"), household.id, household.device).topic
        apps.send_raw(topic, encode(forged))
        assert wait_for(lambda: device.link.rejections["wrong_household"] >= 1, 10)
        assistant.speak_pending()
        assert said == ["Dinner is at six.", "Your family set my volume to 4 out of 10."]
        assert hardware.volume.level == 0.4


def test_remote_call_starts_a_call_on_the_phone_and_is_refused_by_the_speaker(
    broker: Mosquitto, tmp_path: Path
) -> None:
    for kind in ("phone", "speaker"):
        device, hardware = make_device(device_config(broker, tmp_path / kind), kind)
        with Backend(broker, household=H) as backend, device:
            assert device.link is not None and device.link.wait_connected(10)
            command = create(Call(contact="Anna", number="+4915100001"), H, D)
            backend.send(command)
            assert backend.wait_until(lambda: backend.ids("event.command.done"))
            [done] = [m.body for m in backend.handled if m.type == "event.command.done"]
            assert isinstance(done, CommandDone) and done.command_id == command.id
            if kind == "phone":
                assert done.ok and hardware.calls.calls == [("Anna", "+4915100001")]  # type: ignore[union-attr]
                assert device.announcer.take() == [
                    "Your family asked me to call Anna. Calling now."
                ]
            else:
                assert (done.ok, done.detail) == (False, "this device has no phone line")
                assert device.announcer.take() == []


# --- the indicator --------------------------------------------------------------------------


def test_the_indicator_follows_a_spoken_conversation_in_order(
    speech, engine, command_recognizer, synthesizer, tmp_path: Path
) -> None:
    indicator = RecordingIndicator()
    lights = StatusLights(indicator)
    hardware = hw.simulated(SPEAKER)
    controls = hardware.controls
    assert controls is not None
    assistant = Assistant(
        engine,
        Voice(synthesizer, WavRecorder(tmp_path / "said.wav")),
        recognizer=command_recognizer,
        endpoint=EndpointConfig(),
        indicator=lights.activity,
        clock=lambda: dt.datetime(2026, 11, 23, 9, 0),
    )
    hardware.buttons.press("action")  # type: ignore[union-attr]  # push to talk
    samples = speech.samples(speech.flite("what time is it?", "rms"), tail_s=2.0)
    turns = list(assistant.listen(frames_of(samples), button=controls.wake_pressed))
    assert [t.intent for t in turns] == ["what_time"]
    assert indicator.states == ["idle", "listening", "thinking", "speaking", "idle"]

    typed = RecordingIndicator()
    assistant.indicator = StatusLights(typed).activity
    assistant.respond("I need a video consultation")  # a question back: it listens on
    assert typed.states == ["thinking", "speaking", "listening"]


def test_alert_and_offline_outrank_the_loops_state() -> None:
    indicator = RecordingIndicator()
    lights = StatusLights(indicator)
    lights.offline(True)  # idle and offline: shows offline
    lights.activity("listening")  # a conversation without a network still shows it
    lights.alert(True)
    lights.activity("speaking")  # the alert stays up while the assistant reassures
    lights.alert(False)
    lights.activity("idle")
    assert indicator.states == ["offline", "listening", "alert", "speaking", "offline"]


@pytest.mark.parametrize("kind", ["phone", "speaker"])
def test_a_phone_vibrates_and_shows_a_reminder_as_well_as_saying_it(
    kind: str, engine, synthesizer, tmp_path
) -> None:
    from assistant.reminders import Reminder
    from assistant.schedule import DAILY, Schedule
    from tests.clock import Clock

    config = Config()
    config.paths.state_dir = str(tmp_path)
    clock = Clock(dt.datetime(2026, 11, 23, 7, 59))
    hardware = hw.simulated(PROFILES[kind], long_press_s=LONG_PRESS_S)
    said: list[str] = []
    with Device(config, link=False, clock=clock, hardware=hardware) as device:
        device.reminders.put(
            Reminder("bp", "medication", "take your pills", Schedule(DAILY, "08:00"),
                     medication="blood pressure pills"),
            clock(),
        )  # fmt: skip
        assistant = make_assistant(device, engine, synthesizer, tmp_path / "s.wav", said)
        assistant.clock = assistant.dialog.clock = clock
        clock.now = dt.datetime(2026, 11, 23, 8, 0)
        assert assistant.speak_pending() is True
    assert said == ["It is time to take your blood pressure pills. Have you taken it?"]
    if kind == "phone":
        assert hardware.notifier.texts == said and len(hardware.notifier.vibrations) == 1
    else:
        assert hardware.notifier is None  # a speaker has no screen or vibration motor
