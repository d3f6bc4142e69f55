"""The web console over HTTP (no browser): sign-in, sessions, CSRF, the household scope,
bad input, live events. A real `family-notify serve --web`, Mosquitto and SQLite file; the
device is a stand-in publishing what a device would."""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from protocol import DeviceStatus, EmergencyAlert, create
from services.family.web import auth
from tests.broker import Mosquitto
from tests.device_process import _wait as wait_for
from tests.family_process import D, FamilyConfigFiles, FamilyWorker, H, device_standin, family_cli
from tests.family_web import OTHER, PASSWORDS, WebClient, set_password, two_households


@pytest.fixture
def config(tmp_path: Path, broker: Mosquitto) -> FamilyConfigFiles:
    return two_households(tmp_path / "family", broker, step_s=60.0)


@pytest.fixture
def worker(config: FamilyConfigFiles):
    with FamilyWorker(config, web="127.0.0.1:0") as running:
        assert running.web_url
        yield running


@pytest.fixture
def device(broker: Mosquitto):
    with device_standin(broker) as standin:
        yield standin


def signed_in(worker: FamilyWorker, household: str = H, member: str = "anna") -> WebClient:
    client = WebClient(worker.web_url or "")
    response = client.sign_in(household, member)
    assert response.status == 303 and response.header("Location") == "/", response.body[:300]
    return client


def raise_alert(device, household: str = H, device_id: str = D) -> str:
    alert = create(EmergencyAlert(trigger="sos_button"), household, device_id)
    device.send(alert)
    return alert.id


def db(config: FamilyConfigFiles) -> sqlite3.Connection:
    connection = sqlite3.connect(config.database)
    connection.row_factory = sqlite3.Row
    return connection


# --- passwords ----------------------------------------------------------------------------


def test_password_hashes_are_salted_and_checked() -> None:
    first, second = auth.hash_password("a long secret"), auth.hash_password("a long secret")
    assert first != second and first.startswith("scrypt$")
    assert auth.check_password(first, "a long secret")
    assert not auth.check_password(first, "a long secreT")
    assert not auth.check_password("garbage", "a long secret")
    assert not auth.check_password("scrypt$x$8$1$00$00", "a long secret")


def test_set_password_refuses_what_it_cannot_take(config: FamilyConfigFiles) -> None:
    short = set_password(config, H, "anna", "short")
    assert short.returncode == 2 and "8 to 200 characters" in short.stderr
    stranger = set_password(config, H, "nobody", "long enough secret")
    assert stranger.returncode == 2 and "not_a_member" in stranger.stderr
    with db(config) as connection:  # the old password is still the one
        (row,) = connection.execute(
            "SELECT hash FROM member_passwords WHERE household = ? AND member = 'anna'", (H,)
        )
        assert auth.check_password(row["hash"], PASSWORDS[(H, "anna")])


def test_a_new_password_ends_the_members_sessions(config, worker) -> None:
    client = signed_in(worker)
    assert client.get("/").status == 200
    assert set_password(config, H, "anna", "a brand new secret").returncode == 0
    assert client.get("/").header("Location") == "/login"
    assert client.sign_in(H, "anna", "a brand new secret").status == 303


# --- signing in ---------------------------------------------------------------------------


def test_pages_need_a_sign_in(worker) -> None:
    client = WebClient(worker.web_url or "")
    for path in ("/", "/reminders", "/health", f"/alerts/{'0' * 8}-0000-4000-8000-{'0' * 12}"):
        response = client.get(path)
        assert response.status == 303 and response.header("Location") == "/login", path
    assert client.get("/events").status == 401
    assert client.post("/reminders", {"text": "x"}).header("Location") == "/login"


def test_the_session_cookie_is_http_only_and_same_site_strict(worker) -> None:
    client = WebClient(worker.web_url or "")
    response = client.sign_in(H, "anna")
    (sid,) = [c for c in response.cookies() if c.startswith("sid=")]
    assert "HttpOnly" in sid and "SameSite=Strict" in sid
    assert "Content-Security-Policy" in dict(response.headers)
    page = client.get("/")
    assert page.status == 200 and "Signed in as Anna" in page.body


