"""Slot normalisers: numbers as readings are said, times with words around them, durations,
medicine names without the words said around them, and slots that only help matching."""

from __future__ import annotations

import pytest

from intents.normalize import (
    normalise_slots,
    parse_clock_time,
    parse_duration_minutes,
    parse_number,
    parse_reading,
)


@pytest.mark.parametrize(
    ("words", "value"),
    [
        ("one forty", 140),
        ("one twenty five", 125),
        ("one fifteen", 115),
        ("one oh five", 105),
        ("twenty one", 21),
        ("forty five", 45),
        ("one hundred and twenty", 120),
        ("a hundred and ten", 110),
        ("seven point two", 7.2),
        ("ninety nine point one", 99.1),
        ("64.5", 64.5),
    ],
)
def test_numbers_as_people_say_them(words: str, value: float) -> None:
    assert parse_number(words.split()) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("one forty over ninety", "140/90"),
        ("one twenty over eighty", "120/80"),
        ("this morning was one forty over ninety", "140/90"),
        ("130 over 85", "130/85"),
        ("130/85", "130/85"),
        ("120 by 80", "120/80"),
        ("a hundred and thirty over eighty", "130/80"),
    ],
)
def test_blood_pressure_readings(text: str, value: str) -> None:
    assert parse_reading("blood_pressure", text) == value


@pytest.mark.parametrize(
    ("measure", "text", "value"),
    [
        ("blood_sugar", "seven point two before breakfast", "7.2"),
        ("blood_sugar", "a bit high today it's 9.4", "9.4"),
        ("weight", "down to 64.5 kilos", "64.5"),
        ("weight", "82 kilos", "82"),
        ("weight", "165 pounds", "165"),
        ("temperature", "38 degrees", "38"),
        ("temperature", "normal 36.8", "36.8"),
        ("temperature", "ninety nine point one", "99.1"),
        ("heart_rate", "sixty five beats per minute", "65"),
    ],
)
def test_a_reading_keeps_its_one_number_and_sets_aside_the_words_around_it(
    measure: str, text: str, value: str
) -> None:
    assert parse_reading(measure, text) == value


@pytest.mark.parametrize(
    ("measure", "text"),
    [
        ("weight", "about the same"),  # no number
        ("heart_rate", "two days ago it was 80"),  # two numbers: which one?
        ("heart_rate", "one"),  # not a pulse
        ("temperature", "370"),  # not a temperature
        ("blood_pressure", "high"),
        ("blood_pressure", "85 over 130"),  # the low number first
        ("blood_sugar", "in the cupboard"),
    ],
)
def test_what_is_not_one_plausible_reading_is_not_understood(measure: str, text: str) -> None:
    assert parse_reading(measure, text) is None


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("ten every morning", "10:00"),
        ("8 every morning", "08:00"),
        ("eight pm please", "20:00"),
        ("seven every evening", "19:00"),
        ("afternoon at two", "14:00"),
        ("half seven in the evening", "19:30"),
        ("half past seven in the evening", "19:30"),
        ("10:30 in the morning", "10:30"),
        ("eleven o'clock in the morning", "11:00"),
        ("ten at night", "22:00"),
        ("8:30 a.m.", "08:30"),
        ("midday", "12:00"),
        ("7.30 pm", "19:30"),
    ],
)
def test_times_with_routine_words_around_them(text: str, time: str) -> None:
    assert parse_clock_time(text) == time


@pytest.mark.parametrize(
    "text", ["25 o'clock", "banana", "every day", "half", "if possible", "7.5"]
)
def test_what_is_not_a_time_is_not_understood(text: str) -> None:
    assert parse_clock_time(text) is None


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("five more minutes", 5),
        ("about twenty minutes", 20),
        ("ten minutes please", 10),
        ("a quarter of an hour", 15),
        ("an hour and a half", 90),
        ("2 hours", 120),
    ],
)
def test_durations(text: str, minutes: int) -> None:
    assert parse_duration_minutes(text) == minutes


@pytest.mark.parametrize(
    ("said", "medication"),
    [
        ("vitamin d for me please", "vitamin d"),
        ("repeat prescription for statins please", "statins"),
        ("antibiotics anymore", "antibiotics"),
        ("more of my blood pressure pills", "blood pressure pills"),
        ("some more paracetamol", "paracetamol"),
        ("a new supply of my insulin", "insulin"),
        ("aspirin reminder", "aspirin"),
        ("the metformin", "metformin"),
    ],
)
def test_a_medicine_name_without_the_words_said_around_it(said: str, medication: str) -> None:
    assert normalise_slots({"medication": said}) == ({"medication": medication}, [])


def test_slots_that_only_help_matching_are_dropped() -> None:
    slots = {"contact": "son", "aside": "i'm at the shops", "where_word": "here"}
    assert normalise_slots({**slots, "location_word": "location"}) == ({"contact": "son"}, [])


def test_a_part_of_the_day_said_apart_goes_into_the_time() -> None:
    """ "tomorrow afternoon at two", "every evening at eight": the part of the day is
    its own slot in the templates, and makes the hour an afternoon or evening one."""
    slots, invalid = normalise_slots({"day": "tomorrow", "daypart": "afternoon", "time": "two"})
    assert (slots, invalid) == ({"day": "tomorrow", "time": "14:00"}, [])
    assert normalise_slots({"daypart": "morning"}) == ({}, [])


def test_a_reading_that_is_not_a_number_is_invalid() -> None:
    assert normalise_slots({"measure": "blood_sugar", "reading": "in the cupboard"}) == (
        {"measure": "blood_sugar"},
        ["value"],
    )
