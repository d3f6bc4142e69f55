"""The wake word: the network spotter (and its pocketsphinx fallback) on real synthesised
speech and generated noise, `senior-assistant eval --wake` and its calibration, and the
issue's target on a fixed subset of the generated set (tests/wake_set.py; the whole set is
measured by `python -m bench --only wake`)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from assistant.config import WakeConfig
from assistant.pcm import RATE, read_wav, write_wav
from assistant.speech.keyphrase import KeyphraseSpotter
from assistant.speech.wake import WakeWordError, WakeWordSpotter, spotter_for
from assistant.speech.wake_features import (
    LOG,
    PCEN,
    LogMelStream,
    as_streamed,
    log_mel,
    window_vector,
)
from assistant.speech.wake_net import DEFAULT_CONFIRM, DEFAULT_MODEL, WakeModelError, WakeNet
from assistant.wake_eval import (
    DatasetError,
    WakeCase,
    WakeOutcome,
    WakeReport,
    hear,
    load_wake_cases,
    write_threshold,
)
from tests.cli import run_cli
from tests.speech import FLITE_VOICES
from tests.wake_set import WakeSet, pad

LAST_LINE = re.compile(r"^wake: miss ([\d.]+)% at ([\d.]+) false alarms per 10 h$")


@pytest.fixture(scope="module")
def wake_set() -> WakeSet:
    return WakeSet()


def spot(spotter: WakeWordSpotter, samples: np.ndarray) -> list[int]:
    """Where the spotter fired (end samples), feeding 30 ms frames, waking again after each."""
    spotter.reset()
    ends, offset = [], 0
    data = np.concatenate([samples, np.zeros(RATE, np.int16)]).tobytes()
    for i in range(0, len(data), 960):
        detection = spotter.feed(data[i : i + 960])
        if detection is not None:
            ends.append(offset + detection.end_sample)
            offset += spotter._samples
            spotter.reset()
    return ends


def test_a_word_the_dictionary_cannot_spell_is_named() -> None:
    with pytest.raises(WakeWordError, match="zorblax"):
        WakeWordSpotter("hey zorblax")
    with pytest.raises(WakeWordError, match="empty"):
        WakeWordSpotter("  ")


@pytest.mark.parametrize("voice", FLITE_VOICES)
def test_the_phrase_wakes_in_a_quiet_room_where_it_is_said(wake_set, voice) -> None:
    from tests.wake_set import Voice

    phrase = wake_set.say("hey helper", Voice("flite", voice))
    command = wake_set.say("what time is it", Voice("flite", voice))
    samples = pad(np.concatenate([phrase, np.zeros(RATE // 3, np.int16), command]), 1.0, 1.0)
    ends = spot(WakeWordSpotter("hey helper", WakeConfig().threshold), samples)
    assert len(ends) == 1
    # It marks where the phrase ends (measured: 0.01-0.06 s after), not before its last
    # syllable, which the command's recognizer would hear as a word ("heartbeat video
    # consultation"), nor in the command.
    phrase_end = RATE + len(phrase)
    assert -0.05 * RATE <= ends[0] - phrase_end <= 0.2 * RATE


def test_household_noise_does_not_wake(wake_set) -> None:
    """A minute of each household noise: white, pink, babble (five talkers), a running
    tap, a TV."""
    spotter = WakeWordSpotter("hey helper", WakeConfig().threshold)
    for path in wake_set.noise_only():
        assert spot(spotter, read_wav(path)[: 60 * RATE]) == [], path.name


def test_sound_alikes_score_below_the_phrase_and_do_not_wake(wake_set) -> None:
    """Sound-alikes said clearly by flite's four voices do not wake it, "a helper" among
    them: flite says its "a" as the letter, /eI/, "hey" without its h, which woke the
    first network (a perceptron) for slt and rms. Measured with the two networks that must
    agree: the sound-alikes score -0.8 (awb's "a helper") or lower, most below the
    candidate floor (-4); the phrase 3.5 (rms) to 5.2 (awb). (The log-mel network alone:
    kal16's "hey helen" -1.1, slt's "a helper" -2.8, the phrase 3.4 to 7.3.)"""
    from tests.wake_set import Voice

    scores: dict[str, list[float]] = {}
    found: list[float] = []
    spotter = WakeWordSpotter(
        "hey helper", threshold=np.inf, on_candidate=lambda score, _: found.append(score)
    )
    texts = ("hey helper", "hey helen", "help her", "healthier", "hey hello", "a helper")
    for voice in FLITE_VOICES:
        for text in texts:
            found.clear()
            spot(spotter, pad(wake_set.say(text, Voice("flite", voice)), 1.0, 1.0))
            spotter.finish()
            scores.setdefault(text, []).append(max(found, default=-np.inf))
    threshold = WakeConfig().threshold
    assert all(score >= threshold + 1 for score in scores["hey helper"]), scores
    for text in texts[1:]:
        assert all(score < threshold - 2 for score in scores[text]), (text, scores[text])


@pytest.mark.parametrize("kind", [LOG, PCEN])
def test_the_stream_hears_what_training_computed(wake_set, kind) -> None:
    """Frames fed in pieces of any size are the frames of the whole recording (through
    either front end), so the device judges exactly the windows the network was trained on."""
    from tests.wake_set import Voice

    samples = pad(wake_set.say("hey helper", Voice("flite", "awb")), 0.5, 0.5)
    held = as_streamed(log_mel(samples), kind)  # the lead-in, then the recording
    whole = held[150:]
    stream, data, at, windows = LogMelStream(kind), samples.tobytes(), 0, []
    rng = np.random.default_rng(1)
    while at < len(data):
        size = int(rng.integers(1, 1200)) * 2
        windows += list(stream.feed_windows(data[at : at + size], 3))
        at += size
    assert stream.count == len(whole) and len(windows) == len(whole) // 3
    last = (len(whole) // 3) * 3
    assert np.allclose(windows[-1], window_vector(held[last : last + 150]), atol=1e-5)
    assert np.allclose(windows[0], window_vector(held[3:153]), atol=1e-5)
    if kind == LOG:  # training's frames, once the lead-in has left the window
        assert np.allclose(windows[-1], window_vector(whole[last - 150 : last]), atol=1e-5)


def test_after_a_reset_the_window_starts_from_the_room_not_from_silence(wake_set) -> None:
    """The loop resets the spotter after every exchange. A window rising from digital
    silence to the room's noise looked like speech starting (a false wake in TV noise just
    after a reset, score 3.4); its history is now the first frames heard over again, the
    same however the audio is cut."""
    from assistant.speech.wake_features import LEAD_FRAMES, lead_in, silence_frames

    noise = wake_set.noise("tv")[: 16000 * 2] * 300
    samples = np.clip(noise, -32768, 32767).astype(np.int16)
    whole = log_mel(samples)
    expected = np.concatenate([lead_in(whole), whole])
    for size in (160, 480, 1000, 16000):
        stream = LogMelStream()
        stream.reset()
        got = []
        for at in range(0, len(samples), size):
            got += list(stream.feed_windows(samples[at : at + size].tobytes(), 3))
            if stream.count < LEAD_FRAMES:
                assert got == []  # nothing judged before the lead-in is heard
        assert len(got) == len(whole) // 3
        for k, window in enumerate(got[:20]):
            end = 150 + 3 * (k + 1)
            assert np.allclose(window, window_vector(expected[end - 150 : end]), atol=1e-5)
    from_silence = np.concatenate([silence_frames(), whole])
    assert not np.allclose(got[0], window_vector(from_silence[3:153]), atol=1)


def test_hey_kelper_in_white_noise_fools_the_first_network_not_both(wake_set) -> None:
    """The sound-alike stream of the 10 dB set, in white noise: the log network alone
    scores its "hey kelper"s up to 2.1, above the pair's threshold (it would wake); the
    PCEN network does not agree, so the pair stays below it. The score is the lower of the
    two networks' averages (measured: 2.10 alone, 1.30 together, the highest in the set;
    the threshold is 1.67)."""
    stream = next(p for p in wake_set.negatives(10.0, streams=1) if "white" in p.name)
    samples = read_wav(stream)
    threshold = WakeConfig().threshold

    def best_candidate(spotter: WakeWordSpotter) -> float:
        found: list[float] = []
        spotter.on_candidate = lambda score, _: found.append(score)
        spot(spotter, samples)
        spotter.finish()
        return max(found)

    best = {
        "log": best_candidate(WakeWordSpotter("hey helper", np.inf, WakeNet.load(DEFAULT_MODEL))),
        "pcen": best_candidate(
            WakeWordSpotter("hey helper", np.inf, WakeNet.load(DEFAULT_CONFIRM))
        ),
        "both": best_candidate(WakeWordSpotter("hey helper", np.inf)),
    }
    assert best["log"] >= threshold + 0.3, best
    assert best["both"] < threshold, best
    assert best["both"] <= min(best["log"], best["pcen"]), best


def test_a_second_network_is_configured_with_the_first(tmp_path) -> None:
    """Two networks are judged by `threshold`, one alone by `single_threshold` (the lower
    of two scores is on another scale: the first network alone at 1.30 woke three times on
    the sound-alike stream); a second network without a first is refused, not ignored."""
    pair = spotter_for(WakeConfig(model=str(DEFAULT_MODEL), confirm_model=str(DEFAULT_CONFIRM)))
    alone = spotter_for(WakeConfig(model=str(DEFAULT_MODEL)))
    assert (pair.confirm is not None, alone.confirm is None) == (True, True)
    assert (pair.threshold, alone.threshold) == (1.67, 2.11)
    shipped = spotter_for(WakeConfig())
    assert (shipped.confirm is not None, shipped.threshold) == (True, 1.67)
    with pytest.raises(WakeWordError, match="confirm_model needs"):
        spotter_for(WakeConfig(confirm_model=str(DEFAULT_CONFIRM)))
    other = WakeNet.load(DEFAULT_CONFIRM)
    other.phrase = "hello computer"
    other.save(tmp_path / "other.npz")
    with pytest.raises(WakeWordError, match="trained for 'hello computer', not 'hey helper'"):
        spotter_for(WakeConfig(model=str(DEFAULT_MODEL), confirm_model=str(tmp_path / "other.npz")))


def test_after_a_reset_the_pcen_network_hears_the_room_not_a_rhythm(wake_set) -> None:
    """The loop resets the spotter after every exchange. PCEN started from one frame and
    its first frames repeated as the window's history made a rhythm of onsets: in TV noise
    the PCEN network scored up to 18 just after a reset (its veto lost for a second). Its
    level now runs over the history first: it scores as it does without a reset."""
    samples = read_wav(wake_set.noise_only()[4])[: 12 * RATE]  # the TV
    assert "tv" in wake_set.noise_only()[4].name
    spotter = WakeWordSpotter("hey helper", np.inf, WakeNet.load(DEFAULT_CONFIRM))
    found: list[float] = []
    spotter.on_candidate = lambda score, _: found.append(score)
    data = samples.tobytes()
    for reset_at in (3, 5, 7):
        spotter.reset()
        for i in range(reset_at * RATE * 2, len(data), 960):
            spotter.feed(data[i : i + 960])
        spotter.finish()
    assert max(found, default=-np.inf) < WakeConfig().threshold, found


def test_without_the_shipped_second_network_the_first_listens_alone(
    monkeypatch, tmp_path, caplog
) -> None:
    import assistant.speech.wake as wake

    monkeypatch.setattr(wake, "DEFAULT_CONFIRM", tmp_path / "gone.npz")
    with caplog.at_level("WARNING"):
        spotter = spotter_for(WakeConfig())
    assert isinstance(spotter, WakeWordSpotter) and spotter.confirm is None
    assert spotter.threshold == WakeConfig().single_threshold
    assert "the second wake network cannot be used" in caplog.text


def test_a_phrase_without_a_network_falls_back_to_pocketsphinx_and_says_so(
    wake_set, caplog
) -> None:
    from tests.wake_set import Voice

    config = WakeConfig(phrase="hello computer")
    with caplog.at_level("WARNING"):
        spotter = spotter_for(config)
    assert isinstance(spotter, KeyphraseSpotter)
    assert "no wake model for 'hello computer'" in caplog.text and "wake-train" in caplog.text
    said = pad(wake_set.say("hello computer", Voice("flite", "slt")), 1.0, 1.0)
    assert len(spot(spotter, said)) == 1
    assert isinstance(spotter_for(WakeConfig()), WakeWordSpotter)


def test_a_wrong_or_broken_model_file_is_named(tmp_path) -> None:
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a model")
    with pytest.raises(WakeModelError, match=r"broken\.npz is not a wake model"):
        spotter_for(WakeConfig(model=str(broken)))
    with pytest.raises(WakeModelError, match="no wake model at"):
        spotter_for(WakeConfig(model=str(tmp_path / "missing.npz")))
    other = WakeNet.load(DEFAULT_MODEL)
    other.phrase = "hello computer"
    other.save(tmp_path / "other.npz")
    with pytest.raises(WakeWordError, match="trained for 'hello computer', not 'hey helper'"):
        spotter_for(WakeConfig(model=str(tmp_path / "other.npz")))


# --- eval and calibration ---------------------------------------------------------------


@pytest.fixture(scope="module")
def small_set(wake_set, tmp_path_factory) -> Path:
    """Two clean positives and a negative of sentences and noise: a dataset of wake cases."""
    from tests.wake_set import Voice

    folder = tmp_path_factory.mktemp("wake-eval")
    for voice in ("slt", "rms"):
        write_wav(
            folder / f"{voice}.wav", pad(wake_set.say("hey helper", Voice("flite", voice)), 1, 1)
        )
    other = [wake_set.say(t, Voice("flite", "awb")) for t in ("I need a doctor", "help her")]
    noise = read_wav(wake_set.noise_only()[2])[: 20 * RATE]
    write_wav(folder / "other.wav", np.concatenate([pad(np.concatenate(other), 1, 1), noise]))
    dataset = folder / "wake.jsonl"
    lines = [{"audio": "slt.wav", "wake": True}, {"audio": "rms.wav", "wake": True}]
    lines.append({"audio": "other.wav", "wake": False})
    dataset.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return dataset


def test_hearing_a_set_leaves_the_spotter_as_it_was(small_set) -> None:
    """hear() scores every candidate (no threshold) and then gives the spotter back its
    own threshold and listener, so it still wakes as configured."""
    woke: list[float] = []
    spotter = WakeWordSpotter(
        "hey helper", threshold=2.0, on_candidate=lambda score, _: woke.append(score)
    )
    outcomes = hear(load_wake_cases(small_set), spotter)
    assert [o.best() >= 2.0 for o in outcomes] == [True, True, False]
    assert spotter.threshold == 2.0 and woke == []
    spotter.on_candidate(1.0, 0)
    assert woke == [1.0]


def test_eval_reports_misses_and_false_alarms_last(small_set, tmp_path) -> None:
    result = run_cli("eval", str(small_set), "--wake", "hey helper", timeout=300)
    assert result.returncode == 0, result.stderr
    match = LAST_LINE.match(result.stdout.strip().splitlines()[-1])
    assert match, result.stdout
    assert float(match[1]) == 0.0  # both clean positives heard
    assert "positives: 2" in result.stdout


def test_calibrate_writes_the_threshold_and_keeps_the_rest(small_set, tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[wake]\nphrase = "hey helper"\n\n[speech]\nrate_wpm = 120\n')
    result = run_cli(
        "--config", str(config), "eval", str(small_set), "--wake", "hey helper", "--calibrate",
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = tomllib.loads(config.read_text())
    assert written["speech"]["rate_wpm"] == 120 and written["wake"]["phrase"] == "hey helper"
    threshold = written["wake"]["threshold"]
    assert f"threshold = {threshold:g}" in result.stdout
    # at the calibrated threshold the negative (20 s: any false alarm is too many) is silent
    assert LAST_LINE.match(result.stdout.strip().splitlines()[-1])[2] == "0.0"


def test_calibration_leaves_room_between_the_negatives_and_the_positives() -> None:
    """Midway between the highest negative that must not wake and the lowest positive
    above it (the shipped pair's figures on the 10 dB set: 1.298 and 2.042, so 1.67, not
    1.299): the same misses and false alarms as just above that negative."""

    def outcome(wake: bool, seconds: float, *scores: float) -> WakeOutcome:
        return WakeOutcome(WakeCase(Path("x.wav"), wake), seconds, list(scores))

    negatives = [outcome(False, 3000, 0.5, 1.298, -1.0), outcome(False, 3000, 1.02)]
    positives = [outcome(True, 2, 1.1), outcome(True, 2, 0.3, 2.042), outcome(True, 2, 3.0)]
    report = WakeReport(negatives + positives, "hey helper", 0.0)
    threshold = report.calibrate(1.0)  # 1.67 h of negatives: no false alarm allowed
    assert threshold == 1.67
    assert (len(report.misses(threshold)), report.false_alarms(threshold)) == (1, 0)
    assert len(report.misses(1.299)) == 1
    # one false alarm allowed (6 per 10 h): midway from the second-highest negative
    assert report.calibrate(6.0) == round((1.02 + 1.1) / 2, 3)
    # nothing fits between them: just above the negative
    close = WakeReport([*negatives, outcome(True, 2, 1.299)], "hey helper", 0.0)
    assert close.calibrate(1.0) == 1.299
    # no positive above it: just above the negative
    none_above = WakeReport([*negatives, outcome(True, 2, 1.0)], "hey helper", 0.0)
    assert none_above.calibrate(1.0) == 1.299
    # a negative that is itself a three-decimal value is not woken on
    for score in (1.001, 0.3, 2.007):
        exact = WakeReport([outcome(False, 6000, score), outcome(True, 2, -1.0)], "x", 0.0)
        assert exact.calibrate(1.0) > score


def test_write_threshold_replaces_or_adds_the_key(tmp_path) -> None:
    path = tmp_path / "c.toml"
    write_threshold(path, -1.5)  # no file yet
    assert tomllib.loads(path.read_text()) == {"wake": {"threshold": -1.5}}
    path.write_text(
        '[wake]\nthreshold = -3.0\nphrase = "hey helper"\n[endpoint]\nthreshold_x = 1\n'
    )
    write_threshold(path, -0.75)
    loaded = tomllib.loads(path.read_text())
    assert loaded["wake"] == {"threshold": -0.75, "phrase": "hey helper"}
    assert loaded["endpoint"] == {"threshold_x": 1}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"audio": "a.wav"}', '"wake": true or false'),
        ('{"audio": "a.wav", "wake": "yes"}', '"wake": true or false'),
        ('{"wake": true}', '"audio"'),
        ("[1, 2]", '"audio"'),
        ("{oops", "wake.jsonl:1"),
    ],
)
def test_a_bad_wake_case_is_named_with_its_line(tmp_path, line, problem) -> None:
    path = tmp_path / "wake.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(DatasetError, match=re.escape(problem)):
        load_wake_cases(path)


def test_wake_cases_without_wake_or_calibrate_without_phrase_say_so(small_set, tmp_path) -> None:
    result = run_cli("eval", str(small_set))
    assert result.returncode == 2 and "--wake PHRASE" in result.stderr
    config = tmp_path / "c.toml"
    config.write_text("[speech]\nrate_wpm = 120\n")
    result = run_cli("--config", str(config), "eval", str(small_set), "--calibrate")
    assert result.returncode == 2 and "--calibrate needs --wake" in result.stderr
    assert config.read_text() == "[speech]\nrate_wpm = 120\n"
    result = run_cli("eval", str(small_set), "--wake", "hey zorblax")
    assert result.returncode == 2 and "zorblax" in result.stderr


# --- the fixed subset -------------------------------------------------------------------


@pytest.mark.parametrize("snr", [20, 10])
def test_figures_on_the_fixed_subset(wake_set, snr) -> None:
    """The issue's target (miss <= 5% at <= 1 false alarm per 10 h at 10 dB), asserted on
    the subset at the default threshold: every second positive (12 by flite at speeds it
    was not trained on, 12 by espeak-ng voices it never heard), ~10 min of other speech,
    one stream of it holding every sound-alike by every voice; at most 1 of 24 missed
    (4.2%) and no false alarm (10 min cannot show 1 per 10 h other than by none). The whole
    set reaches it too (README, "Wake word": 2/48 missed, none false in 1.67 h).
    Measured with the two networks that must agree, threshold 1.30: 10 dB and 20 dB 0/24
    missed, no false alarm (the highest negative 1.298, "hey kelper" in white noise); at
    1.67 (midway to the next positive of the whole set) the same. The
    log-mel network alone at 2.11: the same; before it, at 2.0: 10 dB 2/24, none. The
    perceptron: 10 dB 5/24, 5; 20 dB 1/24, 8. The pocketsphinx spotter: 8 of flite's 12
    alone, 9."""
    report = WakeReport(
        hear(load_wake_cases(wake_set.dataset(snr, subset=True)), WakeWordSpotter("hey helper")),
        "hey helper",
        WakeConfig().threshold,
    )
    assert len(report.positives) == 24 and len(report.negatives) == 2
    assert len(report.misses()) <= {20: 0, 10: 1}[snr], report.lines(30)
    assert report.false_alarms() == 0, report.lines()
    ordinary = report.negatives[1]  # five minutes of other speech, no sound-alikes
    assert not any(s >= report.threshold for s in ordinary.scores)


def test_another_seed_makes_another_set_of_the_same_design(tmp_path) -> None:
    """`python -m tests.wake_set --seed 13`: the same voices and texts, other noise."""
    first, second = WakeSet(cache=tmp_path), WakeSet(cache=tmp_path, seed=13)
    assert first.seed == json.loads(first.spec_path.read_text())["seed"] != 13
    assert second.seed == 13 and second.directory != first.directory
    assert second.voices == first.voices
    assert not np.array_equal(first.noise("babble")[:RATE], second.noise("babble")[:RATE])
