"""`make bench` keeps working: the harness in its quick mode on the fast sections (real
Mosquitto, real family-notify workers), the JSON it writes, the short table, the comparison
with a baseline, and refusals of bad options. The figures themselves are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import SECTIONS, TABLE, Row, comparison, direction, short_table

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("pocketsphinx", "vosk", "paho-mqtt", "mosquitto", "hassil", "rapidfuzz",
            "webrtcvad-wheels")  # fmt: skip


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("bench") / "first.json"
    done = bench("--quick", "--only", "mqtt", "--only", "family", "--seed", "5", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout


def test_the_json_has_the_machine_the_options_and_the_figures(quick_run) -> None:
    out, _ = quick_run
    report = json.loads(out.read_text())
    assert report["options"] == {
        "seed": 5, "quick": True, "households": 1000, "speech_cases": 20, "wake_full": False,
    }  # fmt: skip
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]
    for name in VERSIONS:
        assert report["machine"]["versions"][name], f"no version of {name}"
    assert len(report["load_average"]["before"]) == 3 and len(report["load_average"]["after"]) == 3
    assert set(report["seconds"]) == {"mqtt", "family", "total"}
    assert "errors" not in report
    for load in ("burst", "steady_50_per_s"):
        figures = report["mqtt"][load]
        assert figures["messages_per_s"] > 0
        assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p99"]
    assert report["family"]["households"] == 20  # --quick caps the simulated households
    for workers in ("workers_1", "workers_2"):
        burst = report["family"][workers]["burst"]
        assert burst["alerts"] == 20 and burst["notices"] == 20 * 3
        assert burst["alerts_per_s"] > 0


def test_the_short_table_shows_what_ran_and_the_machine(quick_run) -> None:
    _, stdout = quick_run
    assert "device link burst" in stdout
    assert "alert -> family inbox at 20/s, p50 / p99" in stdout
    assert "pocketsphinx" not in stdout.split("measured")[0]  # the speech section did not run
    assert "cores" in stdout and "mosquitto 2." in stdout and "seed 5" in stdout
    assert len(stdout.splitlines()) < 25


def test_a_baseline_gives_the_ratio_of_every_common_figure(quick_run, tmp_path: Path) -> None:
    first, _ = quick_run
    baseline = json.loads(first.read_text())
    baseline["mqtt"]["burst"]["latency_ms_p99"] /= 100  # the new run will look 100x slower
    edited = tmp_path / "baseline.json"
    edited.write_text(json.dumps(baseline))
    done = bench("--quick", "--only", "mqtt", "--baseline", str(edited),
                 "--out", str(tmp_path / "second.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    ratio_lines = [line for line in lines if line.startswith("mqtt.")]
    assert len(ratio_lines) == len(baseline["mqtt"]["burst"]) * 2  # both loads, every figure
    p99 = next(line for line in ratio_lines if line.startswith("mqtt.burst.latency_ms_p99"))
    assert "WORSE" in p99
    assert any("figures worse than the baseline" in line for line in lines)
    assert any(line.startswith("  device link burst") and " x" in line for line in lines)


def test_a_saved_run_is_shown_again_without_running(quick_run) -> None:
    out, stdout = quick_run
    done = bench("--show", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert " ..." not in done.stderr
    table = [line for line in stdout.splitlines() if not line.startswith("written:")]
    assert done.stdout.splitlines() == table


def test_worse_means_slower_for_times_and_lower_for_rates() -> None:
    assert direction("speech.pocketsphinx.last_frame_to_intent_ms_p95") == -1
    assert direction("speech.assistant_vosk_ko.start_to_listening_s_p50") == -1
    assert direction("doctor.broker_default.request_to_assigned.p99_ms") == -1
    assert direction("mqtt.burst.messages_per_s") == 1
    assert direction("understanding.speech_pocketsphinx.snr_5db.command_acceptance") == 1
    assert direction("understanding.speech_pocketsphinx.snr_5db.cases") == 0
    now = {"a.latency_ms_p50": 12.0, "a.messages_per_s": 80.0, "a.cases": 10.0}
    before = {"a.latency_ms_p50": 10.0, "a.messages_per_s": 100.0, "a.cases": 20.0}
    lines = comparison(now, before)
    assert [("WORSE" in line) for line in lines[1:4]] == [True, True, False]
    assert lines[-1].startswith("2 of 3 figures worse")


def test_every_row_of_the_short_table_names_a_section() -> None:
    rows = [row for row in TABLE if isinstance(row, Row)]
    assert 15 <= len(rows) <= 25
    for row in rows:
        for path in row.paths:
            assert path.split(".", 1)[0] in SECTIONS, path
    figures = {path: 1.0 for row in rows for path in row.paths}
    assert len(short_table(figures, {})) <= 25
    assert all("n/a" not in line for line in short_table(figures, {}))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--households", "0"], "--households and --speech-cases must be at least 1"),
        (["--speech-cases", "-1"], "--households and --speech-cases must be at least 1"),
        (["--baseline", "/nonexistent/bench.json"], "cannot read the baseline"),
        (["--show", "/nonexistent/bench.json"], "cannot read the saved run"),
        (["--only", "nosuch"], "invalid choice"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(args: list[str], message: str) -> None:
    done = bench(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert " ..." not in done.stderr  # no section started ("bench: NAME ...")
