"""Matching waiting requests to doctors, in memory: the queues, who is free, positions and
wait estimates. No I/O: the engine persists what it decides.

The rules:
* a request waits in its department's queue, urgent ones first, then in arrival order;
* it goes to the least-loaded free doctor of that department (fewest open sessions, then
  fewest served) who speaks the senior's language, when any doctor of the department does;
* a free doctor is `available`, within working hours and holds no open session;
* a specialist request moves to general practice when its promise would not be kept: its
  deadline passed, or the estimated wait for a specialist is beyond it.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from services.doctor_connect.departments import GENERAL_PRACTICE
from services.doctor_connect.hours import WorkingHours

URGENCY_RANK = {"urgent": 0, "soon": 1, "routine": 2}
STATES = ("available", "busy", "offline")


@dataclass
class Doctor:
    id: str
    name: str
    department: str
    hours: WorkingHours
    languages: frozenset[str] = frozenset({"en"})
    state: str = "offline"
    phone: str | None = None
    open_sessions: int = 0
    served: int = 0
    # let a consultation pass (not accepted in time): others are asked first until then
    # (practice-local time, as `local` below); `missed`: how many in a row
    passed_until: dt.datetime = dt.datetime.min
    missed: int = 0

    def free(self, local: dt.datetime) -> bool:
        return (
            self.state == "available"
            and not self.open_sessions
            and self.hours.contains(local)
            and local >= self.passed_until
        )

    def on_duty(self, local: dt.datetime) -> bool:
        """Working now, free or not: what the wait estimates count."""
        return self.state != "offline" and self.hours.contains(local)

    @property
    def load(self) -> tuple[int, int, str]:
        return (self.open_sessions, self.served, self.id)


@dataclass
class Waiting:
    id: str
    department: str  # the queue it is in: general practice after a fallback
    urgency: str
    created: float
    deadline: float  # when the promise to the senior runs out
    seq: int
    language: str | None = None
    wanted: str = ""  # the department asked for or triaged to
    fallback: bool = False

    def __post_init__(self) -> None:
        self.wanted = self.wanted or self.department

    @property
    def key(self) -> tuple[int, float, int]:
        return (URGENCY_RANK[self.urgency], self.created, self.seq)


@dataclass(frozen=True)
class Estimate:
    position: int  # 1 = next
    wait_s: int | None  # None: nobody of the department is expected within a week


@dataclass
class _Queue:
    heap: list[tuple[tuple[int, float, int], str]] = field(default_factory=list)
    members: dict[str, Waiting] = field(default_factory=dict)

    def push(self, request: Waiting) -> None:
        self.members[request.id] = request
        heapq.heappush(self.heap, (request.key, request.id))

    def pop(self) -> Waiting | None:
        while self.heap:
            _, request_id = heapq.heappop(self.heap)
            request = self.members.pop(request_id, None)
            if request is not None:
                return request
        return None

    def ordered(self) -> list[Waiting]:
        if len(self.heap) > 2 * len(self.members) + 64:  # shed cancelled entries
            self.heap = [(r.key, r.id) for r in self.members.values()]
            heapq.heapify(self.heap)
        return sorted(self.members.values(), key=lambda r: r.key)


class Matcher:
    def __init__(self, consult_s: float) -> None:
        """`consult_s`: how long a consultation takes on average (for wait estimates)."""
        self.consult_s = consult_s
        self.doctors: dict[str, Doctor] = {}
        self._queues: dict[str, _Queue] = {}
        self._where: dict[str, str] = {}  # request id -> department queue

    # --- the roster -------------------------------------------------------------------------

    def put_doctor(self, doctor: Doctor) -> None:
        self.doctors[doctor.id] = doctor

    def drop_doctor(self, doctor_id: str) -> Doctor | None:
        return self.doctors.pop(doctor_id, None)

    def speaks(self, department: str, language: str | None) -> bool:
        """Whether a request in `language` must wait for a doctor who speaks it: only when
        some doctor of the department does."""
        return language is not None and any(
            language in d.languages for d in self.doctors.values() if d.department == department
        )

    # --- the queues -------------------------------------------------------------------------

    def add(self, request: Waiting) -> None:
        self.remove(request.id)
        self._queues.setdefault(request.department, _Queue()).push(request)
        self._where[request.id] = request.department

    def remove(self, request_id: str) -> Waiting | None:
        department = self._where.pop(request_id, None)
        if department is None:
            return None
        return self._queues[department].members.pop(request_id, None)

    def get(self, request_id: str) -> Waiting | None:
        department = self._where.get(request_id)
        return None if department is None else self._queues[department].members.get(request_id)

    def waiting(self) -> Iterator[Waiting]:
        for queue in self._queues.values():
            yield from queue.members.values()

    def __len__(self) -> int:
        return len(self._where)

    # --- matching ---------------------------------------------------------------------------

    def match(self, local: dt.datetime) -> list[tuple[Waiting, Doctor]]:
        """Pair waiting requests with free doctors, best first; both leave the pool (the
        doctor's open sessions go up, the request leaves its queue)."""
        free: dict[str, list[Doctor]] = {}
        for doctor in self.doctors.values():
            if doctor.free(local):
                free.setdefault(doctor.department, []).append(doctor)
        pairs: list[tuple[Waiting, Doctor]] = []
        for department, doctors in free.items():
            queue = self._queues.get(department)
            if queue is None or not queue.members:
                continue
            skipped: list[Waiting] = []
            while doctors:
                request = queue.pop()
                if request is None:
                    break
                fits = doctors
                if self.speaks(department, request.language):
                    fits = [d for d in doctors if request.language in d.languages]
                if not fits:
                    skipped.append(request)
                    continue
                doctor = min(fits, key=lambda d: d.load)
                doctors.remove(doctor)
                doctor.open_sessions += 1
                doctor.served += 1
                del self._where[request.id]
                pairs.append((request, doctor))
            for request in skipped:
                queue.push(request)
        return pairs

    # --- promises ---------------------------------------------------------------------------

    def estimates(self, local: dt.datetime) -> dict[str, Estimate]:
        """Every waiting request's position in its queue and expected wait."""
        out: dict[str, Estimate] = {}
        for department, queue in self._queues.items():
            if not queue.members:
                continue
            capacity = self._capacity(department, local)
            for position, request in enumerate(queue.ordered(), 1):
                out[request.id] = self._estimate(position, capacity)
        return out

    def estimate(self, request_id: str, local: dt.datetime) -> Estimate | None:
        """One waiting request's position and expected wait (None when it is not waiting)."""
        request = self.get(request_id)
        if request is None:
            return None
        queue = self._queues[request.department]
        position = 1 + sum(other.key < request.key for other in queue.members.values())
        return self._estimate(position, self._capacity(request.department, local))

    def _estimate(self, position: int, capacity: tuple[int, float]) -> Estimate:
        on_duty, ahead_s = capacity
        if not on_duty:
            return Estimate(position, None)
        rounds = math.ceil(position / on_duty)
        return Estimate(position, max(0, int(ahead_s + rounds * self.consult_s)))

    def _capacity(self, department: str, local: dt.datetime) -> tuple[int, float]:
        """Doctors working now (or, when none, those starting soonest) and the seconds until
        they start."""
        doctors = [d for d in self.doctors.values() if d.department == department]
        now = [d for d in doctors if d.on_duty(local)]
        if now:
            # a free doctor takes the next one at once: the first round costs nothing
            free = sum(d.free(local) for d in now)
            return len(now), -self.consult_s if free else 0.0
        starts = [s for d in doctors if (s := d.hours.next_start(local)) is not None]
        if not starts:
            return 0, 0.0
        first = min(starts)
        return sum(s == first for s in starts), (first - local).total_seconds()

    def fallbacks(self, local: dt.datetime, now: float, only: str | None = None) -> list[Waiting]:
        """Specialist requests whose promise a specialist would not keep, moved to general
        practice (they keep their place in time: urgency, then arrival). `only`: look at
        that one request alone (a new one), not at every waiting request."""
        if only is not None:
            request = self.get(only)
            estimate = self.estimate(only, local)
            candidates = [] if request is None or estimate is None else [(request, estimate)]
        else:
            estimates = self.estimates(local)
            candidates = [(r, estimates[r.id]) for r in list(self.waiting())]
        moved = []
        for request, estimate in candidates:
            if request.department == GENERAL_PRACTICE:
                continue
            late = now >= request.deadline
            hopeless = estimate.wait_s is None or now + estimate.wait_s > request.deadline
            if late or hopeless:
                self.remove(request.id)
                request.department = GENERAL_PRACTICE
                request.fallback = True
                self.add(request)
                moved.append(request)
        return moved
