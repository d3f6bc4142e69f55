"""`senior-assistant`: run the assistant, speak, manage speech models, list audio devices."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from assistant.config import Config, ConfigError, load_config
from assistant.emergency_check import alert_left_open
from assistant.reminders_cli import add_reminders_command

log = logging.getLogger("assistant")

EXIT_USAGE = 2  # bad configuration, model, device or input: a clear message, no traceback


class UserError(Exception):
    """Something the person running the command can fix; printed as one line."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
        return int(args.handler(args, config) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every expected failure type ends here as one clear line
        if not _is_user_error(exc):
            raise
        print(f"senior-assistant: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _is_user_error(exc: Exception) -> bool:
    from assistant.audio_io import AudioDeviceError
    from assistant.evaluate import DatasetError
    from assistant.models import ModelError
    from assistant.pcm import AudioFileError
    from assistant.reminders_cli import ReminderCommandError
    from assistant.schedule import ScheduleError
    from assistant.speech.recognizer import RecognizerError
    from assistant.speech.tts import SpeechOutputError
    from devices.interfaces import DeviceError
    from intents import IntentsError

    expected = (
        UserError,
        DeviceError,
        ConfigError,
        DatasetError,
        AudioDeviceError,
        ModelError,
        AudioFileError,
        RecognizerError,
        SpeechOutputError,
        IntentsError,
        ReminderCommandError,
        ScheduleError,
    )
    return isinstance(exc, expected)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="senior-assistant", description=__doc__)
    parser.add_argument("--config", help="TOML config file (default: XDG config dir)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="debug logging, including what was heard (personal data)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="listen and answer")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--input", metavar="WAV", help="listen to a WAV file instead of a mic")
    source.add_argument(
        "--text",
        metavar="TEXT",
        help="a typed request instead of speech ('-': one per line on stdin)",
    )
    run.add_argument("--no-wake", action="store_true", help="listen without the wake phrase")
    run.add_argument("--once", action="store_true", help="stop after the first request")
    run.add_argument(
        "--reply-wav",
        metavar="WAV",
        help="record the spoken replies to this file instead of the loudspeaker",
    )
    run.add_argument("--recognizer", choices=["pocketsphinx", "vosk"], help="override config")
    run.add_argument(
        "--offline",
        action="store_true",
        help="do not connect to the services (a demo: alerts and messages are not sent)",
    )
    run.set_defaults(handler=cmd_run)

    say = sub.add_parser("say", help="speak a sentence with the assistant's voice")
    say.add_argument("text")
    say.add_argument("--out", metavar="WAV", help="write to a WAV file instead of playing")
    say.set_defaults(handler=cmd_say)

    devices = sub.add_parser("devices", help="list audio devices")
    devices.set_defaults(handler=cmd_devices)

    models = sub.add_parser("models", help="speech models: list, install, verify")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="models in the manifest and whether they are installed")
    install = msub.add_parser("install", help="install a model from its URL or a local file")
    install.add_argument("name")
    install.add_argument(
        "--from",
        dest="source",
        metavar="URL_OR_PATH",
        help="archive URL, local .zip/.tar.gz, or model folder",
    )
    verify = msub.add_parser("verify", help="check an installed model file by file")
    verify.add_argument("name")
    models.set_defaults(handler=cmd_models)

    evaluate = sub.add_parser("eval", help="score understanding on a labelled JSONL dataset")
    evaluate.add_argument("dataset", metavar="FILE.jsonl")
    evaluate.add_argument("--intents", metavar="DIR", help="another folder of sentence files")
    evaluate.add_argument(
        "--recognizer", choices=["pocketsphinx", "vosk"], help="for audio cases (default: config)"
    )
    evaluate.add_argument("--noise", metavar="WAV", help="mix this noise into audio cases")
    evaluate.add_argument("--snr", type=float, default=10.0, help="noise level in dB (10)")
    evaluate.add_argument("--json", metavar="OUT", help="write every outcome as JSON here")
    evaluate.add_argument("--misses", type=int, default=20, help="misses to list (20)")
    evaluate.add_argument(
        "--wake", metavar="PHRASE", help='score wake cases ({"audio": ..., "wake": true})'
    )
    evaluate.add_argument(
        "--calibrate",
        type=float,
        nargs="?",
        const=1.0,
        metavar="FA_PER_10H",
        help="with --wake: pick the threshold for this false-alarm rate (1 per 10 h) "
        "and write it to the config",
    )
    evaluate.set_defaults(handler=cmd_eval)
    training = sub.add_parser(
        "wake-train", help="train the wake network for a phrase (needs flite; ~40 min)"
    )
    training.add_argument("phrase")
    training.add_argument(
        "--out",
        metavar="FILE.npz",
        help="where to write it (default: wake-<phrase>.npz in the state folder)",
    )
    shipped = "(default: what made the shipped network)"
    training.add_argument("--seed", type=int, help=shipped)
    training.add_argument("--epochs", type=int, help=shipped)
    training.add_argument(
        "--front-end",
        choices=["log", "pcen"],
        default="log",
        help="pcen: the second network, which must agree with the first ([wake] confirm_model)",
    )
    training.set_defaults(handler=cmd_wake_train)
    _add_status_command(sub)
    add_reminders_command(sub)
    return parser


