"""doctor-connect without the network: triage, working hours, the matcher's rules and the
engine on a real SQLite file, with a clock the tests move."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from protocol import (
    AppointmentRequest,
    ConsultationCancel,
    ConsultationRequest,
    ConsultationText,
    DoctorAccept,
    DoctorEnd,
    DoctorStatus,
    Message,
    create,
    decode,
    topics,
)
from services.doctor_connect import roster
from services.doctor_connect.config import Config
from services.doctor_connect.departments import GENERAL_PRACTICE, triage
from services.doctor_connect.engine import Engine, RefusalReason, Refused
from services.doctor_connect.hours import WorkingHours
from services.doctor_connect.matcher import Doctor, Matcher, Waiting
from services.doctor_connect.sessions import VideoRooms
from services.doctor_connect.store import Store
from tests.old_files import old_database

H, D = "household-1", "kitchen"
PRACTICE = "practice"
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).timestamp()  # a Monday


# --- triage and hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said, department",
    [
        (["chest pain"], "cardiology"),
        (["I can't stop coughing"], "respiratory"),
        (["my blood sugar is high"], "endocrinology"),
        (["an itchy rash on my arm"], "dermatology"),
        (["I feel so lonely and sad"], "psychology"),
        (["I keep forgetting things"], "geriatrics"),
        (["my toe hurts"], GENERAL_PRACTICE),
        ([], GENERAL_PRACTICE),
    ],
)
def test_symptoms_are_triaged_to_a_department(said: list[str], department: str) -> None:
    assert triage(said) == department


def test_working_hours() -> None:
    hours = WorkingHours.parse("mon-fri 08:00-16:00")
    monday = dt.datetime(2026, 11, 23, 9, 0)
    assert hours.contains(monday)
    assert not hours.contains(monday.replace(hour=17))
    assert not hours.contains(monday + dt.timedelta(days=5))  # Saturday
    assert hours.next_start(monday.replace(hour=17)) == dt.datetime(2026, 11, 24, 8, 0)
    night = WorkingHours.parse("daily 22:00-06:00")
    assert night.contains(monday.replace(hour=3)) and not night.contains(monday)
    assert WorkingHours.parse("daily 00:00-24:00").around_the_clock
    with pytest.raises(ValueError):
        WorkingHours.parse("someday 08:00-16:00")


# --- the matcher ------------------------------------------------------------------------------

ALWAYS = WorkingHours.parse("daily 00:00-24:00")
LOCAL = dt.datetime(2026, 11, 23, 10, 0)


def doctor(doctor_id: str, department: str = GENERAL_PRACTICE, **kw) -> Doctor:
    kw.setdefault("state", "available")
    kw.setdefault("hours", ALWAYS)
    return Doctor(doctor_id, f"Dr. {doctor_id}", department, **kw)


def waiting(request_id: str, seq: int, department: str = GENERAL_PRACTICE, **kw) -> Waiting:
    kw.setdefault("urgency", "soon")
    kw.setdefault("deadline", 1e12)
    return Waiting(request_id, department, created=float(seq), seq=seq, **kw)


def test_the_least_loaded_free_doctor_of_the_department_gets_the_request() -> None:
    matcher = Matcher(consult_s=600)
    matcher.put_doctor(doctor("a", served=5))
    matcher.put_doctor(doctor("b", served=1))
    matcher.put_doctor(doctor("c", served=0, state="busy"))
    matcher.put_doctor(doctor("d", "cardiology", served=0))
    matcher.add(waiting("r1", 1))
    assert [(r.id, d.id) for r, d in matcher.match(LOCAL)] == [("r1", "b")]
    assert matcher.doctors["b"].open_sessions == 1


def test_urgent_requests_are_served_first_and_the_rest_in_arrival_order() -> None:
    matcher = Matcher(consult_s=600)
    for n, urgency in enumerate(["routine", "soon", "urgent", "soon"], 1):
        matcher.add(waiting(f"r{n}", n, urgency=urgency))
    estimates = matcher.estimates(LOCAL)
    assert [estimates[f"r{n}"].position for n in (1, 2, 3, 4)] == [4, 2, 1, 3]
    matcher.put_doctor(doctor("a"))
    assert [r.id for r, _ in matcher.match(LOCAL)] == ["r3"]


def test_a_doctor_who_speaks_the_language_is_waited_for_when_there_is_one() -> None:
    matcher = Matcher(consult_s=600)
    matcher.put_doctor(doctor("en", languages=frozenset({"en"})))
    matcher.put_doctor(doctor("de", languages=frozenset({"de"}), state="busy"))
    matcher.add(waiting("german", 1, language="de"))
    matcher.add(waiting("polish", 2, language="pl"))  # nobody speaks it: anyone will do
    assert [(r.id, d.id) for r, d in matcher.match(LOCAL)] == [("polish", "en")]
    matcher.doctors["de"].state = "available"
    assert [(r.id, d.id) for r, d in matcher.match(LOCAL)] == [("german", "de")]


def test_doctors_outside_their_hours_are_not_free() -> None:
    matcher = Matcher(consult_s=600)
    matcher.put_doctor(doctor("a", hours=WorkingHours.parse("mon-fri 08:00-09:00")))
    matcher.add(waiting("r1", 1))
    assert matcher.match(LOCAL) == []


def test_wait_estimates_grow_with_the_position_and_shrink_with_doctors() -> None:
    matcher = Matcher(consult_s=600)
    matcher.put_doctor(doctor("a", state="busy"))
    for n in range(1, 5):
        matcher.add(waiting(f"r{n}", n))
    assert [matcher.estimate(f"r{n}", LOCAL).wait_s for n in (1, 2, 4)] == [600, 1200, 2400]
    matcher.put_doctor(doctor("b", state="busy"))
    assert [matcher.estimate(f"r{n}", LOCAL).wait_s for n in (1, 2, 4)] == [600, 600, 1200]


def test_a_specialist_request_falls_back_to_a_gp_when_the_promise_would_not_be_kept() -> None:
    matcher = Matcher(consult_s=600)
    matcher.put_doctor(doctor("gp", state="busy"))
    matcher.add(waiting("no-cardiologist", 1, "cardiology", deadline=10_000))
    matcher.put_doctor(doctor("derm", "dermatology", state="busy"))
    matcher.add(waiting("derm-ok", 2, "dermatology", deadline=10_000))
    matcher.add(waiting("derm-late", 3, "dermatology", deadline=50))
    moved = matcher.fallbacks(LOCAL, now=100)
    assert sorted(r.id for r in moved) == ["derm-late", "no-cardiologist"]
    assert matcher.get("no-cardiologist").department == GENERAL_PRACTICE
    assert matcher.get("derm-ok").department == "dermatology"


def test_video_join_addresses_are_signed_and_expire() -> None:
    rooms = VideoRooms("https://video.example.org/room", "secret", token_ttl_s=60)
    room = rooms.create_room()
    url = rooms.join_url(room, "patient", now=1000)
    assert url.startswith(f"https://video.example.org/room/{room}?")
    assert rooms.verify(url, now=1030)
    assert not rooms.verify(url, now=1061)
    assert not rooms.verify(url.replace("role=patient", "role=doctor"), now=1030)


# --- the engine on SQLite -------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_engine(path: Path, clock: Clock, timezone: str = "UTC", **timings) -> Engine:
    config = Config()
    config.service.practice = PRACTICE
    config.service.timezone = timezone
    config.video.secret = "test"
    for key, value in timings.items():
        setattr(config.timings, key, value)
    return Engine(Store(path), config, clock=clock)


def add_doctor(engine: Engine, doctor_id: str, department: str, state: str = "available") -> None:
    new = roster.NewDoctor(doctor_id, f"Dr. {doctor_id.title()}", department, state=state)
    roster.save(engine.store, roster.build(new))
    engine.tick()


def sent(engine: Engine) -> list[Message]:
    """What the engine queued for publishing, decoded as a receiver would, then cleared."""
    rows = engine.store.pending(100_000)
    engine.store.sent([seq for seq, _, _ in rows])
    return [decode(payload, None, topic=topic) for _, topic, payload in rows]


def request(engine: Engine, device: str = D, **fields) -> Message:
    fields.setdefault("mode", "video")
    message = create(ConsultationRequest(**fields), H, device)
    engine.handle(message)
    return message


def from_doctor(engine: Engine, doctor_id: str, body) -> None:
    engine.handle(create(body, PRACTICE, doctor_id))


def test_a_video_request_is_assigned_with_a_room_for_both_sides(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "dc.sqlite3", Clock(MONDAY_10))
    add_doctor(engine, "weber", "general_practice")
    asked = request(engine)
    out = sent(engine)
    assert [m.type for m in out] == [
        "consultation.assigned",
        "consultation.session",
        "doctor.session",
    ]
    assigned, session, to_doctor = (m.body for m in out)
    assert assigned.doctor == "Dr. Weber" and assigned.request_id == asked.id
    assert session.room_id == to_doctor.room_id and session.room_id
    assert "role=patient" in session.join_url and "role=doctor" in to_doctor.join_url
    assert out[2].device == "weber" and out[2].household == PRACTICE
    assert (to_doctor.household, to_doctor.device) == (H, D)


def test_refusals_change_nothing(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "dc.sqlite3", Clock(MONDAY_10))
    add_doctor(engine, "weber", "general_practice", state="busy")
    with pytest.raises(Refused) as info:
        request(engine, department="astrology")
    assert info.value.reason == RefusalReason.UNKNOWN_DEPARTMENT
    mine = request(engine)
    sent(engine)
    with pytest.raises(Refused) as info:  # another device of the household
        engine.handle(create(ConsultationCancel(mine.id), H, "bedroom"))
    assert info.value.reason == RefusalReason.NOT_YOURS
    with pytest.raises(Refused) as info:
        from_doctor(engine, "stranger", DoctorStatus("available"))
    assert info.value.reason == RefusalReason.UNKNOWN_DOCTOR
    assert sent(engine) == [] and len(engine.matcher) == 1


def test_a_restart_keeps_waiting_requests_and_open_sessions(tmp_path: Path) -> None:
    path = tmp_path / "dc.sqlite3"
    clock = Clock(MONDAY_10)
    engine = make_engine(path, clock)
    add_doctor(engine, "weber", "general_practice")
    first = request(engine)
    second = request(engine, device="bedroom")
    sent(engine)
    engine.store.close()

    again = make_engine(path, clock)
    assert [r.id for r in again.matcher.waiting()] == [second.id]
    assert again.matcher.doctors["weber"].open_sessions == 1
    from_doctor(again, "weber", DoctorEnd(first.id))
    out = sent(again)
    assert [(m.type, m.body.request_id) for m in out[:2]] == [
        ("consultation.ended", first.id),
        ("consultation.assigned", second.id),
    ]


def test_a_consultation_not_accepted_in_time_goes_to_another_doctor(tmp_path: Path) -> None:
    """The doctor's app went quiet, or the broker passed the session to nobody: the senior
    must not wait in an empty room. After `accept_s` the consultation goes to another
    doctor; one that was accepted is never taken away."""
    clock = Clock(MONDAY_10)
    engine = make_engine(tmp_path / "dc.sqlite3", clock, accept_s=120)
    add_doctor(engine, "weber", "general_practice")
    first = request(engine)
    assert [m.device for m in sent(engine) if m.type == "doctor.session"] == ["weber"]
    add_doctor(engine, "braun", "general_practice")
    second = request(engine, device="bedroom")
    assert [m.device for m in sent(engine) if m.type == "doctor.session"] == ["braun"]
    from_doctor(engine, "braun", DoctorAccept(second.id))
    clock.now += 119
    engine.tick()
    assert sent(engine) == []  # not yet
    clock.now += 2
    engine.tick()
    out = sent(engine)
    assert [(m.type, m.device) for m in out if m.type.startswith("doctor.")] == [
        ("doctor.session.cancelled", "weber")  # braun is busy with the one he accepted
    ]
    assert [(m.type, m.body.request_id) for m in out if m.device == D] == [
        ("consultation.queued", first.id)
    ]
    from_doctor(engine, "braun", DoctorEnd(second.id))
    out = sent(engine)
    assert [(m.type, m.device) for m in out if m.type == "doctor.session"] == [
        ("doctor.session", "braun")  # free again: asked before weber, who let it pass
    ]
    with pytest.raises(Refused) as info:  # weber accepts too late: not his any more
        from_doctor(engine, "weber", DoctorAccept(first.id))
    assert info.value.reason == RefusalReason.NOT_YOURS


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York", "Asia/Tokyo"])
def test_with_one_doctor_an_unaccepted_session_is_sent_to_them_anew_then_they_are_away(
    tmp_path: Path, timezone: str
) -> None:
    """A session the broker passed to nobody is not lost for good: with no other doctor it
    goes to the same one again once they have been passed over for `accept_s` (in the
    practice's time zone, whatever the machine's). A second one let pass takes the doctor
    for away: the senior waits in the queue rather than being offered a new room every few
    minutes, until the app says it is available again."""
    clock = Clock(MONDAY_10)
    engine = make_engine(tmp_path / "dc.sqlite3", clock, timezone=timezone, accept_s=120)
    add_doctor(engine, "weber", "general_practice")
    asked = request(engine)
    first = [m for m in sent(engine) if m.type == "doctor.session"]
    clock.now += 121
    engine.tick()
    assert [m.type for m in sent(engine)] == ["doctor.session.cancelled", "consultation.queued"]
    clock.now += 60
    engine.tick()
    assert sent(engine) == []  # others first (there are none): not yet offered again
    clock.now += 61
    engine.tick()
    again = [m for m in sent(engine) if m.type == "doctor.session"]
    assert [m.body.request_id for m in again] == [asked.id]
    assert again[0].id != first[0].id  # a new message, not a copy a receiver would drop
    clock.now += 121
    engine.tick()  # let pass a second time: away
    assert [m.type for m in sent(engine)] == ["doctor.session.cancelled", "consultation.queued"]
    assert engine.matcher.doctors["weber"].state == "busy"
    clock.now += 1000
    engine.tick()
    assert sent(engine) == []
    from_doctor(engine, "weber", DoctorStatus("available"))  # the app is back
    assert [m.type for m in sent(engine) if m.type == "doctor.session"] == ["doctor.session"]
    from_doctor(engine, "weber", DoctorAccept(asked.id))
    clock.now += 1000
    engine.tick()
    assert sent(engine) == []  # accepted: kept


def test_a_doctor_who_let_a_consultation_pass_is_not_asked_first_after_a_restart(
    tmp_path: Path,
) -> None:
    """Adler let one pass; the service restarts: Zimmer, free, is asked first (Adler would
    be, by name), and Adler's second pass in a row still takes him for away. Both were kept
    in memory only. Back, he starts afresh: one more pass does not take him away again."""
    clock = Clock(MONDAY_10)
    engine = make_engine(tmp_path / "dc.sqlite3", clock, accept_s=120)
    add_doctor(engine, "adler", "general_practice")
    first = request(engine)
    clock.now += 121
    engine.tick()
    sent(engine)
    engine.store.db.close()

    engine = make_engine(tmp_path / "dc.sqlite3", clock, accept_s=120)  # restarted
    add_doctor(engine, "zimmer", "general_practice")
    assert [(m.type, m.device) for m in sent(engine) if m.type == "doctor.session"] == [
        ("doctor.session", "zimmer")
    ]
    from_doctor(engine, "zimmer", DoctorAccept(first.id))
    clock.now += 121  # Adler's turn again
    second = request(engine, device="bedroom")
    assert [m.device for m in sent(engine) if m.type == "doctor.session"] == ["adler"]
    clock.now += 121
    engine.tick()
    assert engine.matcher.doctors["adler"].state == "busy"
    assert [(m.type, m.body.request_id) for m in sent(engine) if m.device == "bedroom"] == [
        ("consultation.queued", second.id)
    ]
    clock.now += 121
    from_doctor(engine, "adler", DoctorStatus("available"))  # back: starts afresh
    assert [m.body.request_id for m in sent(engine) if m.type == "doctor.session"] == [second.id]
    clock.now += 121
    engine.tick()  # one pass after coming back is not two in a row
    assert engine.matcher.doctors["adler"].state == "available"


def test_a_roster_from_before_passes_were_kept_is_read(tmp_path: Path) -> None:
    path = old_database(
        tmp_path / "old.sqlite3",
        "CREATE TABLE doctors (id TEXT PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT"
        " NULL, hours TEXT NOT NULL, languages TEXT NOT NULL, phone TEXT, state TEXT NOT NULL,"
        " served INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL)",
        ("INSERT INTO doctors VALUES ('weber', 'Dr. Weber', 'general_practice',"
         " 'mon-fri 08:00-18:00', 'en', NULL, 'available', 3, 0)", ()),
    )  # fmt: skip
    store = Store(path)
    try:
        (weber,) = roster.load(store)
        assert (weber.served, weber.missed, weber.passed_until) == (3, 0, dt.datetime.min)
    finally:
        store.db.close()


def test_a_doctor_writing_in_a_text_consultation_has_taken_it(tmp_path: Path) -> None:
    clock = Clock(MONDAY_10)
    engine = make_engine(tmp_path / "dc.sqlite3", clock, accept_s=120)
    add_doctor(engine, "weber", "general_practice")
    text = request(engine, mode="text")
    sent(engine)
    engine.handle(create(ConsultationText(text.id, "doctor", "Hello, how can I help?"),
                         PRACTICE, "weber", on="doctor_text"))  # fmt: skip
    sent(engine)
    clock.now += 1000
    engine.tick()
    assert sent(engine) == []  # never taken away from the doctor who is writing


def test_text_lines_pass_only_between_the_senior_and_the_doctor_holding_it(
    tmp_path: Path,
) -> None:
    engine = make_engine(tmp_path / "dc.sqlite3", Clock(MONDAY_10))
    add_doctor(engine, "weber", "general_practice")
    text = request(engine, mode="text")
    video = request(engine, device="bedroom")  # waits: weber is busy
    (handed,) = [m.body for m in sent(engine) if m.type == "doctor.session"]
    assert handed.conversation_topic == topics.doctor_topic(PRACTICE, "weber", "doctor_text")

    def senior(body, device: str = D, household: str = H) -> None:
        engine.handle(create(body, household, device))

    senior(ConsultationText(text.id, "senior", "My knee hurts."))
    (to_doctor,) = sent(engine)
    assert (to_doctor.kind, to_doctor.device, to_doctor.body.text) == (
        "doctor_session", "weber", "My knee hurts."
    )  # fmt: skip
    engine.handle(create(ConsultationText(text.id, "doctor", "Since when?"), PRACTICE, "weber",
                         on="doctor_text"))  # fmt: skip
    (to_device,) = sent(engine)
    assert (to_device.kind, to_device.household, to_device.device) == ("conversation", H, D)
    senior(to_device.body)  # the line passed on, heard back on the device's topic: ignored
    assert sent(engine) == []
    refusals = {
        "another device": lambda: senior(ConsultationText(text.id, "senior", "hi"), "bedroom"),
        "not a text one": lambda: senior(ConsultationText(video.id, "senior", "hi"), "bedroom"),
        "a senior as the doctor": lambda: engine.handle(create(
            ConsultationText(text.id, "senior", "hi"), PRACTICE, "weber", on="doctor_text")),
    }  # fmt: skip
    reasons = {}
    for what, attempt in refusals.items():
        with pytest.raises(Refused) as info:
            attempt()
        reasons[what] = info.value.reason
    assert reasons == {
        "another device": RefusalReason.NOT_YOURS,
        "not a text one": RefusalReason.NOT_IN_TEXT,
        "a senior as the doctor": RefusalReason.NOT_YOURS,
    }
    from_doctor(engine, "weber", DoctorEnd(text.id))
    sent(engine)
    with pytest.raises(Refused) as info:  # over: nothing passes any more
        senior(ConsultationText(text.id, "senior", "One more thing"))
    assert info.value.reason == RefusalReason.NOT_IN_TEXT
    assert sent(engine) == []


def test_appointments_are_confirmed_and_reminded(tmp_path: Path) -> None:
    clock = Clock(MONDAY_10)
    engine = make_engine(tmp_path / "dc.sqlite3", clock, reminder_before_s=1800)
    add_doctor(engine, "heart", "cardiology", state="offline")
    message = create(AppointmentRequest("cardiology", "2026-11-24", "11:00"), H, D)
    engine.handle(message)
    (confirmed,) = sent(engine)
    assert confirmed.type == "appointment.confirmed"
    assert confirmed.body.doctor == "Dr. Heart"
    assert confirmed.body.starts_at == "2026-11-24T11:00:00.000Z"
    with pytest.raises(Refused) as info:  # the same slot: the only cardiologist is taken
        engine.handle(create(AppointmentRequest("cardiology", "2026-11-24", "11:10"), H, D))
    assert info.value.reason == RefusalReason.NO_SLOT
    with pytest.raises(Refused) as info:
        engine.handle(create(AppointmentRequest("cardiology", "2026-11-20", "11:00"), H, D))
    assert info.value.reason == RefusalReason.IN_THE_PAST
    clock.now = dt.datetime(2026, 11, 24, 10, 20, tzinfo=dt.UTC).timestamp()
    engine.tick()
    assert sent(engine) == []
    clock.now += 15 * 60
    engine.tick()
    (reminder,) = sent(engine)
    assert reminder.type == "appointment.reminder" and reminder.body.minutes_before == 25
    engine.tick()
    assert sent(engine) == []


def test_the_cli_changes_reach_a_running_engine(tmp_path: Path) -> None:
    engine = make_engine(tmp_path / "dc.sqlite3", Clock(MONDAY_10))
    add_doctor(engine, "weber", "general_practice", state="offline")
    asked = request(engine)
    assert [m.type for m in sent(engine)] == ["consultation.queued"]
    other = Store(tmp_path / "dc.sqlite3")  # what `doctor-connect doctor set-status` does
    roster.set_state(other, "weber", "available")
    engine.tick()
    out = sent(engine)
    assert [(m.type, m.body.request_id) for m in out[:1]] == [("consultation.assigned", asked.id)]


def test_positions_wait_behind_assignments_and_a_stale_one_is_never_sent(tmp_path: Path) -> None:
    clock = Clock(MONDAY_10)
    engine = make_engine(tmp_path / "dc.sqlite3", clock, position_interval_s=0)
    add_doctor(engine, "weber", "general_practice")
    first, second, third = request(engine), request(engine), request(engine)
    sent(engine)
    from_doctor(engine, "weber", DoctorEnd(first.id))  # second is assigned
    engine.tick()  # third moves up
    from_doctor(engine, "weber", DoctorEnd(second.id))  # third is assigned
    out = [(m.type, getattr(m.body, "request_id", None)) for m in sent(engine)]
    assert ("consultation.position", third.id) not in out  # superseded by its assignment
    assert out.index(("consultation.assigned", third.id)) > out.index(
        ("consultation.assigned", second.id)
    )
    fourth, fifth = request(engine), request(engine)
    sent(engine)
    from_doctor(engine, "weber", DoctorEnd(third.id))
    engine.tick()
    out = [(m.type, getattr(m.body, "request_id", None)) for m in sent(engine)]
    assert out[-1] == ("consultation.position", fifth.id)  # after the assignment it follows
    assert out.index(("consultation.assigned", fourth.id)) < len(out) - 1


def test_the_roster_cli_refuses_what_it_cannot_take_with_one_line(tmp_path: Path) -> None:
    from tests.doctor_connect_process import COMMAND

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        database = str(tmp_path / "dc.sqlite3")
        return subprocess.run(
            [COMMAND, "--database", database, *args], capture_output=True, text=True, timeout=30
        )

    assert (
        cli("doctor", "add", "herz", "--name", "Dr. Herz", "--department", "heart").returncode == 0
    )
    listed = json.loads(cli("doctor", "list", "--json").stdout)
    assert [(d["id"], d["department"], d["hours"]) for d in listed] == [
        ("herz", "cardiology", "mon-fri 08:00-16:00")
    ]
    for args, message in [
        (("doctor", "add", "x", "--name", "X", "--department", "astrology"), "no department"),
        (("doctor", "add", "x", "--name", "X", "--department", "gp", "--hours", "soon"), "DAYS"),
        (("doctor", "set-status", "nobody", "busy"), "no doctor 'nobody'"),
    ]:
        result = cli(*args)
        assert result.returncode == 2 and result.stderr.startswith("doctor-connect: ")
        assert message in result.stderr and len(result.stderr.splitlines()) == 1


def test_the_dead_letter_interval_is_configured_checked_and_used(tmp_path: Path) -> None:
    from services.doctor_connect.config import ConfigError, load_config
    from services.doctor_connect.service import DoctorConnect

    path = tmp_path / "dc.toml"
    database = tmp_path / "dc.sqlite3"
    path.write_text(f'[service]\ndead_letter_retry_s = 5\ndatabase = "{database}"\n')
    config = load_config(path)
    assert config.service.dead_letter_retry_s == 5.0
    service = DoctorConnect(config)
    try:
        assert service.mqtt.dead_letter_retry_s == 5.0
    finally:
        service.store.close()
    path.write_text("[service]\ndead_letter_retry_s = 0\n")
    with pytest.raises(ConfigError, match="dead_letter_retry_s must be above 0"):
        load_config(path)