def test_a_wrong_password_is_refused_and_guessing_is_slowed(worker) -> None:
    client = WebClient(worker.web_url or "")
    wrong = client.sign_in(H, "anna", "not the password")
    assert wrong.status == 401 and "not right" in wrong.body
    assert "sid" not in client.cookies
    assert 'value="anna"' in wrong.body  # what was typed is kept (but not the password)
    assert "not the password" not in wrong.body
    unknown = client.sign_in(H, "nobody", "whatever it is")
    assert unknown.status == 401
    for _ in range(4):
        client.sign_in(H, "anna", "still wrong")
    blocked = client.sign_in(H, "anna")  # even the right password, for a while
    assert blocked.status == 429 and "wait" in blocked.body
    assert signed_in(worker, "h2", "zoe")  # someone else is not held up


def test_sign_in_needs_its_form_token(worker) -> None:
    client = WebClient(worker.web_url or "")
    refused = client.post(
        "/login", {"csrf": "forged", "household": H, "member": "anna", "password": "x" * 8}
    )
    assert refused.status == 403 and "sid" not in client.cookies


def test_signing_out_ends_the_session(worker) -> None:
    client = signed_in(worker)
    token = client.cookies["sid"]
    assert client.post("/logout", {"csrf": client.get("/").csrf()}).status == 303
    stolen = WebClient(worker.web_url or "", {"sid": token})
    assert stolen.get("/").header("Location") == "/login"


# --- CSRF and the household scope ------------------------------------------------------


def test_a_post_without_the_csrf_token_changes_nothing(config, worker, device) -> None:
    alert_id = raise_alert(device)
    client = signed_in(worker)
    assert wait_for(lambda: alert_id in client.get("/").body, 20)
    refused = client.post(f"/alerts/{alert_id}/ack", {"action": "seen"})
    assert refused.status == 403
    refused = client.post(f"/alerts/{alert_id}/ack", {"action": "seen", "csrf": "forged"})
    assert refused.status == 403
    added = client.post("/reminders", {"text": "Pills", "at": "08:00", "csrf": "forged"})
    assert added.status == 403
    with db(config) as connection:
        (state,) = connection.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,))
        assert state[0] in ("open", "delivered")
        assert connection.execute("SELECT COUNT(*) FROM reminders").fetchone()[0] == 0


def test_another_households_member_gets_not_found(config, worker, device) -> None:
    alert_id = raise_alert(device)
    anna = signed_in(worker)
    assert wait_for(lambda: alert_id in anna.get("/").body, 20)
    added = anna.post("/reminders", {"csrf": anna.get("/").csrf(), "text": "Mum's walk",
                                     "at": "10:00", "kind": "other"})  # fmt: skip
    assert added.status == 303
    with db(config) as connection:
        (reminder_id,) = connection.execute("SELECT id FROM reminders WHERE household = ?", (H,))
    reminder_id = reminder_id[0]

    zoe = signed_in(worker, "h2", "zoe")
    csrf = zoe.get("/").csrf()
    for page in ("/", "/reminders", "/health"):
        body = zoe.get(page).body
        assert alert_id not in body and "Mum" not in body and reminder_id not in body, page
        assert "Grandpa Joe" in body
    assert zoe.get(f"/alerts/{alert_id}").status == 404
    assert zoe.post(f"/alerts/{alert_id}/ack", {"csrf": csrf, "action": "seen"}).status == 404
    changed = {"csrf": csrf, "text": "Gone", "at": "11:00"}
    assert zoe.post(f"/reminders/{reminder_id}", changed).status == 404
    assert zoe.post(f"/reminders/{reminder_id}/remove", {"csrf": csrf}).status == 404
    with db(config) as connection:  # nothing of h1 changed
        (state,) = connection.execute("SELECT state FROM alerts WHERE id = ?", (alert_id,))
        assert state[0] in ("open", "delivered")
        (row,) = connection.execute("SELECT state, body FROM reminders WHERE id = ?",
                                    (reminder_id,))  # fmt: skip
        assert row["state"] == "active" and json.loads(row["body"])["text"] == "Mum's walk"


def test_acknowledging_on_the_web_tells_the_device(config, worker, device) -> None:
    alert_id = raise_alert(device)
    client = signed_in(worker)
    assert wait_for(lambda: alert_id in client.get("/").body, 20)
    done = client.post(f"/alerts/{alert_id}/ack", {"csrf": client.get("/").csrf(),
                                                     "action": "calling"})  # fmt: skip
    assert done.status == 303 and done.header("Location") == "/?done=acknowledged"
    assert device.wait_until(lambda: any(m.type == "alert.ack" for m in device.handled), 20)
    (ack,) = [m.body for m in device.handled if m.type == "alert.ack"]
    assert ack.alert_id == alert_id and ack.by == "your daughter" and ack.action == "calling"
    trail = client.get(f"/alerts/{alert_id}")
    assert trail.status == 200 and "Acknowledged · Anna · calling" in trail.body
    again = client.post(f"/alerts/{alert_id}/ack", {"csrf": client.get("/").csrf(),
                                                     "action": "seen"})  # fmt: skip
    assert again.header("Location") == "/?done=answered"
    bad = client.post(f"/alerts/{alert_id}/ack", {"csrf": client.get("/").csrf(),
                                                   "action": "shrug"})  # fmt: skip
    assert bad.status == 400