def _voice(config: Config, reply_wav: str | None):
    from assistant.audio_io import Loudspeaker
    from assistant.speech.tts import SpeechSynthesizer
    from assistant.voice import Voice, WavRecorder

    sink = WavRecorder(reply_wav) if reply_wav else Loudspeaker(config.audio.output_device)
    return Voice(SpeechSynthesizer(config.speech), sink)


def cmd_say(args: argparse.Namespace, config: Config) -> int:
    _voice(config, args.out).say(args.text)
    return 0


def cmd_devices(args: argparse.Namespace, config: Config) -> int:
    from assistant.audio_io import list_devices

    devices = list_devices()
    if not devices:
        raise UserError("no audio devices found")
    for index, device in enumerate(devices):
        print(
            f"{index:3d}  in {device['max_input_channels']}  out "
            f"{device['max_output_channels']}  {device['name']}"
        )
    return 0


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    from assistant.device import Device

    if args.recognizer:
        config.recognizer.engine = args.recognizer
    if args.offline:
        log.warning("offline: nothing this assistant is asked to send will be sent")
    from assistant.hardware import hardware_from_config

    keys = args.text is None and args.input is None and config.wake.push_to_talk
    hardware = hardware_from_config(config, terminal_keys=keys and sys.stdin.isatty())
    with Device(config, link=not args.offline, hardware=hardware) as device:
        alerted = alert_left_open(device.checks, _emergency_action(device))
        return _run(args, config, device, alerted)


def _emergency_action(device) -> Callable[[dict[str, str]], object]:
    from assistant.dialog import Action

    return lambda slots: device.actions(Action("emergency", slots))


def _run(args: argparse.Namespace, config: Config, device, alerted=None) -> int:
    """`alerted`: the slots of an alert the device raised as it started (`_resume`)."""
    from assistant.loop import Assistant
    from intents import IntentEngine

    engine = IntentEngine.for_language(config.language)
    voice = _voice(config, args.reply_wav)
    parts = {
        "clock": device.clock,  # the household's time: "today", "at eight", "what time is it"
        "on_action": device.actions,
        "announcer": device.announcer,
        "routines": device.routines,
        "on_say": _show_said,
        "indicator": device.hardware.lights.activity,
        "checks": device.checks,
    }
    if args.text is not None:
        assistant = Assistant(engine, voice, **parts)
        assistant.dialog.phone_line = device.hardware.calls is not None
        _resume(assistant, device, alerted)
        return _run_typed(assistant, args.text, args.once)
    from assistant.speech.factory import create_recognizer
    from assistant.speech.wake import spotter_for

    recognizer = create_recognizer(config, grammar=engine.grammar())
    controls = device.hardware.controls
    # A phone wakes by its action button; the wake phrase only when it has no keys here.
    spotted = device.hardware.profile.wake_word or controls is None or args.input
    wake = None
    if not args.no_wake and spotted:
        wake = spotter_for(config.wake)
    assistant = Assistant(
        engine,
        voice,
        recognizer=recognizer,
        wake=wake,
        endpoint=config.endpoint,
        frame_ms=config.audio.frame_ms,
        chime=args.input is None,
        **parts,
    )
    assistant.dialog.phone_line = device.hardware.calls is not None
    _resume(assistant, device, alerted)
    if args.input:
        return _run_file(assistant, config, Path(args.input), not args.no_wake, args.once)
    return _run_microphone(assistant, config, not args.no_wake, args.once, controls)


