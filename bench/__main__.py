"""`make bench`: run every benchmark section, write one JSON file, print a short table;
with `--baseline FILE`, the ratio of every figure to that earlier run, worse ones flagged."""

from __future__ import annotations

import argparse
import datetime as dt
import inspect
import json
import math
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import doctor, family, mqtt, speech, understanding, wake, web
from bench.common import DEFAULT_SEED, Options, machine

# section name -> its run(); a run() may take the Options (seed, quick, households) or
# nothing. A new section is one line here (and rows in TABLE for the short table).
SECTIONS: dict[str, Callable[..., dict]] = {
    "speech": speech.run,
    "understanding": understanding.run,
    "mqtt": mqtt.run,
    "family": family.run,
    "doctor": doctor.run,
    "web": web.run,
    "wake": wake.run,
}

RESULTS = Path(__file__).resolve().parent / "results"
WORSE = 1.10  # a ratio past this (or below its inverse for rates) is flagged


@dataclass(frozen=True)
class Row:
    """A line of the short table: one or more figures (JSON paths) in one unit."""

    label: str
    paths: tuple[str, ...]
    unit: str = ""
    digits: int = 0


def _rows(*rows: tuple) -> list[Row | str]:
    return [r if isinstance(r, str) else Row(r[0], tuple(r[1].split()), *r[2:]) for r in rows]


SP, VK = "speech.pocketsphinx.", "speech.vosk_ko."
UC = "understanding.speech_pocketsphinx."
FW = "family.workers_1."
TABLE = _rows(
    "speech recognition (24 flite commands; end of speech includes the full end pause)",
    ("pocketsphinx real-time factor", SP + "real_time_factor", "", 2),
    ("  last frame fed -> intent, p50 / p95", f"{SP}last_frame_to_intent_ms_p50 "
     f"{SP}last_frame_to_intent_ms_p95", "ms"),
    ("  end of speech -> intent, p50 / p95", f"{SP}end_of_speech_to_intent_ms_p50 "
     f"{SP}end_of_speech_to_intent_ms_p95", "ms"),
    ("vosk, KOREAN model & speech, real-time factor", VK + "real_time_factor", "", 2),
    ("  last frame fed -> intent, p50 / p95", f"{VK}last_frame_to_intent_ms_p50 "
     f"{VK}last_frame_to_intent_ms_p95", "ms"),
    "understanding (held-out set; spoken: a seeded sample in flite voices, white noise)",
    ("intent engine latency p50 / p99", "understanding.engine.latency_ms_p50 "
     "understanding.engine.latency_ms_p99", "ms", 1),
    ("intent engine throughput", "understanding.engine.throughput_per_s", "/s"),
    ("typed: command acceptance", "understanding.engine.command_acceptance", "%"),
    ("spoken: acceptance clean / 10 dB / 5 dB", f"{UC}clean.command_acceptance "
     f"{UC}snr_10db.command_acceptance {UC}snr_5db.command_acceptance", "%"),
    ("spoken: emergency recall clean / 10 / 5 dB", f"{UC}clean.emergency_recall "
     f"{UC}snr_10db.emergency_recall {UC}snr_5db.emergency_recall", "%"),
    ("spoken: decode time p50, clean / 10 / 5 dB", f"{UC}clean.recognizer_ms_p50 "
     f"{UC}snr_10db.recognizer_ms_p50 {UC}snr_5db.recognizer_ms_p50", "ms"),
    "messaging (local Mosquitto)",
    ("device link burst", "mqtt.burst.messages_per_s", "msg/s"),
    ("device link at 50/s, p50 / p99", "mqtt.steady_50_per_s.latency_ms_p50 "
     "mqtt.steady_50_per_s.latency_ms_p99", "ms", 1),
    ("alert -> family inbox at 20/s, p50 / p99", f"{FW}steady_20_per_s.alert_to_inbox_ms_p50 "
     f"{FW}steady_20_per_s.alert_to_inbox_ms_p99", "ms", 1),
    ("alert burst, 1 / 2 family-notify workers", f"{FW}burst.alerts_per_s "
     "family.workers_2.burst.alerts_per_s", "alerts/s"),
    ("doctor request -> assigned, p50 / p99", "doctor.broker_tcp_nodelay.request_to_assigned"
     ".p50_ms doctor.broker_tcp_nodelay.request_to_assigned.p99_ms", "ms", 1),
    "the assistant process (pocketsphinx / vosk Korean)",
    ("start -> listening, p50", "speech.assistant_pocketsphinx.start_to_listening_s_p50 "
     "speech.assistant_vosk_ko.start_to_listening_s_p50", "s", 2),
    ("start -> first spoken reply, p50", "speech.assistant_pocketsphinx.start_to_first_reply_s_p50"
     " speech.assistant_vosk_ko.start_to_first_reply_s_p50", "s", 2),
    ("peak resident memory, listening", "speech.assistant_pocketsphinx.listening_peak_rss_mb "
     "speech.assistant_vosk_ko.listening_peak_rss_mb", "MB"),
    "family web console (20 open pages)",
    ("alert -> open pages notified, p50 / p99", "web.live.alert_to_page_ms_p50 "
     "web.live.alert_to_page_ms_p99", "ms", 1),
)  # fmt: skip