def test_a_member_removed_with_the_cli_is_sent_nothing_that_waited(config) -> None:
    """`family-notify household member remove`: Ben's notice held for his quiet hours is
    cancelled with him (it went out to him after he had left, before)."""
    with db(config) as connection:
        connection.execute(
            "INSERT INTO outbox (id, household, member, channel, address, payload, purpose,"
            " not_before, created) VALUES ('held', ?, 'ben', 'mqtt', 'topic', x'', 'alert',"
            " 0, 0)",
            (H,),
        )
    removed = family_cli(config, "household", "member", "remove", H, "ben")
    assert removed.returncode == 0, removed.stderr
    with db(config) as connection:
        assert connection.execute("SELECT state FROM outbox WHERE id = 'held'").fetchone()[0] == (
            "cancelled"
        )
        assert (
            connection.execute(
                "SELECT COUNT(*) FROM members WHERE household = ? AND id = 'ben'", (H,)
            ).fetchone()[0]
            == 0
        )


# --- reminders: bad input is explained and nothing is lost -------------------------------


def test_a_bad_reminder_is_explained_and_the_form_kept(config, worker) -> None:
    client = signed_in(worker)
    csrf = client.get("/reminders").csrf()
    bad = client.post("/reminders", {"csrf": csrf, "text": "Evening pills", "at": "25:99",
                                     "days": ["mon", "fri"], "medication": "Aspirin"})  # fmt: skip
    assert bad.status == 400 and "Please check “At”" in bad.body
    assert 'value="Evening pills"' in bad.body and 'value="Aspirin"' in bad.body
    assert 'value="mon" checked' in bad.body and 'value="fri" checked' in bad.body
    empty = client.post("/reminders", {"csrf": csrf, "text": "", "at": "08:00"})
    assert empty.status == 400 and "What to say" in empty.body
    with db(config) as connection:
        assert connection.execute("SELECT COUNT(*) FROM reminders").fetchone()[0] == 0
        assert connection.execute("SELECT COUNT(*) FROM commands").fetchone()[0] == 0
    huge = client.post("/reminders", {"csrf": csrf, "text": "x" * 70_000, "at": "08:00"})
    assert huge.status == 413


def test_a_senior_may_not_change_reminders_from_the_web(config, worker) -> None:
    assert set_password(config, H, "mum", "mum's own secret").returncode == 0
    mum = WebClient(worker.web_url or "")
    assert mum.sign_in(H, "mum", "mum's own secret").status == 303
    refused = mum.post("/reminders", {"csrf": mum.get("/reminders").csrf(), "text": "Walk",
                                      "at": "09:00"})  # fmt: skip
    assert refused.status == 403 and "cannot change reminders" in refused.body
    assert json.loads(family_cli(config, "reminder", "list", H).stdout) == []


def test_reminders_are_added_changed_and_removed(config, worker, device) -> None:
    client = signed_in(worker)
    csrf = client.get("/reminders").csrf()
    added = client.post("/reminders", {"csrf": csrf, "text": "Evening pills", "at": "19:30",
                                       "kind": "medication", "medication": "Aspirin",
                                       "days": ["mon", "wed"]})  # fmt: skip
    assert added.header("Location") == "/reminders?done=added"
    assert device.wait_until(lambda: any(m.type == "command.reminder.add"
                                         for m in device.handled), 20)  # fmt: skip
    (command,) = [m for m in device.handled if m.type == "command.reminder.add"]
    assert command.body.text == "Evening pills" and command.body.days == ["mon", "wed"]
    rid = command.body.reminder_id
    page = client.get("/reminders?done=added")
    assert (
        "The reminder was sent to the device." in page.body
        and "waiting for the device" in page.body
    )
    changed = client.post(f"/reminders/{rid}", {"csrf": csrf, "text": "Evening pills",
                                                "at": "20:00"})  # fmt: skip
    assert changed.status == 303
    assert device.wait_until(lambda: any(m.type == "command.reminder.change"
                                         for m in device.handled), 20)  # fmt: skip
    (change,) = [m.body for m in device.handled if m.type == "command.reminder.change"]
    assert change.at == "20:00" and len(change.days) == 7  # none ticked: every day
    assert "20:00 · Evening pills" in client.get("/reminders").body
    assert client.post(f"/reminders/{rid}/remove", {"csrf": csrf}).status == 303
    assert device.wait_until(lambda: any(m.type == "command.reminder.remove"
                                         for m in device.handled), 20)  # fmt: skip
    assert "Evening pills" not in client.get("/reminders").body