def _resume(assistant, device, alerted: dict[str, str] | None) -> None:
    """An emergency check the last run left unanswered alerted as the device started
    (`alerted`), or alerts now (raising it then failed); an alert it raised that nobody
    answered yet is told of, and listened on after."""
    if alerted is not None:
        _show(assistant.resume_raised_alert(alerted))
        return
    turn = assistant.resume_emergency_check()
    if turn is None and device.emergencies.unanswered:
        turn = assistant.resume_unanswered_alert()
    if turn is not None:
        _show(turn)


def _run_typed(assistant, text: str, once: bool) -> int:
    """Typed requests; what the services send is said in between, by a thread of its own
    while the next line is awaited."""
    import threading

    stop = threading.Event()

    def announce() -> None:
        while not stop.is_set():
            assistant.announcer.wait(0.2)
            assistant.speak_pending()

    announcer = threading.Thread(target=announce, name="announcer", daemon=True)
    announcer.start()
    try:
        for request in _typed_requests(text):
            _show(assistant.respond(request))
            if once:
                break
    finally:
        stop.set()
        announcer.join(2.0)
    return 0


def _show_said(sentence: str) -> None:
    """What the assistant said on its own (an announcement), for the console."""
    print(f"said: {sentence}", flush=True)


def _typed_requests(text: str) -> Iterator[str]:
    if text != "-":
        yield text
        return
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def _show(turn) -> None:
    """What the person at the console sees of a turn (their own words: not a log)."""
    print(f"heard: {turn.heard}" + (f" (confidence {turn.confidence:.2f})" if turn.heard else ""))
    slots = " ".join(f"{k}={v}" for k, v in sorted(turn.slots.items()))
    print(f"intent: {turn.intent or 'none'}" + (f" {slots}" if slots else ""))
    print(f"reply: {turn.reply}", flush=True)


def _run_file(assistant, config: Config, path: Path, wake: bool, once: bool) -> int:
    from assistant.endpoint import frames_of
    from assistant.pcm import read_wav

    samples = read_wav(path)
    tail = np.zeros(int(16000 * (config.endpoint.end_silence_ms / 1000 + 1.0)), np.int16)
    frames = frames_of(np.concatenate([samples, tail]), frame_ms=config.audio.frame_ms)
    turns = 0
    for turn in assistant.listen(frames, wake_required=wake):
        _show(turn)
        turns += 1
        if once:
            break
    if turns == 0:
        if wake:
            raise UserError(f"the wake phrase was not heard in {path} (use --no-wake to skip it)")
        raise UserError(f"no speech was heard in {path}")
    return 0


def _run_microphone(assistant, config: Config, wake: bool, once: bool, controls) -> int:
    """`controls`: the device's keys (devices/controls.py): the action button wakes, a long
    press of the emergency key raises an alert."""
    from assistant.audio_io import Microphone

    button = controls.wake_pressed if controls is not None else None
    sos = controls.sos_pressed if controls is not None else None
    with Microphone(config.audio.input_device, config.audio.frame_ms) as mic:
        how = f"say '{config.wake.phrase}'" if assistant.wake is not None else "speak"
        log.info("ready: %s%s", how, " or press the action button" if button else "")
        frames = mic.frames()
        for turn in assistant.listen(frames, wake_required=wake, button=button, sos=sos):
            _show(turn)
            if once:
                break
    return 0