_HIGHER_IS_BETTER = re.compile(r"per_s|acceptance|accuracy|recall|intent_right")
_LOWER_IS_BETTER = re.compile(r"(^|_)(ms|s|mb)(_|$)|real_time_factor|false_accepts")


def direction(name: str) -> int:
    """+1 when a larger value is better, -1 when smaller is, 0 for counts and settings."""
    last = name.rsplit(".", 1)[-1]
    if _HIGHER_IS_BETTER.search(last):
        return 1
    if _LOWER_IS_BETTER.search(last):
        return -1
    return 0


def is_worse(name: str, ratio: float) -> bool:
    return (direction(name) < 0 and ratio > WORSE) or (direction(name) > 0 and ratio < 1 / WORSE)


def flatten(results: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def ratio(value: float, base: float | None) -> float | None:
    if base is None or base == 0 or math.isnan(base) or math.isnan(value):
        return None
    return value / base


def _show(value: float | None, row: Row) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if row.unit == "%":
        return f"{100 * value:.0f}"
    return f"{value:,.{row.digits}f}"


def short_table(figures: dict[str, float], baseline: dict[str, float]) -> list[str]:
    """The human summary: a line per row whose section ran, ratios when comparing."""
    ran = {name.split(".", 1)[0] for name in figures}
    lines = []
    for row in TABLE:
        if isinstance(row, str):
            lines.append(row)
            continue
        if not any(p.split(".", 1)[0] in ran for p in row.paths):
            continue
        values = " / ".join(_show(figures.get(p), row) for p in row.paths)
        line = f"  {row.label:45s} {values} {row.unit}".rstrip()
        if baseline:
            ratios = [(p, ratio(figures.get(p, math.nan), baseline.get(p))) for p in row.paths]
            shown = " / ".join("-" if r is None else f"x{r:.2f}" for _, r in ratios)
            worse = any(r is not None and is_worse(p, r) for p, r in ratios)
            line = f"{line:76s} {shown}" + ("  << WORSE" if worse else "")
        lines.append(line)
    return [line for i, line in enumerate(lines) if _keep_header(lines, i)]


def _keep_header(lines: list[str], index: int) -> bool:
    """A section heading stays only when a figure line follows it."""
    if lines[index].startswith("  "):
        return True
    return index + 1 < len(lines) and lines[index + 1].startswith("  ")


def comparison(figures: dict[str, float], baseline: dict[str, float]) -> list[str]:
    """Every figure both runs have, with its ratio; worse ones marked."""
    lines = [f"{'figure':66s} {'value':>10s} {'baseline':>10s}  ratio"]
    worse = 0
    for name, value in figures.items():
        r = ratio(value, baseline.get(name))
        if r is None:
            continue
        flag = ""
        if is_worse(name, r):
            flag, worse = "  << WORSE", worse + 1
        lines.append(f"{name:66s} {value:10.3f} {baseline[name]:10.3f}  x{r:.2f}{flag}")
    lines.append(f"{worse} of {len(lines) - 1} figures worse than the baseline by > "
                 f"{WORSE - 1:.0%}")  # fmt: skip
    return lines


def describe(report: dict) -> list[str]:
    m = report["machine"]
    load = report["load_average"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return [
        f"measured {report['date']} on {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, {m['system']}",
        f"load average (1 min) {load['before'][0]:.2f} before, {load['after'][0]:.2f} after; "
        f"seed {report['options']['seed']}; took {report['seconds']['total']:.0f} s",
        f"versions: {versions}",
    ]


def run_sections(names: list[str], options: Options) -> tuple[dict, dict, dict]:
    """(figures by section, seconds by section, errors by section)."""
    figures, seconds, errors = {}, {}, {}
    for name in names:
        run = SECTIONS[name]
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            figures[name] = run(options) if inspect.signature(run).parameters else run()
        except Exception as exc:  # a broken section must not lose the others' figures
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}"
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"bench: {name} took {seconds[name]:.0f} s", file=sys.stderr, flush=True)
    return figures, seconds, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--baseline", help="an earlier results JSON to compare with")
    parser.add_argument("--out", help="where to write the JSON (default bench/results/)")
    parser.add_argument(
        "--only", action="append", choices=sorted(SECTIONS), help="run only these sections"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="for every random choice")
    parser.add_argument("--households", type=int, default=Options.households,
                        help="simulated households in the family section")  # fmt: skip
    parser.add_argument("--speech-cases", type=int, default=Options.speech_cases,
                        help="held-out cases spoken in the understanding section")  # fmt: skip
    parser.add_argument("--wake-full", action="store_true",
                        help="the wake section on the whole generated set (long)")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="a few items a section: checks the harness, no figures")  # fmt: skip
    parser.add_argument("--all", action="store_true", help="print every figure, not the summary")
    parser.add_argument(
        "--show", metavar="FILE", help="print the table of a saved run, run nothing"
    )
    args = parser.parse_args(argv)
    if args.households < 1 or args.speech_cases < 1:
        parser.error("--households and --speech-cases must be at least 1")
    baseline: dict[str, float] = {}
    if args.baseline:
        baseline = flatten(_load(parser, args.baseline, "the baseline"))
    if args.show:
        saved = _load(parser, args.show, "the saved run")
        try:
            print_report(saved, {k: v for k, v in saved.items() if k in SECTIONS}, baseline, args)
        except KeyError as exc:
            parser.error(f"{args.show} is not a bench result: no {exc}")
        return 0

    options = Options(seed=args.seed, quick=args.quick, households=args.households,
                      speech_cases=args.speech_cases, wake_full=args.wake_full)  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    report: dict = {
        "date": now.isoformat(timespec="seconds"),
        "options": options.to_json(),
        "machine": machine(),
        "load_average": {"before": list(os.getloadavg())},
    }
    started = time.perf_counter()
    figures, seconds, errors = run_sections(args.only or list(SECTIONS), options)
    seconds["total"] = round(time.perf_counter() - started, 1)
    report["load_average"]["after"] = list(os.getloadavg())
    report["seconds"] = seconds
    if errors:
        report["errors"] = errors
    report.update(figures)
    out = Path(args.out) if args.out else RESULTS / f"bench-{now:%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print_report(report, figures, baseline, args)
    for name, error in errors.items():
        print(f"section {name} FAILED: {error}")
    print(f"written: {out}")
    return 1 if errors else 0


def _load(parser: argparse.ArgumentParser, path: str, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {what} {path}: {exc}")


def print_report(
    report: dict, figures: dict, baseline: dict[str, float], args: argparse.Namespace
) -> None:
    flat = flatten(figures)
    if baseline:
        print("\n".join(comparison(flat, baseline)) + "\n")
    if args.all:
        print("\n".join(f"{name:66s} {value:12.3f}" for name, value in flat.items()))
    else:
        print("\n".join(short_table(flat, baseline)))
    print("\n".join(describe(report)))


if __name__ == "__main__":
    sys.exit(main())
