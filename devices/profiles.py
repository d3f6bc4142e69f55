"""The two kinds of hardware the assistant runs on, and what each one has.

|               | speaker                               | phone                             |
|---------------|---------------------------------------|-----------------------------------|
| microphone    | far field (across the room)           | near field (held or on the table) |
| waking        | the wake phrase, or the action button | the action button (push to talk)  |
| emergency key | a long press of the action button     | a long press of the SOS key       |
| volume        | volume keys, voice, family            | volume keys, voice, family        |
| location      | no (it stays at home)                 | GPS                               |
| calls         | no phone line: family calls back      | yes                               |
| indicator     | an LED ring                           | the screen; vibration             |
"""

from __future__ import annotations

from dataclasses import dataclass

CAPABILITIES = ("location", "calls", "vibration", "screen", "led_ring", "volume_keys", "sos_key")


@dataclass(frozen=True)
class Profile:
    kind: str
    capabilities: frozenset[str]
    far_field: bool  # the microphone hears across a room
    wake_word: bool  # listen for the wake phrase by default
    push_to_talk: bool  # a press of the action button wakes
    sos_button: str  # the button whose long press raises an emergency
    speech_rate_wpm: int  # audio defaults for this loudspeaker
    volume: float
    vad_aggressiveness: int  # a far-field mic hears the room: stricter voice detection

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
        return capability in self.capabilities


SPEAKER = Profile(
    kind="speaker",
    capabilities=frozenset({"led_ring", "volume_keys"}),
    far_field=True,
    wake_word=True,
    push_to_talk=True,
    sos_button="action",
    speech_rate_wpm=140,
    volume=0.9,
    vad_aggressiveness=3,
)
PHONE = Profile(
    kind="phone",
    capabilities=frozenset({"location", "calls", "vibration", "screen", "volume_keys", "sos_key"}),
    far_field=False,
    wake_word=False,
    push_to_talk=True,
    sos_button="sos",
    speech_rate_wpm=130,  # a small loudspeaker at the ear: slower is clearer
    volume=1.0,
    vad_aggressiveness=2,
)
PROFILES = {p.kind: p for p in (SPEAKER, PHONE)}


def profile(kind: str) -> Profile:
    try:
        return PROFILES[kind]
    except KeyError:
        raise ValueError(f"unknown device kind {kind!r}: one of {', '.join(PROFILES)}") from None
