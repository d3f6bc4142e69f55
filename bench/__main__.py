"""Run every benchmark, print a table, write JSON (bench/results/), compare to a baseline."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from bench import doctor, family, mqtt, speech, understanding, wake

# section name -> its run(); `--only` picks some.
SECTIONS = {
    "speech": speech.run,
    "understanding": understanding.run,
    "mqtt": mqtt.run,
    "family": family.run,
    "doctor": doctor.run,
    "wake": wake.run,
}

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ["pocketsphinx", "vosk", "webrtcvad-wheels", "pyttsx3", "hassil", "rapidfuzz"]


def machine() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "versions": versions,
    }


def flatten(results: dict, prefix: str = "") -> dict[str, float]:
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, int | float):
            flat[name] = float(value)
    return flat


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--baseline", help="an earlier results JSON to compare with")
    parser.add_argument("--out", help="where to write the JSON (default bench/results/)")
    parser.add_argument(
        "--only", action="append", choices=sorted(SECTIONS), help="run only these sections"
    )
    args = parser.parse_args(argv)

    report: dict = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    figures = {name: run() for name, run in SECTIONS.items() if name in (args.only or SECTIONS)}
    report.update(figures)
    out = Path(args.out) if args.out else RESULTS / f"bench-{report['date']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))

    baseline = {}
    if args.baseline:
        baseline = flatten(json.loads(Path(args.baseline).read_text()))
    print(f"{'figure':62s} {'value':>10s}" + ("  vs baseline" if baseline else ""))
    for name, value in flatten(figures).items():
        line = f"{name:62s} {value:10.3f}"
        if baseline.get(name):
            line += f"  x{value / baseline[name]:.2f}"
        print(line)
    print(f"machine: {report['machine']['cores']} cores, Python {report['machine']['python']}")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
