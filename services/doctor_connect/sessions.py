"""What a consultation needs to start: a video room, a phone callback or a text
conversation topic.

Video media is out of scope here; `VideoRooms` hands out what a real video service would:
a room id and, for each side, a join address carrying a signed, expiring token (HMAC of
room, role and expiry). A real service (Jitsi with JWT, Twilio, Daily...) would sit behind
the same two calls.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import urllib.parse
from dataclasses import dataclass

from protocol import topics


@dataclass(frozen=True)
class Session:
    mode: str
    room_id: str | None = None
    patient_url: str | None = None
    doctor_url: str | None = None
    phone_number: str | None = None  # the number that calls the senior
    callback_number: str | None = None  # the senior's number the doctor calls
    conversation_topic: str | None = None


class VideoRooms:
    def __init__(self, base_url: str, secret: str, token_ttl_s: int) -> None:
        if not base_url.startswith("https://"):
            raise ValueError("video.base_url must be an https address")
        self.base_url = base_url.rstrip("/")
        self.secret = secret.encode()
        self.token_ttl_s = token_ttl_s

    def create_room(self) -> str:
        return "room-" + secrets.token_hex(8)

    def join_url(self, room_id: str, role: str, now: float) -> str:
        expires = int(now + self.token_ttl_s)
        token = self.token(room_id, role, expires)
        query = urllib.parse.urlencode({"role": role, "exp": expires, "token": token})
        return f"{self.base_url}/{room_id}?{query}"

    def token(self, room_id: str, role: str, expires: int) -> str:
        text = f"{room_id}|{role}|{expires}".encode()
        return hmac.new(self.secret, text, hashlib.sha256).hexdigest()[:32]

    def verify(self, url: str, now: float) -> bool:
        """What the video service checks when someone joins with `url`."""
        parsed = urllib.parse.urlsplit(url)
        room_id = parsed.path.rsplit("/", 1)[-1]
        query = dict(urllib.parse.parse_qsl(parsed.query))
        try:
            expires = int(query["exp"])
            expected = self.token(room_id, query["role"], expires)
        except (KeyError, ValueError):
            return False
        return expires > now and hmac.compare_digest(expected, query.get("token", ""))


class SessionMaker:
    def __init__(self, rooms: VideoRooms, practice_phone: str) -> None:
        self.rooms = rooms
        self.practice_phone = practice_phone

    def make(
        self,
        mode: str,
        *,
        household: str,
        device: str,
        doctor_phone: str | None,
        callback_number: str | None,
        now: float,
    ) -> Session:
        if mode == "video":
            room = self.rooms.create_room()
            return Session(
                mode,
                room_id=room,
                patient_url=self.rooms.join_url(room, "patient", now),
                doctor_url=self.rooms.join_url(room, "doctor", now),
            )
        if mode == "phone":
            return Session(
                mode,
                phone_number=doctor_phone or self.practice_phone,
                callback_number=callback_number,
            )
        return Session(mode, conversation_topic=topics.conversation(household, device))
