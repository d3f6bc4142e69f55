"""Hostile input against every receiver (the device, family-notify, doctor-connect): no
payload crashes it, and every payload is either handled or counted as rejected.

Two parts: the known-nasty payloads (tests/fuzz.py `hostile_payloads`), and
hypothesis-generated payloads, each followed by three byte-level mutants of it,
`CARE_FUZZ_EXAMPLES` payloads in all per receiver (2,000 by default; the 100,000 run:
`CARE_FUZZ_EXAMPLES=100000 pytest tests/test_fuzz_receivers.py -k generated`). With
`CARE_FUZZ_REPORT=DIR` each receiver's outcome counts are written there as JSON.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from protocol import Reason, topics
from tests.fuzz import (
    DOCTOR,
    PRACTICE,
    TARGETS,
    C,
    D,
    H,
    ServiceTarget,
    Target,
    cases,
    hostile_payloads,
    mutants,
)

EXAMPLES = int(os.environ.get("CARE_FUZZ_EXAMPLES", "2000"))  # payloads per receiver
MUTANTS = 3  # byte-level variants delivered after each generated payload


@pytest.fixture(scope="module", params=sorted(TARGETS))
def target(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    with TARGETS[request.param](tmp_path_factory.mktemp(request.param)) as running:
        yield running


def hostile_topics(target: Target) -> list[str]:
    """Where the known-nasty payloads are sent: the receiver's own topics."""
    if target.name == "device":
        return [topics.command(H, D), topics.consultation_update(H, D)]
    if target.name == "family-notify":
        return [topics.alert(H, D), topics.member_command(H, C)]
    return [topics.consultation(H, D), topics.doctor_topic(PRACTICE, DOCTOR, "doctor_action")]


EXPECTED = {
    "invalid UTF-8": Reason.NOT_UTF8,
    "UTF-16 JSON": Reason.NOT_UTF8,
    "nested 30,000 deep": Reason.NOT_JSON,
    "NaN as the version": Reason.NOT_JSON,
    "a key twice": Reason.NOT_JSON,
    "JSON array": Reason.NOT_OBJECT,
    "1 MiB of zeros": Reason.TOO_LARGE,
    "nested 100,000 deep (200 KB)": Reason.TOO_LARGE,
    "v2 message": Reason.UNSUPPORTED_VERSION,
    "id not a UUID": Reason.BAD_ENVELOPE,
    "household with a slash": Reason.BAD_ENVELOPE,
    "unknown type": Reason.UNKNOWN_TYPE,
    "a type of another topic": Reason.WRONG_TOPIC,
    "envelope names another household": Reason.WRONG_HOUSEHOLD,
    "envelope names another sender": Reason.WRONG_DEVICE,
    "lone surrogate in text": Reason.BAD_BODY,
    "NUL in text": Reason.BAD_BODY,
    "escape sequence in text": Reason.BAD_BODY,
    "right-to-left override in text": Reason.BAD_BODY,
    "text of 64 KiB": Reason.TOO_LARGE,
    "SQL in a reminder id": Reason.BAD_BODY,
    "http URL for a video room": Reason.BAD_BODY,
    "latitude 91": Reason.BAD_BODY,
}


def test_known_hostile_payloads_are_refused_with_a_reason(target: Target) -> None:
    results = {}
    for topic in hostile_topics(target):
        for name, payload in hostile_payloads(topic):
            results[(topic, name)] = target.deliver(topic, payload)
    assert target.bugs == {}, target.bugs
    _report(target, "hostile", {f"{n} on {t}": r for (t, n), r in results.items()})
    assert [key for key, result in results.items() if result == "handled"] == []
    wrong = {
        key: (result, EXPECTED[key[1]])
        for key, result in results.items()
        if key[1] in EXPECTED and result != EXPECTED[key[1]]
    }
    assert wrong == {}


def test_generated_payloads_never_crash_and_are_all_counted(target: Target) -> None:
    started, before = time.perf_counter(), target.delivered
    earlier = target.outcome.copy()  # the hostile list's, in the same module
    bad: list[tuple[str, bytes, str]] = []

    @settings(
        max_examples=-(-EXAMPLES // (1 + MUTANTS)),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases(target.types))
    def one(case: tuple[str, bytes, int]) -> None:
        topic, payload, seed = case
        for each in (payload, *mutants(payload, seed, MUTANTS)):
            result = target.deliver(topic, each)  # an exception here fails the test
            if result == Reason.HANDLER_ERROR or result.startswith("UNACCOUNTED"):
                bad.append((topic, each[:300], result))

    one()
    delivered = target.delivered - before
    elapsed = time.perf_counter() - started
    assert delivered >= EXAMPLES
    assert bad == [], bad[:5]
    outcome = dict(target.outcome - earlier)
    # the generator reaches past validation: some handled, some refused by the service
    assert outcome.get("handled", 0) > 0, outcome
    if isinstance(target, ServiceTarget):
        assert any(k.startswith("refused:") for k in outcome), outcome
        assert target.mqtt.dead_letters == 0
    _report(
        target,
        "generated",
        {"payloads": delivered, "seconds": round(elapsed, 1), "outcome": outcome},
    )


def _report(target: Target, part: str, data: dict) -> None:
    directory = os.environ.get("CARE_FUZZ_REPORT")
    if directory:
        path = Path(directory) / f"fuzz-{target.name}-{part}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
