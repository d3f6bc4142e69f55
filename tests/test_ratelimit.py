"""Rate limits per sender, and rejections that are all counted but not all logged."""

from __future__ import annotations

import logging

import pytest

from protocol import Reason, Receiver, RejectionCounter, create, encode, topics
from protocol.messages import FamilyMessage
from protocol.ratelimit import RateLimit, RateLimiter, kind_of, sender_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_sender_gets_its_burst_then_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(rate_per_s=2.0, burst=5), clock=clock)
    topic = topics.event("h1", "d1")
    assert [limiter.allow(topic) for _ in range(7)] == [True] * 5 + [False] * 2
    clock.now += 1.0  # two more tokens
    assert [limiter.allow(topic) for _ in range(3)] == [True, True, False]
    clock.now += 3600  # never more than the burst saved up
    assert sum(limiter.allow(topic) for _ in range(10)) == 5


def test_one_sender_over_its_limit_does_not_hold_up_another() -> None:
    limiter = RateLimiter(RateLimit(rate_per_s=1.0, burst=3), clock=Clock())
    flooder, other = topics.event("h1", "d1"), topics.event("h2", "d2")
    assert sum(limiter.allow(flooder) for _ in range(100)) == 3
    assert limiter.allow(other)
    # the same sender on another of its topics shares its bucket
    assert not limiter.allow(topics.family("h1", "d1"))
    # ... but its alerts are never dropped, however many it sends
    assert all(limiter.allow(topics.alert("h1", "d1")) for _ in range(1000))
    # a member of the same household is another sender
    assert limiter.allow(topics.member_ack("h1", "d1"))


def test_senders_are_keyed_by_household_party_and_endpoint() -> None:
    assert sender_of(topics.alert("h", "d")) == ("h", "device", "d")
    assert sender_of(topics.member_command("h", "m")) == ("h", "member", "m")
    assert sender_of("not/ours") == sender_of("") == ("?",)
    assert kind_of(topics.command("h", "d")) == ("command",)
    assert kind_of(topics.consultation_update("h", "d")) == ("consultation_update",)


def test_memory_stays_bounded_whatever_the_topics() -> None:
    limiter = RateLimiter(RateLimit(1.0, 1), max_senders=100, clock=Clock())
    for n in range(10_000):
        limiter.allow(topics.event(f"h{n}", "d"))
    assert len(limiter) == 100


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_a_nonsensical_limit_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimit(rate, burst)


def test_the_receiver_counts_what_is_over_the_limit_without_reading_it() -> None:
    handled = []
    receiver = Receiver(
        handled.append,
        household=None,
        limiter=RateLimiter(RateLimit(rate_per_s=0.001, burst=10)),
    )
    topic = topics.family("h1", "d1")
    for n in range(25):
        message = create(FamilyMessage(to="all", text=f"hello {n}"), "h1", "d1")
        receiver.receive(topic, encode(message))
    for _ in range(5):
        receiver.receive(topic, b"\xff not even json")  # over the limit: not even decoded
    assert len(handled) == 10
    assert receiver.rejections.counts() == {Reason.RATE_LIMITED: 20}
    assert receiver.received == 30


def test_a_flood_of_rejections_is_counted_in_full_and_logged_in_summary(caplog) -> None:
    clock = Clock()
    counter = RejectionCounter(clock=clock)
    with caplog.at_level(logging.INFO, logger="protocol.rejections"):
        for _ in range(10_000):
            counter.count(Reason.NOT_JSON, topic=topics.alert("h", "d"))
        clock.now += 61
        counter.count(Reason.NOT_JSON)
    assert counter[Reason.NOT_JSON] == 10_001
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 22  # 20 one by one, the summary, the first of the next minute
    assert "9980 more messages rejected (not_json)" in lines[20]


def test_a_topic_not_ours_is_not_logged_as_it_is(caplog) -> None:
    counter = RejectionCounter()
    with caplog.at_level(logging.WARNING, logger="protocol.rejections"):
        counter.count(Reason.WRONG_TOPIC, topic="x\nINFO forged line")
        counter.count(Reason.BAD_BODY, topic=topics.event("h1", "d1"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "rejected a message on a topic not ours: wrong_topic"
    assert topics.event("h1", "d1") in lines[1]
