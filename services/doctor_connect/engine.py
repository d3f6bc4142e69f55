"""The doctor-connect engine: what each incoming message and each tick of the clock does
to the roster, the queues, the sessions and the appointments, and what it tells devices
and doctors.

Every change and the messages it causes are committed in one transaction (`Store`) before
`handle` returns, which is before the MQTT layer acknowledges the incoming message. A
message that cannot be served raises `Refused` with a machine reason; nothing is changed
then. The engine holds no network code: the service publishes the outbox.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import zoneinfo
from collections.abc import Callable
from typing import Any

from protocol import (
    AppointmentConfirmed,
    AppointmentReminder,
    AppointmentRequest,
    ConsultationAssigned,
    ConsultationCancel,
    ConsultationCancelled,
    ConsultationEnded,
    ConsultationPosition,
    ConsultationQueued,
    ConsultationRequest,
    ConsultationSession,
    ConsultationText,
    DoctorAccept,
    DoctorEnd,
    DoctorSession,
    DoctorSessionCancelled,
    DoctorStatus,
    Message,
    create,
    topics,
    utc_timestamp,
)
from services.doctor_connect import roster
from services.doctor_connect.config import Config
from services.doctor_connect.departments import (
    GENERAL_PRACTICE,
    UnknownDepartment,
    department_id,
    triage,
)
from services.doctor_connect.matcher import Doctor, Matcher, Waiting
from services.doctor_connect.sessions import SessionMaker, VideoRooms
from services.doctor_connect.store import Store

log = logging.getLogger("services.doctor_connect.engine")

OPEN = ("assigned", "accepted")  # request states that hold a doctor
MISSED_TO_AWAY = 2  # consultations in a row a doctor lets pass before taken for away


class RefusalReason:
    """Why a valid message could not be served (sent back to its sender, and counted)."""

    UNKNOWN_DEPARTMENT = "unknown_department"
    UNKNOWN_REQUEST = "unknown_request"
    NOT_YOURS = "not_yours"  # a request of another device, a session of another doctor
    UNKNOWN_DOCTOR = "unknown_doctor"
    NO_SLOT = "no_slot"
    IN_THE_PAST = "in_the_past"
    NOT_HANDLED = "not_handled"  # a type doctor-connect does not take
    NOT_IN_TEXT = "not_in_text"  # a line for a consultation not in a text session now


class Refused(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason} ({detail})" if detail else reason)
        self.reason = reason
        self.detail = detail


def _ts(epoch: float) -> str:
    return utc_timestamp(dt.datetime.fromtimestamp(epoch, dt.UTC))


class Engine:
    def __init__(
        self,
        store: Store,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        on_outgoing: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.timings = config.timings
        self.practice = config.service.practice
        self.tz = zoneinfo.ZoneInfo(config.service.timezone)
        self.clock = clock
        self.on_outgoing = on_outgoing
        self.matcher = Matcher(self.timings.consult_s)
        video = config.video
        rooms = VideoRooms(video.base_url, video.secret or _random_secret(), video.token_ttl_s)
        self.sessions = SessionMaker(rooms, video.practice_phone)
        self._told: dict[str, tuple[int, float]] = {}  # request -> (position, when told)
        self._roster_version: tuple[Any, ...] | None = None
        self.assigned = 0  # consultations handed to doctors since the start
        self._load()

    # --- start-up -----------------------------------------------------------------------

    def _load(self) -> None:
        """Rebuild the in-memory queues from the store: nothing waiting is forgotten."""
        self._reload_roster()
        for row in self.store.query(
            "SELECT doctor, COUNT(*) FROM requests WHERE state IN (?, ?) GROUP BY doctor", OPEN
        ):
            if row[0] in self.matcher.doctors:
                self.matcher.doctors[row[0]].open_sessions = row[1]
        for row in self.store.query("SELECT * FROM requests WHERE state = 'waiting' ORDER BY seq"):
            self.matcher.add(self._waiting(row))
        log.info(
            "doctor-connect state loaded: %d doctors, %d waiting",
            len(self.matcher.doctors),
            len(self.matcher),
        )

    @staticmethod
    def _waiting(row: Any) -> Waiting:
        return Waiting(
            id=row["id"],
            department=row["department"],
            urgency=row["urgency"],
            created=row["created"],
            deadline=row["deadline"],
            seq=row["seq"],
            language=row["language"],
            wanted=row["wanted"],
            fallback=row["department"] != row["wanted"],
        )

    def local(self, now: float) -> dt.datetime:
        """`now` as a naive local time of the practice (working hours are local)."""
        return dt.datetime.fromtimestamp(now, self.tz).replace(tzinfo=None)

    # --- incoming messages ----------------------------------------------------------------

    def handle(self, message: Message) -> None:
        """Serve one validated message; `Refused` when it cannot be served."""
        handlers = {
            ConsultationRequest: self._request,
            ConsultationCancel: self._cancel,
            AppointmentRequest: self._appointment,
            DoctorStatus: self._doctor_status,
            DoctorAccept: self._doctor_accept,
            DoctorEnd: self._doctor_end,
            ConsultationText: self._text,
        }
        handler = handlers.get(type(message.body))
        if handler is None:
            raise Refused(RefusalReason.NOT_HANDLED, message.type)
        with self.store.transaction():
            handler(message)
        self._flush()

    def _request(self, message: Message) -> None:
        body: ConsultationRequest = message.body
        if self.store.query("SELECT 1 FROM requests WHERE id = ?", (message.id,)):
            return  # handled before a crash, redelivered: its messages are in the outbox
        if body.department is not None:
            try:
                wanted = department_id(body.department)
            except UnknownDepartment:
                raise Refused(RefusalReason.UNKNOWN_DEPARTMENT, "department") from None
        else:
            wanted = triage([*(body.symptoms or []), body.reason or ""])
        now = self.clock()
        quick = wanted == GENERAL_PRACTICE or body.urgency == "urgent"
        promise = self.timings.gp_promise_s if quick else self.timings.specialist_promise_s
        language = body.language.lower() if body.language else None
        cursor = self.store.db.execute(
            "INSERT INTO requests (id, household, device, mode, wanted, department, urgency,"
            " language, reason, symptoms, callback_number, created, deadline, state, updated)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'waiting',?)",
            (
                message.id,
                message.household,
                message.device,
                body.mode,
                wanted,
                wanted,
                body.urgency,
                language,
                body.reason,
                json.dumps(body.symptoms) if body.symptoms else None,
                body.callback_number,
                now,
                now + promise,
                now,
            ),
        )
        # the department says something about the senior's health: DEBUG only
        log.info("consultation request %s (%s)", message.id, body.urgency)
        log.debug("consultation request %s is for %s", message.id, wanted)
        waiting = Waiting(
            id=message.id,
            department=wanted,
            urgency=body.urgency,
            created=now,
            deadline=now + promise,
            seq=cursor.lastrowid or 0,
            language=language,
        )
        self.matcher.add(waiting)
        local = self.local(now)
        self._fallbacks(local, now, only=message.id)  # no specialist in time: a GP
        self._match(now)
        estimate = self.matcher.estimate(message.id, local)
        if estimate is not None:
            self._to_device(
                message.household,
                message.device,
                ConsultationQueued(message.id, estimate.position, estimate.wait_s),
            )
            self._told[message.id] = (estimate.position, now)

    def _request_row(self, request_id: str) -> Any:
        rows = self.store.query("SELECT * FROM requests WHERE id = ?", (request_id,))
        if not rows:
            raise Refused(RefusalReason.UNKNOWN_REQUEST, "request_id")
        return rows[0]

    def _cancel(self, message: Message) -> None:
        row = self._request_row(message.body.request_id)
        if (row["household"], row["device"]) != (message.household, message.device):
            raise Refused(RefusalReason.NOT_YOURS, "the request is another device's")
        now = self.clock()
        if row["state"] == "waiting":
            self.matcher.remove(row["id"])
            self._told.pop(row["id"], None)
            self.store.drop_updates(row["id"])
        elif row["state"] in OPEN:
            self._close_session(row, "senior", now)
            self._to_doctor(row["doctor"], DoctorSessionCancelled(row["id"], by="senior"))
        if row["state"] not in ("ended",):
            self._set_request(row["id"], "cancelled", now)
            self._to_device(
                row["household"], row["device"], ConsultationCancelled(row["id"], "senior")
            )
        log.info("consultation request %s cancelled by the senior", row["id"])
        self._match(now)

    def _doctor(self, message: Message) -> Doctor:
        doctor = self.matcher.doctors.get(message.device)
        if message.household != self.practice or doctor is None:
            raise Refused(RefusalReason.UNKNOWN_DOCTOR, "not on the roster")
        return doctor

    def _doctor_status(self, message: Message) -> None:
        doctor = self._doctor(message)
        state = message.body.state
        roster.set_state(self.store, doctor.id, state)
        self._roster_version = None
        self._apply_state(doctor, state, self.clock())

    def _apply_state(self, doctor: Doctor, state: str, now: float) -> None:
        previous, doctor.state = doctor.state, state
        if state != previous:
            log.info("doctor %s is %s", doctor.id, state)
        if state == "available" and previous != "available" and doctor.missed:
            doctor.missed = 0  # back: a pass from before does not count towards away
            roster.set_passed(self.store, doctor)
        if state == "offline":
            self._requeue_sessions_of(doctor.id, now)
        self._match(now)

    def _requeue_sessions_of(self, doctor_id: str, now: float) -> None:
        """A doctor who went away: their consultations wait again, at their old place."""
        rows = self.store.query(
            "SELECT * FROM requests WHERE doctor = ? AND state IN (?, ?) ORDER BY seq",
            (doctor_id, *OPEN),
        )
        self._requeue(rows, "doctor_offline", now)

    def _unaccepted(self, now: float) -> None:
        """Consultations a doctor has not accepted within `accept_s` of the assignment wait
        again for another doctor: the senior is not left in an empty room because an app
        went quiet or never got the session. The doctor is asked again only after
        `accept_s` more, so another is asked first, and when there is none the session
        goes to them anew (a lost one is sent again that way)."""
        rows = self.store.query(
            "SELECT * FROM requests WHERE state = 'assigned' AND assigned_at <= ? ORDER BY seq",
            (now - self.timings.accept_s,),
        )
        for row in rows:
            log.warning("consultation %s: doctor %s did not accept it within %.0f s; it waits"
                        " for another doctor", row["id"], row["doctor"],
                        self.timings.accept_s)  # fmt: skip
            doctor = self.matcher.doctors.get(row["doctor"])
            if doctor is None:
                continue
            doctor.passed_until = self.local(now + self.timings.accept_s)
            doctor.missed += 1
            if doctor.missed >= MISSED_TO_AWAY and doctor.state == "available":
                # not offered the same consultation over and over: away until the app
                # says it is available again
                log.warning("doctor %s let %d consultations pass: taken for away",
                            doctor.id, doctor.missed)  # fmt: skip
                roster.set_state(self.store, doctor.id, "busy")
                self._roster_version = None
                doctor.state = "busy"
            roster.set_passed(self.store, doctor)
        if rows:
            self._requeue(rows, "not_accepted", now)

    def _requeue(self, rows: list[Any], why: str, now: float) -> None:
        """Take the consultations of `rows` from their doctors (each told it is not theirs
        now): they wait again at their old place, and their devices are told where."""
        for row in rows:
            self._close_session(row, why, now)
            # the app finds it when it is back (its session is persistent): not yours now
            self._to_doctor(row["doctor"], DoctorSessionCancelled(row["id"], by="service"))
            self.store.db.execute(
                "UPDATE requests SET state = 'waiting', doctor = NULL, assigned_at = NULL,"
                " updated = ? WHERE id = ?",
                (now, row["id"]),
            )
            self.matcher.add(self._waiting(row))
            log.info("consultation %s waits again (%s)", row["id"], why)
        self._match(now)
        local = self.local(now)
        for row in rows:
            estimate = self.matcher.estimate(row["id"], local)
            if estimate is not None:
                body = ConsultationQueued(row["id"], estimate.position, estimate.wait_s)
                self._to_device(row["household"], row["device"], body)
                self._told[row["id"]] = (estimate.position, now)

    def _session_row(self, message: Message) -> Any:
        doctor = self._doctor(message)
        row = self._request_row(message.body.request_id)
        if row["doctor"] != doctor.id:
            raise Refused(RefusalReason.NOT_YOURS, "the session is another doctor's")
        return row

    def _doctor_accept(self, message: Message) -> None:
        self._accepted(self._session_row(message))

    def _accepted(self, row: Any) -> None:
        """The doctor took the consultation (accepted it, or wrote in it)."""
        doctor = self.matcher.doctors.get(row["doctor"])
        if doctor is not None and doctor.missed:
            doctor.missed = 0
            roster.set_passed(self.store, doctor)
        if row["state"] == "assigned":
            now = self.clock()
            self._set_request(row["id"], "accepted", now)
            self.store.db.execute(
                "UPDATE sessions SET accepted_at = ? WHERE request_id = ?", (now, row["id"])
            )

    def _doctor_end(self, message: Message) -> None:
        row = self._session_row(message)
        if row["state"] not in OPEN:
            return
        now = self.clock()
        self._close_session(row, "doctor", now)
        self._set_request(row["id"], "ended", now)
        self._to_device(row["household"], row["device"], ConsultationEnded(row["id"], "doctor"))
        self._match(now)

    def _text(self, message: Message) -> None:
        """A line of a text consultation, passed on between the senior's device and the
        doctor holding the consultation, and nobody else (a doctor's app may read no
        device's topic). Lines are not kept here, nor logged: they are health data."""
        body: ConsultationText = message.body
        if message.kind == "conversation" and body.sender == "doctor":
            return  # a line this service passed on to the device, heard back: already there
        from_doctor = message.kind == "doctor_text"
        if from_doctor:
            row = self._session_row(message)  # the doctor's own consultation, or refused
            if body.sender != "doctor":
                raise Refused(RefusalReason.NOT_YOURS, "sender")
        else:
            row = self._request_row(body.request_id)
            if (message.household, message.device) != (row["household"], row["device"]):
                raise Refused(RefusalReason.NOT_YOURS, "request_id")
        if row["mode"] != "text" or row["state"] not in OPEN:
            raise Refused(RefusalReason.NOT_IN_TEXT, "request_id")
        line = ConsultationText(body.request_id, body.sender, body.text)
        if from_doctor:
            self._accepted(row)  # writing in it is taking it
            self._to_device(row["household"], row["device"], line)
        else:
            self._to_doctor(row["doctor"], line, on="doctor_session")

    def _close_session(self, row: Any, by: str, now: float) -> None:
        self.store.db.execute(
            "UPDATE sessions SET ended_at = ?, ended_by = ? WHERE request_id = ?",
            (now, by, row["id"]),
        )
        doctor = self.matcher.doctors.get(row["doctor"])
        if doctor is not None and doctor.open_sessions:
            doctor.open_sessions -= 1

    def _set_request(self, request_id: str, state: str, now: float) -> None:
        self.store.db.execute(
            "UPDATE requests SET state = ?, updated = ? WHERE id = ?", (state, now, request_id)
        )

    # --- matching -------------------------------------------------------------------------

    def _match(self, now: float) -> None:
        for waiting, doctor in self.matcher.match(self.local(now)):
            self._assign(waiting, doctor, now)

    def _assign(self, waiting: Waiting, doctor: Doctor, now: float) -> None:
        row = self._request_row(waiting.id)
        session = self.sessions.make(
            row["mode"],
            household=row["household"],
            device=row["device"],
            doctor_phone=doctor.phone,
            callback_number=row["callback_number"],
            now=now,
        )
        starts = now + self.timings.join_s
        db = self.store.db
        db.execute(
            "UPDATE requests SET state = 'assigned', doctor = ?, department = ?, assigned_at = ?,"
            " updated = ? WHERE id = ?",
            (doctor.id, waiting.department, now, now, waiting.id),
        )
        db.execute(
            "INSERT OR REPLACE INTO sessions (request_id, doctor, mode, room_id, patient_url,"
            " doctor_url, phone_number, conversation_topic, starts_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                waiting.id,
                doctor.id,
                session.mode,
                session.room_id,
                session.patient_url,
                session.doctor_url,
                session.phone_number,
                session.conversation_topic,
                starts,
            ),
        )
        roster.set_served(self.store, doctor)
        household, device = row["household"], row["device"]
        self._to_device(
            household,
            device,
            ConsultationAssigned(waiting.id, doctor.name, estimated_start_s=self.timings.join_s),
        )
        self._to_device(
            household,
            device,
            ConsultationSession(
                waiting.id,
                session.mode,
                join_url=session.patient_url,
                phone_number=session.phone_number,
                starts_at=_ts(starts),
                room_id=session.room_id,
                conversation_topic=session.conversation_topic,
                doctor=doctor.name,
            ),
        )
        self._to_doctor(
            doctor.id,
            DoctorSession(
                request_id=waiting.id,
                household=household,
                device=device,
                mode=session.mode,
                department=waiting.department,
                urgency=waiting.urgency,
                starts_at=_ts(starts),
                language=waiting.language,
                reason=row["reason"],
                symptoms=json.loads(row["symptoms"]) if row["symptoms"] else None,
                room_id=session.room_id,
                join_url=session.doctor_url,
                callback_number=session.callback_number,
                # where the app writes its lines (the senior's come on its session topic)
                conversation_topic=topics.doctor_topic(self.practice, doctor.id, "doctor_text")
                if session.conversation_topic
                else None,
            ),
        )
        self._told.pop(waiting.id, None)
        self.store.drop_updates(waiting.id)  # a position told after "assigned" would confuse
        self.assigned += 1
        log.info(
            "consultation %s assigned to doctor %s after %.1f s%s",
            waiting.id,
            doctor.id,
            now - waiting.created,
            " (general practice instead of a specialist)" if waiting.fallback else "",
        )

    # --- appointments ---------------------------------------------------------------------

    def _appointment(self, message: Message) -> None:
        body: AppointmentRequest = message.body
        if self.store.query("SELECT 1 FROM appointments WHERE request_id = ?", (message.id,)):
            return
        try:
            department = department_id(body.department)
        except UnknownDepartment:
            raise Refused(RefusalReason.UNKNOWN_DEPARTMENT, "department") from None
        local = dt.datetime.combine(
            dt.date.fromisoformat(body.date), dt.time.fromisoformat(body.at)
        )
        starts = local.replace(tzinfo=self.tz).timestamp()
        now = self.clock()
        if starts <= now:
            raise Refused(RefusalReason.IN_THE_PAST, "date and at")
        slot = self.timings.appointment_s
        busy = {
            row[0]
            for row in self.store.query(
                "SELECT doctor FROM appointments WHERE starts > ? AND starts < ?",
                (starts - slot, starts + slot),
            )
        }
        candidates = [
            d
            for d in self.matcher.doctors.values()
            if d.department == department and d.id not in busy and d.hours.contains(local)
        ]
        if body.language and self.matcher.speaks(department, body.language.lower()):
            candidates = [d for d in candidates if body.language.lower() in d.languages]
        if not candidates:
            raise Refused(RefusalReason.NO_SLOT, f"no {department} doctor free then")
        day = [row[0] for row in self.store.query(
            "SELECT doctor FROM appointments WHERE starts >= ? AND starts < ?",
            (starts - 12 * 3600, starts + 12 * 3600),
        )]  # fmt: skip
        doctor = min(candidates, key=lambda d: (day.count(d.id), d.load))
        appointment_id = "appt-" + message.id.replace("-", "")
        self.store.db.execute(
            "INSERT INTO appointments (id, request_id, household, device, department, doctor,"
            " starts, mode, created) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                appointment_id,
                message.id,
                message.household,
                message.device,
                department,
                doctor.id,
                starts,
                body.mode,
                now,
            ),
        )
        self._to_device(
            message.household,
            message.device,
            AppointmentConfirmed(
                message.id, appointment_id, department, doctor.name, _ts(starts), body.mode
            ),
        )
        log.info("appointment %s booked with doctor %s", appointment_id, doctor.id)

    def _reminders(self, now: float) -> None:
        rows = self.store.query(
            "SELECT * FROM appointments WHERE reminded = 0 AND starts - ? <= ? AND starts > ?",
            (self.timings.reminder_before_s, now, now),
        )
        for row in rows:
            doctor = self.matcher.doctors.get(row["doctor"])
            body = AppointmentReminder(
                row["id"],
                doctor.name if doctor else row["doctor"],
                _ts(row["starts"]),
                max(0, round((row["starts"] - now) / 60)),
            )
            self._to_device(row["household"], row["device"], body)
            self.store.db.execute("UPDATE appointments SET reminded = 1 WHERE id = ?", (row["id"],))

    # --- the clock ------------------------------------------------------------------------

    def tick(self) -> None:
        """Promises, roster changes made by the CLI, working hours, positions, reminders."""
        now = self.clock()
        local = self.local(now)
        with self.store.transaction():
            self._reload_roster(now)
            self._fallbacks(local, now)
            self._unaccepted(now)
            self._match(now)
            self._positions(now, local)
            self._reminders(now)
        self._flush()

    def _fallbacks(self, local: dt.datetime, now: float, only: str | None = None) -> None:
        for request in self.matcher.fallbacks(local, now, only):
            self.store.db.execute(
                "UPDATE requests SET department = ?, updated = ? WHERE id = ?",
                (request.department, now, request.id),
            )
            log.info("consultation %s moved to general practice", request.id)

    def _positions(self, now: float, local: dt.datetime) -> None:
        """Tell devices whose position changed (at most every `position_interval_s`)."""
        for request_id, estimate in self.matcher.estimates(local).items():
            told = self._told.get(request_id)
            if told is not None and told[0] == estimate.position:
                continue
            if told is not None and now - told[1] < self.timings.position_interval_s:
                continue
            row = self._request_row(request_id)
            body = ConsultationPosition(request_id, estimate.position, estimate.wait_s)
            self._to_device(row["household"], row["device"], body)
            self._told[request_id] = (estimate.position, now)

    def _reload_roster(self, now: float | None = None) -> None:
        """Pick up what `doctor-connect doctor ...` changed in the store."""
        version = tuple(self.store.query("SELECT COUNT(*), MAX(updated) FROM doctors")[0])
        if version == self._roster_version:
            return
        self._roster_version = version
        now = self.clock() if now is None else now
        stored = {d.id: d for d in roster.load(self.store)}
        for doctor_id in list(self.matcher.doctors):
            if doctor_id not in stored:
                self.matcher.drop_doctor(doctor_id)
                self._requeue_sessions_of(doctor_id, now)
        for doctor in stored.values():
            current = self.matcher.doctors.get(doctor.id)
            if current is None:
                self.matcher.put_doctor(doctor)
                continue
            doctor.open_sessions, doctor.served = current.open_sessions, current.served
            doctor.passed_until, doctor.missed = current.passed_until, current.missed
            state, doctor.state = doctor.state, current.state
            self.matcher.put_doctor(doctor)
            if state != current.state:
                self._apply_state(doctor, state, now)

    # --- outgoing -------------------------------------------------------------------------

    def _to_device(self, household: str, device: str, body: Any) -> None:
        update = isinstance(body, ConsultationQueued | ConsultationPosition)
        message = create(body, household, device)
        self.store.queue_message(message, update_of=body.request_id if update else None)

    def _to_doctor(self, doctor_id: str, body: Any, on: str | None = None) -> None:
        self.store.queue_message(create(body, self.practice, doctor_id, on=on))

    def _flush(self) -> None:
        if self.on_outgoing is not None:
            self.on_outgoing()


def _random_secret() -> str:
    import secrets

    return secrets.token_hex(16)