# --- device status and live events ---------------------------------------------------------


def test_device_status_is_kept_from_the_retained_presence(config, broker, device) -> None:
    # Published (retained) before the service runs: it still learns of it when it starts.
    online = create(DeviceStatus(state="online", reason="connected", battery=12), H, D)
    device.send(online, retain=True)
    with FamilyWorker(config, web="127.0.0.1:0") as worker:
        client = signed_in(worker)
        assert wait_for(lambda: "Online" in client.get("/health").body, 20)
        body = client.get("/health").body
        assert "12% (low)" in body
        older = create(DeviceStatus(state="offline", reason="connection_lost"), H, D)
        older = type(older)(**{**older.__dict__, "ts": "2020-01-01T00:00:00.000Z"})
        device.send(older)  # an old status that arrives late changes nothing
        time.sleep(1.0)
        assert "Online" in client.get("/health").body
        device.send(create(DeviceStatus(state="offline", reason="shutdown"), H, D), retain=True)
        assert wait_for(lambda: "Offline" in client.get("/health").body, 20)


def read_event(stream: http.client.HTTPResponse, timeout: float) -> dict:
    """The next `change` event of a server-sent event stream."""
    deadline = time.monotonic() + timeout
    event = None
    while time.monotonic() < deadline:
        line = stream.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event == "change":
            return json.loads(line[6:])
    raise AssertionError("no change event")


def test_live_events_say_when_an_alert_arrives(worker, device) -> None:
    client = signed_in(worker)
    parts = urlsplit(worker.web_url or "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request("GET", "/events", headers={"Cookie": f"sid={client.cookies['sid']}"})
    stream = connection.getresponse()
    assert stream.status == 200 and stream.getheader("Content-Type") == "text/event-stream"
    raise_alert(device, "h2", OTHER.device)  # another household's: not told here
    raise_alert(device)
    change = read_event(stream, 20)
    assert change["new_alert"] is True and "alerts" in change["changed"]
    connection.close()


def test_serve_refuses_a_bad_web_address(config) -> None:
    result = family_cli(config, "serve", "--web", "8080")
    assert result.returncode == 2 and "is not HOST:PORT" in result.stderr


def state_of(page: str) -> str:
    match = re.search(r'<body data-state="([0-9]+-[0-9a-f]{16})"', page)
    assert match, page[:300]
    return match[1]


def open_events(worker: FamilyWorker, client: WebClient, since: str) -> http.client.HTTPResponse:
    parts = urlsplit(worker.web_url or "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    cookie = f"sid={client.cookies['sid']}"
    connection.request("GET", f"/events?since={since}", headers={"Cookie": cookie})
    return connection.getresponse()


def test_a_change_before_the_stream_opened_is_told_at_once(worker, device) -> None:
    """A page rendered, then the alert, then the page's stream: it must not miss it, nor
    that it is a new alert (the page announces that to a screen reader)."""
    client = signed_in(worker)
    before = state_of(client.get("/").body)
    alert_id = raise_alert(device)
    assert wait_for(lambda: alert_id in client.get("/").body, 20)
    told = read_event(open_events(worker, client, before), 5)
    assert told == {"changed": [], "new_alert": True}
    current = state_of(client.get("/").body)
    # Another change, not an alert: told, as no new alert.
    csrf = client.get("/reminders").csrf()
    form = {"csrf": csrf, "text": "Water the plants", "at": "10:00", "kind": "other"}
    assert client.post("/reminders", form).status == 303
    told = read_event(open_events(worker, client, current), 5)
    assert told == {"changed": [], "new_alert": False}
    # A token without the alert count (a page from before it was added): the change is told,
    # a new alert is not claimed.
    told = read_event(open_events(worker, client, before.partition("-")[2]), 5)
    assert told == {"changed": [], "new_alert": False}
    current = state_of(client.get("/").body)
    quiet = open_events(worker, client, current)
    with pytest.raises((AssertionError, TimeoutError)):
        read_event(quiet, 2)  # nothing new since that page
