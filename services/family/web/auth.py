"""Sign-in for the web console: a password per member (a salted scrypt hash), sessions kept
in the service's SQLite file (so every worker's console knows them), a CSRF token per
session. The cookie carries a random token; only its SHA-256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from services.family import households
from services.family.households import BAD_INPUT, HouseholdError
from services.family.store import Store

MIN_PASSWORD = 8
MAX_PASSWORD = 200
# scrypt's cost: about 50 ms and 16 MB on one core, per sign-in attempt.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${key.hex()}"


def check_password(stored: str, password: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), key)


_DUMMY = hash_password("not a password of anyone", b"\0" * 16)


def set_password(store: Store, household: str, member: str, password: str) -> None:
    """Set (or replace) a member's password; their open sessions end."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise HouseholdError(
            BAD_INPUT, f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )
    hashed = hash_password(password)
    with store.write() as db:
        households.require_member(households.require(db, household), member)
        db.execute(
            "INSERT INTO member_passwords (household, member, hash, updated) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (household, member) DO UPDATE SET hash = excluded.hash,"
            " updated = excluded.updated",
            (household, member, hashed, time.time()),
        )
        db.execute(
            "DELETE FROM web_sessions WHERE household = ? AND member = ?", (household, member)
        )


@dataclass(frozen=True)
class Session:
    token: str  # the cookie's value
    household: str
    member: str
    csrf: str
    expires: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(
    store: Store, household: str, member: str, password: str, hours: float
) -> Session | None:
    """A new session when the password is right; None otherwise (the same work is done for
    an unknown member, so the answer's time does not tell who exists)."""
    row = store.db.execute(
        "SELECT hash FROM member_passwords WHERE household = ? AND member = ?",
        (household, member),
    ).fetchone()
    right = check_password(row["hash"] if row else _DUMMY, password)
    if row is None or not right:
        return None
    now = time.time()
    session = Session(
        token=secrets.token_urlsafe(32),
        household=household,
        member=member,
        csrf=secrets.token_urlsafe(32),
        expires=now + hours * 3600,
    )
    with store.write() as db:
        db.execute("DELETE FROM web_sessions WHERE expires < ?", (now,))
        db.execute(
            "INSERT INTO web_sessions (token_hash, household, member, csrf, created, expires)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (_digest(session.token), household, member, session.csrf, now, session.expires),
        )
    return session


def find(store: Store, token: str | None) -> Session | None:
    """The live session of a cookie's token, if any."""
    if not token or len(token) > 100:
        return None
    row = store.db.execute(
        "SELECT * FROM web_sessions WHERE token_hash = ? AND expires > ?",
        (_digest(token), time.time()),
    ).fetchone()
    if row is None:
        return None
    return Session(token, row["household"], row["member"], row["csrf"], row["expires"])


def sign_out(store: Store, token: str) -> None:
    with store.write() as db:
        db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (_digest(token),))


class Throttle:
    """Failed sign-ins per (household, member): after `limit` within `window_s`, further
    attempts are refused until the window has passed (guessing is slowed, not stopped)."""

    def __init__(self, limit: int = 5, window_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()  # one request thread each

    def blocked(self, key: tuple[str, str], now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
            if recent:
                self._failures[key] = recent
            else:
                self._failures.pop(key, None)
            return len(recent) >= self.limit

    def failed(self, key: tuple[str, str], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._failures) > 10_000:  # bounded: forget the oldest guesses
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)
