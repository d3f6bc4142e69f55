"""Issue 6's whole path: "I need a video consultation" spoken (flite) into the real assistant
through PortAudio, confirmed with a spoken "yes", a real `doctor-connect serve` and a
doctor's app over a real Mosquitto; the device says which doctor will join and when, the
doctor's app receives the session. A busy doctor first: the device announces its place in
the queue."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.assistant_process import AssistantProcess, device_config, wait_for
from tests.audio_devices import virtual_audio
from tests.broker import Mosquitto
from tests.doctor_connect_process import DoctorClient, DoctorConnectProcess

pytestmark = pytest.mark.e2e

H, D = "household-9", "kitchen-speaker"
ANSWER_GAP_S = 5.5  # after the request: the assistant asks "Shall I ask for…?" meanwhile


def spoken_request(speech, voice: str) -> np.ndarray:
    request = speech.samples(speech.flite("I need a video consultation.", voice), lead_s=1.0)
    answer = speech.samples(speech.flite("yes, please.", voice), lead_s=ANSWER_GAP_S, tail_s=60.0)
    return np.concatenate([request, answer])


@pytest.mark.parametrize("voice", ["awb", "rms"])
def test_spoken_video_consultation_ends_with_a_doctor(
    speech, voice: str, tmp_path: Path, broker: Mosquitto
) -> None:
    backend = DoctorConnectProcess.setup(tmp_path / "dc", broker, [("weber", "general_practice")])
    audio = virtual_audio(tmp_path / "audio", spoken_request(speech, voice))
    config = device_config(tmp_path / "device.toml", broker, H, D)
    try:
        with DoctorClient(broker, "weber") as weber:
            weber.set_status("busy")  # with another patient: the senior waits in line
            device = AssistantProcess(config, audio.env)
            try:
                assert wait_for(lambda: any("in line" in s for s in device.said()), 90), (
                    device.lines
                )
                assert "You are next in line for a doctor." in device.said()[0]
                weber.set_status("available")
                expected = "Dr. Weber will join you in about 1 minute."
                assert wait_for(lambda: expected in device.said(), 30), device.lines
                assert weber.wait_until(lambda: weber.sessions())
                (session,) = weber.sessions()
                assert (session.household, session.device, session.mode) == (H, D, "video")
                assert session.room_id and "role=doctor" in session.join_url
                assert wait_for(lambda: any("video call" in s for s in device.said()), 10)
            finally:
                device.stop()
    finally:
        backend.stop()
    intents = [line for line in device.lines if line.startswith("intent: ")]
    assert intents[:2] == ["intent: request_consultation mode=video", "intent: yes"], device.lines
