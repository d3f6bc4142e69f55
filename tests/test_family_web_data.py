"""What the web console reads and renders, without a server: adherence by the day a dose
was due, readings by when they were taken, presence kept newest first, the sign-in
throttle, the pages escaping what members and devices typed, the web config keys."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from protocol import CommandDone, DeviceStatus, Message, ReminderAdd, ReminderChange, create
from protocol.schema import utc_timestamp
from services.family import households, presence, reminders
from services.family.config import ConfigError, config_from_dict
from services.family.households import Household, Member
from services.family.outbox import Outbox
from services.family.store import Store
from services.family.web import auth, data, render

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=BERLIN)
HOUSEHOLD = Household(
    id="h1",
    senior="Mum <b>",
    devices=("speaker",),
    timezone="Europe/Berlin",
    members=(Member("mum", "Mum", role="senior"), Member("anna", "Anna", relation="daughter")),
)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "family.sqlite3")
    households.add(store, HOUSEHOLD)
    households.add(store, Household(id="h2", senior="Joe", devices=("phone",)))
    yield store
    store.close()


def event(store: Store, household: str, type_: str, body: dict, received: dt.datetime) -> None:
    store.db.execute(
        "INSERT INTO events (id, household, device, type, day, received, body)"
        " VALUES (?, ?, 'speaker', ?, ?, ?, ?)",
        (str(uuid.uuid4()), household, type_,
         received.date().isoformat(), received.timestamp(), json.dumps(body)),
    )  # fmt: skip


def test_adherence_counts_a_dose_on_the_day_it_was_due(store: Store) -> None:
    yesterday_evening = NOW - dt.timedelta(days=1) + dt.timedelta(hours=10)  # 22:00 local
    late = yesterday_evening + dt.timedelta(hours=3)  # reported after midnight
    due = utc_timestamp(yesterday_evening.astimezone(dt.UTC))
    event(store, "h1", "event.reminder.taken", {"due": due}, late)
    event(store, "h1", "event.reminder.missed", {"due": utc_timestamp(NOW.astimezone(dt.UTC))},
          NOW)  # fmt: skip
    event(store, "h2", "event.reminder.missed", {"due": due}, late)  # another household's
    old = NOW - dt.timedelta(days=40)
    event(store, "h1", "event.reminder.taken", {"due": utc_timestamp(old.astimezone(dt.UTC))},
          old)  # fmt: skip
    days = data.adherence(store.db, HOUSEHOLD, NOW.timestamp())
    assert len(days) == 28 and days[-1].day == "2026-11-23" and days[0].day == "2026-10-27"
    assert (days[-2].taken, days[-2].missed) == (1, 0)
    assert (days[-1].taken, days[-1].missed) == (0, 1)
    assert sum(d.taken + d.missed for d in days) == 2
    chart = render.adherence_chart(days)
    assert "1 of 2 reminders taken (50%)" in chart and chart.count('class="taken"') == 28


def test_readings_are_placed_by_when_they_were_taken(store: Store) -> None:
    for days_ago, value in ((3, 130.0), (1, 140.0), (45, 170.0)):
        taken = (NOW - dt.timedelta(days=days_ago)).astimezone(dt.UTC)
        event(store, "h1", "event.health.reading", {"measure": "blood_pressure", "value": value,
              "diastolic": 80.0, "taken_at": utc_timestamp(taken)}, NOW)  # fmt: skip
    series = data.readings(store.db, HOUSEHOLD, NOW.timestamp())
    assert [r.value for r in series["blood_pressure"]] == [130.0, 140.0]  # not the old one
    chart = render.line_chart("blood_pressure", series["blood_pressure"], HOUSEHOLD)
    assert chart.count("<polyline") == 2 and chart.count("<circle") == 4
    assert "latest 140/80 mmHg" in chart


def status(state: str, ts: str, battery: int | None = None) -> Message:
    message = create(DeviceStatus(state=state, reason="connected", battery=battery), "h1",
                     "speaker")  # fmt: skip
    return Message(body=message.body, household="h1", device="speaker", id=message.id, ts=ts)


def test_a_late_older_status_does_not_hide_the_newer_one(store: Store) -> None:
    assert presence.record_status(store, status("online", "2026-11-23T10:00:00.000Z", 80))
    assert not presence.record_status(store, status("offline", "2026-11-23T09:00:00.000Z"))
    (speaker,) = presence.statuses(store.db, "h1", ("speaker",))
    assert speaker["state"] == "online" and speaker["battery"] == 80
    assert speaker["heard"] == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC).timestamp()
    (never,) = presence.statuses(store.db, "h2", ("phone",))
    assert never["state"] is None and never["heard"] is None
    html = render.health_page({}, [speaker, never], HOUSEHOLD, speaker["heard"] + 60)
    assert "Online" in html and "80%" in html and "Never heard of" in html


def test_the_throttle_slows_guessing_for_a_while() -> None:
    throttle = auth.Throttle(limit=3, window_s=60)
    key = ("h1", "anna")
    for t in range(3):
        assert not throttle.blocked(key, now=t)
        throttle.failed(key, now=t)
    assert throttle.blocked(key, now=10) and not throttle.blocked(("h1", "ben"), now=10)
    assert not throttle.blocked(key, now=70)  # the window passed


def test_what_people_typed_is_escaped_in_the_pages() -> None:
    html = render.page(
        "Alerts", "", member=Member("anna", "<script>x</script>"), household=HOUSEHOLD, csrf="t"
    )
    assert "<script>x</script>" not in html and "&lt;script&gt;" in html
    assert "Mum &lt;b&gt;" in html
    reminder = {"id": "r1", "text": '"><img src=x>', "at": "08:00", "command": "sent",
                "kind": "other"}  # fmt: skip
    html = render.reminders_page([reminder], [], "t")
    assert "<img" not in html and "&quot;&gt;&lt;img" in html


def test_a_reminder_the_device_refused_or_did_not_confirm_says_so(store: Store) -> None:
    service = reminders.Reminders(store, Outbox(store, {}, "w1", claims=False))

    def refuse(command_id: str, body, detail: str) -> None:
        service.done(CommandDone(command_id=command_id, command=body.TYPE, ok=False,
                                 detail=detail), "h1")  # fmt: skip

    add = ReminderAdd(reminder_id="pills", kind="medication", text="Pills", at="08:00")
    refuse(service.request(add, "h1", "anna")[0], add, "no room for more reminders")
    walk = ReminderAdd(reminder_id="walk", kind="other", text="A walk", at="10:00")
    service.done(CommandDone(command_id=service.request(walk, "h1", "anna")[0],
                             command=walk.TYPE), "h1")  # fmt: skip
    service.request(ReminderChange(reminder_id="walk", at="11:00"), "h1", "anna")
    store.db.execute("UPDATE commands SET created = created - 3600 WHERE state = 'sent'")
    service.expire(600.0)
    items = {r["id"]: r for r in data.reminder_list(store.db, HOUSEHOLD)}
    assert items["pills"]["state"] == "failed" and items["walk"]["at"] == "10:00"
    assert data.reminder(store.db, HOUSEHOLD, "pills") is None  # nothing there to change
    html = render.reminders_page(list(items.values()), [], "t")
    pills = html[html.index('data-reminder="pills"') :].split("</article>")[0]
    assert "the device could not add it: no room for more reminders" in pills
    assert "/reminders/pills" not in pills  # no change or remove for what is not there
    walk_html = html[html.index('data-reminder="walk"') :].split("</article>")[0]
    assert "the last change failed: the device did not confirm" in walk_html


def test_a_medication_reminder_without_the_medicines_name_says_it_is_not_tracked() -> None:
    """Carla types "Morning pills" as a medication and no name: the console tells her it is
    said once and a missed dose never reported, so she is not left waiting for an alert
    that cannot come. Named, or another kind, it says nothing of the sort."""
    unnamed = {"id": "am", "text": "Morning pills", "at": "08:00", "kind": "medication",
               "command": "confirmed"}  # fmt: skip
    named = {**unnamed, "id": "pm", "medication": "Ramipril"}
    walk = {**unnamed, "id": "walk", "kind": "other", "text": "A walk"}
    html = render.reminders_page([unnamed, named, walk], [], "t")
    notes = {
        rid: "a missed dose is not reported"
        in html[html.index(f'data-reminder="{rid}"') :].split("</article>")[0]
        for rid in ("am", "pm", "walk")
    }
    assert notes == {"am": True, "pm": False, "walk": False}
    assert "then a missed dose is reported" in html  # the form's field says why to name it


def test_web_config_keys_are_checked() -> None:
    config = config_from_dict({"web": {"listen": "127.0.0.1:8080", "session_hours": 2}})
    assert config.web.listen == "127.0.0.1:8080" and config.web.session_hours == 2.0
    for bad in ({"listen": "8080"}, {"listen": "host:port"}, {"session_hours": 0},
                {"secure_cookies": "yes"}, {"port": 1}):  # fmt: skip
        with pytest.raises(ConfigError, match="web"):
            config_from_dict({"web": bad})


def test_trail_entries_are_in_words() -> None:
    assert render._detail("sent", "alert by mqtt") == "the alert to the app"
    assert render._detail("sent", "escalation by sms") == "an escalation by SMS"
    assert render._detail("sent", "ack by mqtt") == "the answer, to the device"
    undelivered = "alert by mqtt: no subscriber (0x10 No matching subscribers)"
    assert render._detail("undelivered", undelivered) == (
        "the alert to the app: no subscriber (0x10 No matching subscribers)"
    )
    assert render._detail("escalated", "step 1: contacts") == "step 1: contacts"