def cmd_eval(args: argparse.Namespace, config: Config) -> int:
    """Prints the scores; the last line is `command acceptance: N/M = P%`."""
    import json

    from assistant.evaluate import Evaluator, Report, load_cases
    from assistant.pcm import read_wav
    from intents import IntentEngine

    if args.wake or args.calibrate is not None:
        return _eval_wake(args, config)
    from assistant.wake_eval import is_wake_dataset

    if is_wake_dataset(args.dataset):
        raise UserError(f"{args.dataset} holds wake cases: score them with --wake PHRASE")
    cases = load_cases(args.dataset)
    if args.intents:
        engine = IntentEngine.from_dir(args.intents)
    else:
        engine = IntentEngine.for_language(config.language)
    recognizer = None
    if any(case.audio for case in cases):
        from assistant.speech.factory import create_recognizer

        if args.recognizer:
            config.recognizer.engine = args.recognizer
        recognizer = create_recognizer(config, grammar=engine.grammar())
    noise = read_wav(args.noise) if args.noise else None
    evaluator = Evaluator(engine, recognizer, noise, args.snr)
    report = Report(
        evaluator.run(cases),
        intents_dir=args.intents or config.language,
        recognizer=recognizer.name if recognizer else "",
        noise=args.noise or "",
        snr_db=args.snr if args.noise else None,
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    print("\n".join(report.lines(args.misses)))
    return 0


def _eval_wake(args: argparse.Namespace, config: Config) -> int:
    """Prints the scores; the last line is `wake: miss P% at F false alarms per 10 h`."""
    from assistant.config import default_config_path
    from assistant.speech.wake import WakeWordSpotter, spotter_for
    from assistant.wake_eval import WakeReport, hear, load_wake_cases, write_threshold

    if not args.wake:
        raise UserError("--calibrate needs --wake PHRASE")
    cases = load_wake_cases(args.dataset)
    config.wake.phrase = args.wake
    spotter = spotter_for(config.wake)
    report = WakeReport(hear(cases, spotter), args.wake, spotter.threshold)
    if args.calibrate is not None:
        report.threshold = report.calibrate(args.calibrate)
        target = Path(args.config) if args.config else default_config_path()
        key = "keyphrase_threshold"
        if isinstance(spotter, WakeWordSpotter):
            key = "threshold" if spotter.confirm is not None else "single_threshold"
        write_threshold(target, report.threshold, key)
        print(f"calibrated: [wake] {key} = {report.threshold:g} written to {target}")
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(report.summary(), indent=1), encoding="utf-8")
    print("\n".join(report.lines(args.misses)))
    return 0


def cmd_wake_train(args: argparse.Namespace, config: Config) -> int:
    from assistant.config import cache_dir
    from assistant.wake_train import train
    from intents.grammar import normalize_phrase

    phrase = normalize_phrase(args.phrase)
    name = "wake-" + "_".join(phrase.split()) + ".npz"
    out = Path(args.out) if args.out else config.state_dir() / name
    cache = cache_dir() / "wake-training"  # synthesised speech
    given = {"seed": args.seed, "epochs": args.epochs}  # else train()'s own defaults
    given = {k: v for k, v in given.items() if v is not None}
    net = train(phrase, cache, progress=print, front_end=args.front_end, **given)
    if args.front_end != "log" and not args.out:
        out = out.with_name(out.stem + f"_{args.front_end}.npz")
    net.save(out)
    if args.front_end == "log":
        print(f'wake network for {phrase!r} written to {out}: set [wake] model = "{out}"')
    else:
        print(f'second wake network for {phrase!r} written to {out}: set [wake] confirm_model'
              f' = "{out}" beside [wake] model (the first, `wake-train {phrase!r}`)')  # fmt: skip
    print(f"then calibrate its threshold: senior-assistant eval WAKE.jsonl --wake {phrase!r}"
          " --calibrate")  # fmt: skip
    return 0


def cmd_models(args: argparse.Namespace, config: Config) -> int:
    from assistant import models

    models_dir = (
        Path(config.paths.models_dir).expanduser()
        if config.paths.models_dir
        else models.default_models_dir()
    )
    entries = models.load_manifest(models.default_manifest_path())
    if args.models_command == "list":
        for status in models.model_status(entries, models_dir):
            where = str(status.path) if status.installed else "not installed"
            print(f"{status.name:32s} {status.engine:12s} {status.language:4s} {where}")
        return 0
    entry = models.find_entry(entries, args.name)
    if args.models_command == "install":
        path = models.install_model(
            entry, models_dir, source=args.source, progress=sys.stderr.isatty()
        )
        print(f"installed {entry.name} in {path}")
        return 0
    report = models.verify_model(entry.name, models_dir)
    if report.ok:
        print(f"{entry.name}: ok ({report.files} files, {report.bytes} bytes)")
        return 0
    for problem in report.problems:
        print(f"{entry.name}: {problem}")
    return 1


def _add_status_command(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser("status", help="the link to the backends: state, queued messages")
    status.add_argument("--json", action="store_true", help="print machine-readable JSON")
    status.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    """What `assistant/status.py` reads from the state file the running link writes."""
    import sqlite3

    from assistant.status import read_status, render, render_json

    try:
        status = read_status(config.state_dir())
    except sqlite3.Error as exc:
        raise UserError(f"the link's state in {config.state_dir()} cannot be read: {exc}") from None
    print(render_json(status) if args.json else render(status))
    return 0


if __name__ == "__main__":
    sys.exit(main())
