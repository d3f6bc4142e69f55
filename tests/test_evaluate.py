"""`senior-assistant eval`: the labelled sets scored through the real engine (and, for
audio, the real recognizer); emergency phrases heard through noise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from assistant.evaluate import Case, DatasetError, Evaluator, Report, load_cases
from assistant.pcm import write_wav
from tests.cli import run_cli
from tests.speech import FLITE_VOICES, mix_noise

DATA = Path(__file__).resolve().parent / "data"
DEV_SET = DATA / "intents_en.jsonl"  # the templates were tuned on it
HELD_OUT = DATA / "intents_en_heldout.jsonl"  # written blind, never tuned on
ACCEPTANCE = re.compile(r"^command acceptance: (\d+)/(\d+) = ([\d.]+)%$")


def acceptance(stdout: str) -> tuple[int, int]:
    match = ACCEPTANCE.match(stdout.strip().splitlines()[-1])
    assert match, stdout[-500:]
    return int(match[1]), int(match[2])


def test_the_sets_are_large_and_varied() -> None:
    for path, size in [(DEV_SET, 400), (HELD_OUT, 250)]:
        cases = load_cases(path)
        assert len(cases) >= size
        assert sum(c.intent is None for c in cases) >= 40  # out-of-domain ones
        assert len({c.intent for c in cases}) == 24  # all 23 intents and "none"


@pytest.mark.parametrize(("path", "floor"), [(DEV_SET, 0.95), (HELD_OUT, 0.80)])
def test_command_acceptance_on_the_labelled_sets(path: Path, floor: float, tmp_path) -> None:
    out = tmp_path / "report.json"
    result = run_cli("eval", str(path), "--json", str(out))
    assert result.returncode == 0, result.stderr
    accepted, total = acceptance(result.stdout)
    assert total == len(load_cases(path))
    assert accepted / total >= floor, result.stdout[-3000:]
    report = json.loads(out.read_text())
    assert report["accepted"] == accepted
    assert report["out_of_domain_false_accepts"] <= 2
    assert "intent accuracy:" in result.stdout and "slot accuracy:" in result.stdout


def test_every_emergency_in_the_sets_is_an_emergency_by_text(engine) -> None:
    """Text is the ceiling for speech: an emergency lost here is lost for every voice."""
    cases = [c for c in load_cases(DEV_SET) + load_cases(HELD_OUT) if c.intent == "emergency"]
    missed = [c.text for c in cases if (m := engine.recognize(c.text or "")) is None
              or m.intent != "emergency"]  # fmt: skip
    assert len(missed) <= len(cases) // 10, missed


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("not json", ":2:"),
        ('{"text": "help"}', 'needs "intent"'),
        ('{"text": "a", "audio": "b.wav", "intent": null}', "exactly one"),
        ('{"text": "a", "intent": 3}', "string or null"),
        ('{"text": "a", "intent": "yes", "slots": {"x": 1}}', "map names to strings"),
    ],
)
def test_a_bad_dataset_line_is_named_and_nothing_is_scored(line, needle, tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "help i fell", "intent": "emergency"}\n' + line + "\n")
    with pytest.raises(DatasetError, match=re.escape(needle)):
        load_cases(path)
    result = run_cli("eval", str(path))
    assert result.returncode == 2
    assert "bad.jsonl" in result.stderr and "Traceback" not in result.stderr


def test_another_vocabulary_is_scored_with_intents_dir(tmp_path) -> None:
    sentences = tmp_path / "sentences"
    sentences.mkdir()
    (sentences / "garden.yaml").write_text(
        "language: en\nintents:\n  water_plants:\n    data:\n      - sentences:\n"
        '          - "water the (plants|garden)"\n'
    )
    data = tmp_path / "garden.jsonl"
    data.write_text(
        '{"text": "water the plants", "intent": "water_plants"}\n'
        '{"text": "water the garden please", "intent": "water_plants"}\n'
        '{"text": "help i fell", "intent": null}\n'
    )
    result = run_cli("eval", str(data), "--intents", str(sentences))
    assert result.returncode == 0, result.stderr
    assert acceptance(result.stdout) == (3, 3)  # and "help i fell" is not an intent here


def test_audio_cases_go_through_the_recognizer_with_noise(speech, tmp_path) -> None:
    lines = []
    for i, (text, intent, slots) in enumerate(
        [
            ("help, I fell.", "emergency", {"kind": "fall"}),
            ("I need a video consultation.", "request_consultation", {"mode": "video"}),
            ("play some music.", None, {}),
        ]
    ):
        wav = speech.flite(text, FLITE_VOICES[i % len(FLITE_VOICES)])
        lines.append(json.dumps({"audio": str(wav), "intent": intent, "slots": slots}))
    data = tmp_path / "spoken.jsonl"
    data.write_text("\n".join(lines) + "\n")
    noise = tmp_path / "hum.wav"
    t = np.arange(16000 * 2) / 16000
    write_wav(noise, (3000 * np.sin(2 * np.pi * 120 * t)).astype(np.int16))  # mains hum
    result = run_cli("eval", str(data), "--noise", str(noise), "--snr", "20")
    assert result.returncode == 0, result.stderr
    assert "recognizer: pocketsphinx" in result.stdout and "noise:" in result.stdout
    assert "recognizer ms:" in result.stdout
    assert acceptance(result.stdout)[1] == 3


def test_emergency_phrases_through_white_noise(engine, command_recognizer, speech) -> None:
    """Recall of the emergency intent from speech with white noise at 20 dB SNR (over the
    pauses too, as in a room): every eighth emergency case of both sets, four flite voices.
    Sure or asked about ("do you need help?") both count: either way help comes."""
    cases = [c for c in load_cases(DEV_SET) + load_cases(HELD_OUT) if c.intent == "emergency"]
    hits = total = 0
    for n, case in enumerate(cases[::8]):
        voice = FLITE_VOICES[n % len(FLITE_VOICES)]
        samples = speech.samples(speech.flite(case.text or "", voice), lead_s=0.3, tail_s=0.3)
        command_recognizer.start()
        command_recognizer.accept(mix_noise(samples, 20.0, seed=n).tobytes())
        hits += engine.is_emergency(command_recognizer.finish().text)
        total += 1
    assert hits / total >= 0.5, f"{hits}/{total}"


def test_emergency_phrases_through_heavy_white_noise(engine, command_recognizer, speech) -> None:
    """At 10 dB SNR the free model hears nothing usable; the grammar's emergency phrase is
    kept unconfirmed and the emergency sentences get a second look on low-passed audio, so
    that the dialog asks "do you need help?" (measured 23/76 on the dev set, 6/76 without:
    README). Every fourth emergency case of both sets, voices in turn."""
    cases = [c for c in load_cases(DEV_SET) + load_cases(HELD_OUT) if c.intent == "emergency"]
    hits = asked = total = 0
    for n, case in enumerate(cases[::4]):
        voice = FLITE_VOICES[n % len(FLITE_VOICES)]
        samples = speech.samples(speech.flite(case.text or "", voice), lead_s=0.3, tail_s=0.3)
        command_recognizer.start()
        command_recognizer.accept(mix_noise(samples, 10.0, seed=n).tobytes())
        heard = command_recognizer.finish()
        if engine.is_emergency(heard.text):
            hits += 1
            asked += not heard.verified
        total += 1
    assert hits / total >= 0.2, f"{hits}/{total}"
    assert asked >= hits / 2  # in such noise most are not sure: the dialog asks first


def test_a_quiet_room_raises_no_alert_for_other_speech(engine, command_recognizer, speech) -> None:
    """Out-of-domain requests spoken in a quiet room: the grammar forces each onto its
    nearest phrase, the free transcript must confirm it (measured: 4/48 accepted as some
    command; with the old threshold 26/48, 8 of them emergencies). An emergency phrase the
    free model only half confirms is asked about ("do you need help?"), never alerted."""
    cases = [c for c in load_cases(DEV_SET) if c.intent is None][::6]
    accepted = alerts = 0
    for n, case in enumerate(cases):
        voice = FLITE_VOICES[n % len(FLITE_VOICES)]
        samples = speech.samples(speech.flite(case.text or "", voice), lead_s=0.3, tail_s=0.3)
        command_recognizer.start()
        command_recognizer.accept(samples.tobytes())
        heard = command_recognizer.finish()
        match = engine.recognize(heard.text)
        accepted += match is not None and heard.verified
        alerts += match is not None and match.intent == "emergency" and heard.verified
    assert alerts == 0
    assert accepted <= len(cases) * 0.2, f"{accepted}/{len(cases)}"


def test_an_emergency_only_the_grammar_heard_is_asked_about(engine, speech) -> None:
    """awb's "my brother was a nurse in the war" is "my brother has collapsed in the hall" to
    the grammar and "my brother was a nurse in the wall" free: alike by their letters
    (similarity 80), but the free words are no emergency. The dialog asks "do you need
    help?" rather than alerting the family at once."""
    from assistant.speech.sphinx import PocketsphinxRecognizer

    recognizer = PocketsphinxRecognizer()  # fresh: answers at the margin depend on history
    recognizer.set_grammar(engine.grammar())
    wav = speech.flite("my brother was a nurse in the war", "awb")
    recognizer.start()
    recognizer.accept(speech.samples(wav, lead_s=0.3, tail_s=0.3).tobytes())
    heard = recognizer.finish()
    assert engine.is_emergency(heard.text), heard.text  # the grammar's phrase is kept...
    assert heard.verified is False  # ...unconfirmed: asked about, not alerted


def test_report_counts_out_of_domain_and_slot_errors(engine) -> None:
    cases = [
        Case("emergency", {"kind": "fall"}, text="help i fell"),
        Case("call_family", {"contact": "son"}, text="call my daughter"),
        Case(None, {}, text="what's the weather"),
    ]
    report = Report(Evaluator(engine).run(cases))
    summary = report.summary()
    assert (summary["accepted"], summary["intent_accuracy"]) == (2, 1.0)
    assert summary["slot_accuracy"] == 0.5
    assert report.errors_by_intent() == {"call_family": {"wrong slots": 1}}
    assert report.lines()[-1] == "command acceptance: 2/3 = 66.7%"
