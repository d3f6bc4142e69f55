"""The web console's HTTP server: the standard library's ThreadingHTTPServer inside a
family-notify worker, pages rendered on the server, live updates as server-sent events.

Every request finds its session by the cookie, and everything it reads or changes is
scoped by that session's household: an id of another household's alert or reminder is
"not found". Changes go through the service's own code paths (an acknowledgement is the
same `member.ack` an app would send; a reminder the same command), so the device hears
them as it would from an app."""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from protocol import MemberAck, ReminderAdd, ReminderChange, ReminderRemove, create
from protocol.schema import SchemaError, from_dict
from services.family import households, presence
from services.family.config import WebSection, parse_listen
from services.family.households import Household, HouseholdError, Member
from services.family.web import auth, data, render

if TYPE_CHECKING:
    from services.family.service import FamilyService

log = logging.getLogger("services.family.web")

MAX_BODY = 64 * 1024
WATCH_S = 0.05  # how often the SQLite file is asked whether anyone committed to it
PING_S = 15.0  # an SSE comment this often finds closed connections
ACTIONS = tuple(value for value, _ in render.ACK_BUTTONS)
STATIC = {"app.css": "text/css; charset=utf-8", "app.js": "text/javascript; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_ALERT = re.compile(r"/alerts/([0-9a-fA-F-]{36})(/ack)?")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
_REMINDER = re.compile(r"/reminders/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})(/remove)?")


class WebConsole:
    def __init__(self, service: FamilyService, listen: str, settings: WebSection) -> None:
        self.service = service
        self.store = service.store
        self.settings = settings
        self.throttle = auth.Throttle()
        self.stopping = threading.Event()
        self.version = 0  # counts the commits seen (by anyone: this worker, others, the CLI)
        self._changed = threading.Condition()
        host, port = parse_listen(listen)
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.console = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> WebConsole:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="web"
        )
        self._thread.daemon = True
        self._thread.start()
        threading.Thread(target=self._watch, name="web-watch", daemon=True).start()
        log.info("web console at %s", self.url)
        return self

    def _watch(self) -> None:
        """One thread for all open pages: SQLite's `data_version` changes when another
        connection commits, which costs next to nothing to ask; the pages then look at
        their own household."""
        try:
            last = None
            while not self.stopping.wait(WATCH_S):
                current = self.store.db.execute("PRAGMA data_version").fetchone()[0]
                if current != last:
                    last = current
                    with self._changed:
                        self.version += 1
                        self._changed.notify_all()
        finally:
            self.store.release()

    def wait_change(self, seen: int, timeout: float) -> int:
        """The commit count, once it differs from `seen` (or after `timeout`)."""
        with self._changed:
            self._changed.wait_for(lambda: self.version != seen or self.stopping.is_set(), timeout)
            return self.version

    def stop(self) -> None:
        self.stopping.set()  # live pages end their streams
        with self._changed:
            self._changed.notify_all()
        self.server.shutdown()
        self.server.server_close()
        if self._thread is not None:
            self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    server_version = "family-notify"
    _state = ""  # the household's state token when the page being answered was read
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def console(self) -> WebConsole:
        return self.server.console  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.console.store.release()  # one thread per connection: its SQLite too

    # --- plumbing ---------------------------------------------------------------------------

    def _cookies(self) -> dict[str, str]:
        try:
            jar = SimpleCookie(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {k: v.value for k, v in jar.items()}

    def _cookie(self, name: str, value: str, max_age: int | None = None, path: str = "/") -> str:
        parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        if self.console.settings.secure_cookies:
            parts.append("Secure")
        return "; ".join(parts)

    def _send(
        self,
        status: int,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: list[tuple[str, str]] | None = None,
        cache: str = "no-store",
    ) -> None:
        payload = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", cache)
        for name, value in HEADERS.items():
            self.send_header(name, value)
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _redirect(self, where: str, headers: list[tuple[str, str]] | None = None) -> None:
        self._send(HTTPStatus.SEE_OTHER, b"", headers=[("Location", where), *(headers or [])])

    def _form(self) -> dict[str, list[str]] | None:
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, render.page("Too large", ""))
            self.close_connection = True
            return None
        raw = self.rfile.read(length).decode("utf-8", errors="replace")
        return parse_qs(raw, keep_blank_values=True, max_num_fields=100)

    def _who(self) -> tuple[auth.Session, Household, Member] | None:
        session = auth.find(self.console.store, self._cookies().get("sid"))
        if session is None:
            return None
        household = households.get(self.console.store.db, session.household)
        member = household.member(session.member) if household else None
        if household is None or member is None:
            return None
        return session, household, member

    def _page(self, status: int, title: str, body: str, who: Any, **extra: Any) -> None:
        session, household, member = who
        path = urlsplit(self.path).path
        extra.setdefault("state", self._state)
        current = next((href for href, _ in render.NAV if href == path), "")
        html = render.page(
            title,
            body,
            member=member,
            household=household,
            csrf=session.csrf,
            current=current,
            large=self._cookies().get("large") == "1",
            **extra,
        )
        self._send(status, html)

    def _notice(self) -> str | None:
        done = parse_qs(urlsplit(self.path).query).get("done", [""])[0]
        return render.NOTICES.get(done)

    # --- GET --------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        if path == "/login":
            return self._sign_in_form()
        who = self._who()
        if who is None:
            if path == "/events":
                return self._send(HTTPStatus.UNAUTHORIZED, b"", "text/plain")
            if path in ("/", "/reminders", "/health") or _ALERT.fullmatch(path):
                return self._redirect("/login")
            return self._send(HTTPStatus.NOT_FOUND, render.not_found())
        db = self.console.store.db
        # Taken before the page is read: a change after it is one the page has not shown.
        self._state = data.state_token(data.fingerprint(db, who[1].id))
        if path == "/events":
            return self._events(who)
        _, household, member = who
        now = time.time()
        if path == "/":
            body = render.alerts_page(
                data.open_alerts(db, household, member.language),
                data.alert_history(db, household, member.language),
                household,
                who[0].csrf,
            )
            return self._page(HTTPStatus.OK, "Alerts", body, who, notice=self._notice())
        match = _ALERT.fullmatch(path)
        if match and not match[2]:
            alert = data.alert_trail(db, household, match[1], member.language)
            if alert is not None:
                body = render.trail_page(alert, household)
                return self._page(HTTPStatus.OK, "What happened to an alert", body, who)
        if path == "/reminders":
            return self._reminders(who, HTTPStatus.OK, notice=self._notice())
        if path == "/health":
            body = render.health_page(
                data.readings(db, household, now),
                presence.statuses(db, household.id, household.devices),
                household,
                now,
            )
            return self._page(HTTPStatus.OK, "Health and device", body, who)
        self._send(HTTPStatus.NOT_FOUND, render.not_found())

    def _static(self, name: str) -> None:
        if name not in STATIC:
            return self._send(HTTPStatus.NOT_FOUND, render.not_found())
        payload = resources.files("services.family.web").joinpath("static", name).read_bytes()
        self._send(HTTPStatus.OK, payload, STATIC[name], cache="no-cache")

    def _sign_in_form(self, status: int = HTTPStatus.OK, **values: Any) -> None:
        if self.command == "GET" and self._who() is not None:
            return self._redirect("/")
        # The same token while the cookie lives: a second tab (or a stray request that
        # lands here) must not invalidate the form already shown.
        token = self._cookies().get("pre", "")
        if not _TOKEN.fullmatch(token):
            token = secrets.token_urlsafe(24)
        self._send(
            status,
            render.sign_in(token, **values),
            headers=[("Set-Cookie", self._cookie("pre", token, 3600, "/login"))],
        )

    def _reminders(self, who: Any, status: int, form: dict | None = None, **extra: Any) -> None:
        db = self.console.store.db
        _, household, _ = who
        body = render.reminders_page(
            data.reminder_list(db, household),
            data.adherence(db, household, time.time()),
            who[0].csrf,
            form,
        )
        self._page(status, "Reminders", body, who, **extra)

    def _events(self, who: Any) -> None:
        """Server-sent events: `change` with what changed, whenever the household's data
        does; the page fetches itself again and swaps its live sections."""
        session, household, _ = who
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        self.close_connection = True
        console = self.console
        seen = console.version
        last = data.fingerprint(console.store.db, household.id)
        pinged = checked = time.monotonic()
        since = parse_qs(urlsplit(self.path).query).get("since", [""])[0]
        try:
            self.wfile.write(b"retry: 2000\n\n")
            if since and since != data.state_token(last):  # changed since the page was made
                seen_alerts = data.alerts_seen(since)
                new_alert = seen_alerts is not None and last["alerts"][1] > seen_alerts
                self._tell_change([], new_alert)
            self.wfile.flush()
            while not console.stopping.is_set():
                version = console.wait_change(seen, PING_S)
                now = time.monotonic()
                current = last
                if version != seen:
                    seen = version
                    current = data.fingerprint(console.store.db, household.id)
                if current != last:
                    changed = sorted(k for k in current if current[k] != last.get(k))
                    self._tell_change(changed, current["alerts"][1] != last["alerts"][1])
                    self.wfile.flush()
                    last, pinged = current, now
                elif now - pinged >= PING_S - 1:
                    self.wfile.write(b": ping\n\n")
                    self.wfile.flush()
                    pinged = now
                if now - checked > 10:  # a session ended elsewhere ends the stream
                    checked = now
                    if auth.find(console.store, session.token) is None:
                        self.wfile.write(b"event: signed_out\ndata: {}\n\n")
                        self.wfile.flush()
                        return
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return

    def _tell_change(self, changed: list[str], new_alert: bool) -> None:
        payload = json.dumps({"changed": changed, "new_alert": new_alert})
        self.wfile.write(f"event: change\ndata: {payload}\n\n".encode())

    # --- POST -------------------------------------------------------------------------------

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        form = self._form()
        if form is None:
            return
        if path == "/login":
            return self._sign_in(form)
        who = self._who()
        if who is None:
            return self._redirect("/login")
        session = who[0]
        sent = form.get("csrf", [""])[0]
        if not secrets.compare_digest(sent.encode(), session.csrf.encode()):
            body = "<p>This form had expired. Please go back, reload the page and try again.</p>"
            return self._page(HTTPStatus.FORBIDDEN, "Please try again", body, who)
        if path == "/logout":
            auth.sign_out(self.console.store, session.token)
            return self._redirect("/login", [("Set-Cookie", self._cookie("sid", "", 0))])
        if path == "/reminders":
            return self._reminder_add(form, who)
        match = _ALERT.fullmatch(path)
        if match and match[2]:
            return self._acknowledge(match[1], form, who)
        match = _REMINDER.fullmatch(path)
        if match:
            return self._reminder_change(match[1], bool(match[2]), form, who)
        self._send(HTTPStatus.NOT_FOUND, render.not_found())

    def _sign_in(self, form: dict[str, list[str]]) -> None:
        def one(name: str) -> str:
            return form.get(name, [""])[0].strip()

        household, member, password = one("household"), one("member"), form.get("password", [""])
        pre = self._cookies().get("pre", "")
        if not pre or not secrets.compare_digest(pre.encode(), one("csrf").encode()):
            return self._sign_in_form(
                HTTPStatus.FORBIDDEN,
                household=household,
                member=member,
                error="This form had expired. Please sign in again.",
            )
        key = (household, member)
        console = self.console
        if console.throttle.blocked(key):
            log.warning("web sign-in refused for a while after failures (%s)", household)
            return self._sign_in_form(
                HTTPStatus.TOO_MANY_REQUESTS,
                household=household,
                member=member,
                error="Too many wrong tries. Please wait five minutes and try again.",
            )
        session = auth.sign_in(
            console.store, household, member, password[0], console.settings.session_hours
        )
        if session is None:
            console.throttle.failed(key)
            log.info("web sign-in failed")
            return self._sign_in_form(
                HTTPStatus.UNAUTHORIZED,
                household=household,
                member=member,
                error="The household, name or password is not right.",
            )
        console.throttle.succeeded(key)
        log.info("web sign-in: %s in %s", member, household)
        max_age = int(console.settings.session_hours * 3600)
        self._redirect(
            "/",
            [
                ("Set-Cookie", self._cookie("sid", session.token, max_age)),
                ("Set-Cookie", self._cookie("pre", "", 0, "/login")),
            ],
        )

    def _acknowledge(self, alert_id: str, form: dict[str, list[str]], who: Any) -> None:
        _, household, member = who
        action = form.get("action", [""])[0]
        if action not in ACTIONS:
            return self._send(HTTPStatus.BAD_REQUEST, render.page("Unknown answer", ""))
        if member.role == "senior":
            body = "<p>Alerts about you are answered by your family.</p>"
            return self._page(HTTPStatus.FORBIDDEN, "Not for you", body, who)
        service = self.console.service
        try:
            message = create(MemberAck(alert_id=alert_id, action=action), household.id, member.id)
            ids = service.alerts.acknowledge(message, household, member)
        except (HouseholdError, ValueError):
            return self._send(HTTPStatus.NOT_FOUND, render.not_found())
        service.outbox.send(ids)
        log.info("alert acknowledged on the web by %s (%s)", member.id, action)
        self._redirect("/?done=acknowledged" if ids else "/?done=answered")

    def _reminder_add(self, form: dict[str, list[str]], who: Any) -> None:
        values = _reminder_values(form)
        fields = {k: v for k, v in values.items() if v not in ("", None, [])}
        fields.setdefault("kind", "other")
        fields["reminder_id"] = f"web-{secrets.token_hex(4)}"
        self._reminder_request(ReminderAdd, fields, who, "added", values)

    def _reminder_change(
        self, reminder_id: str, remove: bool, form: dict[str, list[str]], who: Any
    ) -> None:
        if remove:
            return self._reminder_request(
                ReminderRemove, {"reminder_id": reminder_id}, who, "removed"
            )
        values = _reminder_values(form)
        fields = {k: v for k, v in values.items() if v not in ("", None) and k != "kind"}
        fields["days"] = values["days"] or list(render.WEEKDAYS)  # none ticked: every day
        fields["reminder_id"] = reminder_id
        self._reminder_request(ReminderChange, fields, who, "changed")

    def _reminder_request(
        self, cls: type, fields: dict, who: Any, done: str, form: dict | None = None
    ) -> None:
        """Check and pass on a reminder command; bad input is shown with what was typed."""
        _, household, member = who
        service = self.console.service
        try:
            body = from_dict(cls, fields)
            _, ids = service.reminders.request(body, household.id, member.id)
        except SchemaError as exc:
            return self._reminders(who, HTTPStatus.BAD_REQUEST, form, error=_explain(exc))
        except HouseholdError as exc:
            if exc.reason == "unknown_reminder":
                return self._send(HTTPStatus.NOT_FOUND, render.not_found())
            status = HTTPStatus.FORBIDDEN if exc.reason == "not_allowed" else HTTPStatus.CONFLICT
            return self._reminders(who, status, form, error=str(exc))
        service.outbox.send(ids)
        log.info("reminder %s on the web by %s", done, member.id)
        self._redirect(f"/reminders?done={done}")


def _reminder_values(form: dict[str, list[str]]) -> dict[str, Any]:
    def one(name: str) -> str:
        return form.get(name, [""])[0].strip()

    return {
        "kind": one("kind"),
        "text": one("text"),
        "at": one("at"),
        "days": [d for d in form.get("days", []) if d],
        "medication": one("medication"),
        "dose": one("dose"),
    }


_FIELDS = {"text": "What to say", "at": "At", "days": "Days", "kind": "Kind"}


def _explain(error: SchemaError) -> str:
    """A schema error in the form's words."""
    message = str(error)
    for field, label in _FIELDS.items():
        if field in message:
            return f"Please check “{label}”: {message}"
    return f"Please check the form: {message}"
