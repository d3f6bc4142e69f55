"""Issue 5's whole path with nothing standing in for the device or the service: "help, I
fell" spoken (flite) into the real assistant process through PortAudio, the alert over a
real Mosquitto to a real `family-notify serve`, every member's inbox (their apps are the
stand-in), escalation, one acknowledgement, and the device saying who answered."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from protocol import MemberAck, create
from services.family.channels import read_gateway_file
from tests.assistant_process import AssistantProcess, device_config, wait_for
from tests.audio_devices import virtual_audio
from tests.broker import Mosquitto
from tests.family_process import (
    D,
    FamilyWorker,
    H,
    apps_standin,
    setup_household,
    write_config,
)

pytestmark = pytest.mark.e2e

NOTIFIED = ("anna", "ben", "carla")  # everyone in the household but the senior


@pytest.mark.parametrize("voice", ["rms", "slt"])
def test_spoken_help_i_fell_reaches_the_family_and_the_answer_is_said(
    speech, voice: str, tmp_path: Path, broker: Mosquitto
) -> None:
    family = write_config(tmp_path / "family", broker, step_s=4.0, max_repeats=1)
    setup_household(family)
    samples = speech.samples(speech.flite("help, I fell.", voice), lead_s=1.0, tail_s=60.0)
    audio = virtual_audio(tmp_path / "audio", samples)
    config = device_config(tmp_path / "device.toml", broker, H, D)
    with apps_standin(broker) as apps, FamilyWorker(family):
        device = AssistantProcess(config, audio.env)
        try:

            def alerted() -> list:
                return [m for m in list(apps.handled) if m.type == "member.alert"]

            assert wait_for(lambda: {m.device for m in alerted()} >= set(NOTIFIED), 90), (
                device.lines
            )
            alert_id = alerted()[0].body.alert_id
            notices = [m for m in alerted() if m.body.alert_id == alert_id and m.body.step == 0]
            assert sorted(m.device for m in notices) == sorted(NOTIFIED)  # each exactly once
            assert all(m.body.category == "emergency" and m.body.tone == "urgent" for m in notices)
            assert any("help" in m.body.text.lower() for m in notices if m.device == "anna")

            # Nobody answers: the first escalation step (SMS and calls) goes out on time.
            assert wait_for(lambda: read_gateway_file(family.sms), 15)
            assert read_gateway_file(family.sms)[0]["step"] == 1

            # Anna answers from her app; the device says so.
            answer = MemberAck(alert_id=alert_id, action="on_the_way", eta_min=10)
            apps.send(create(answer, H, "anna"))
            expected = "Your daughter is on the way and will be with you in about 10 minutes."
            assert wait_for(lambda: expected in device.said(), 30), device.lines

            # Escalation stopped: the emergency number is never called.
            time.sleep(9)
            calls = read_gateway_file(family.phone)
            assert all(call["to"] != "+49112" for call in calls)
            played = audio.speaker_samples()
            assert len(played) > 22050 and np.abs(played).max() > 1000  # speech was played
        finally:
            err = device.stop()
    heard = [line for line in device.lines if line.startswith("intent: ")]
    assert heard and heard[0].startswith("intent: emergency"), (device.lines, err[-2000:])
