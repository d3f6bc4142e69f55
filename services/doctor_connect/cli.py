"""`doctor-connect`: run the backend and manage its roster.

    doctor-connect [--config FILE] [-v] serve [--host H] [--port P] [--database DB]
    doctor-connect doctor add ID --name NAME --department DEPT [--hours "mon-fri 08:00-16:00"]
                              [--languages en,de] [--phone NUMBER] [--state STATE]
    doctor-connect doctor list [--json]
    doctor-connect doctor set-status ID available|busy|offline
    doctor-connect doctor remove ID
    doctor-connect appointments [--json]
    doctor-connect status [--json]

The roster commands write the database; a running `serve` picks the changes up within a
tick. Errors a person can fix end with one line `doctor-connect: ...` and exit code 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence

from services.doctor_connect import roster
from services.doctor_connect.config import Config, ConfigError, load_config
from services.doctor_connect.store import Store

PROG = "doctor-connect"


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="The doctor-connect backend.")
    parser.add_argument("--config", help="a TOML config file (see the README)")
    parser.add_argument("--database", help="the SQLite file (overrides service.database)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="connect to the broker and serve")
    serve.add_argument("--host", help="the broker (overrides mqtt.host)")
    serve.add_argument("--port", type=int, help="the broker's port (overrides mqtt.port)")
    serve.add_argument("--practice", help="the practice id (overrides service.practice)")
    serve.add_argument("--client-id", help="this worker's MQTT client id (mqtt.client_id)")

    doctor = commands.add_parser("doctor", help="the roster").add_subparsers(
        dest="action", required=True
    )
    add = doctor.add_parser("add", help="add a doctor (or change one)")
    add.add_argument("id")
    add.add_argument("--name", required=True, help="the name the senior hears")
    add.add_argument("--department", required=True)
    add.add_argument("--hours", help='"mon-fri 08:00-16:00"; GPs default to around the clock')
    add.add_argument("--languages", default="en", help="comma-separated, e.g. en,de")
    add.add_argument("--phone", help="the number a phone consultation calls from")
    add.add_argument("--state", default="offline", choices=("available", "busy", "offline"))
    listing = doctor.add_parser("list", help="the roster")
    listing.add_argument("--json", action="store_true")
    state = doctor.add_parser("set-status", help="set a doctor's state")
    state.add_argument("id")
    state.add_argument("state", choices=("available", "busy", "offline"))
    remove = doctor.add_parser("remove", help="take a doctor off the roster")
    remove.add_argument("id")

    appointments = commands.add_parser("appointments", help="appointments to come")
    appointments.add_argument("--json", action="store_true")
    status = commands.add_parser("status", help="requests, sessions, outbox, refusals")
    status.add_argument("--json", action="store_true")
    return parser


def _config(args: argparse.Namespace) -> Config:
    config = load_config(args.config)
    if args.database:
        config.service.database = args.database
    for key in ("host", "port", "client_id"):
        if getattr(args, key, None) is not None:
            setattr(config.mqtt, key, getattr(args, key))
    if getattr(args, "practice", None):
        config.service.practice = args.practice
    return config


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="minutes")


def _doctor(store: Store, args: argparse.Namespace) -> int:
    if args.action == "add":
        new = roster.NewDoctor(
            id=args.id,
            name=args.name,
            department=args.department,
            hours=args.hours,
            languages=tuple(args.languages.split(",")),
            phone=args.phone,
            state=args.state,
        )
        roster.save(store, roster.build(new))
        print(f"doctor {args.id} saved")
    elif args.action == "set-status":
        roster.set_state(store, args.id, args.state)
        print(f"doctor {args.id} is {args.state}")
    elif args.action == "remove":
        roster.remove(store, args.id)
        print(f"doctor {args.id} removed")
    else:
        open_sessions = dict(
            store.query(
                "SELECT doctor, COUNT(*) FROM requests WHERE state IN ('assigned', 'accepted')"
                " GROUP BY doctor"
            )
        )
        doctors = [
            {
                "id": d.id,
                "name": d.name,
                "department": d.department,
                "hours": d.hours.text,
                "languages": sorted(d.languages),
                "phone": d.phone,
                "state": d.state,
                "open_sessions": open_sessions.get(d.id, 0),
                "served": d.served,
            }
            for d in roster.load(store)
        ]
        if args.json:
            print(json.dumps(doctors, indent=2))
        for d in [] if args.json else doctors:
            print(
                f"{d['id']:16s} {d['name']:24s} {d['department']:16s} {d['state']:9s}"
                f" {d['open_sessions']} open  {d['hours']}  {','.join(d['languages'])}"
            )
    return 0


def _appointments(store: Store, args: argparse.Namespace) -> int:
    rows = store.query(
        "SELECT id, household, device, department, doctor, starts, mode, reminded"
        " FROM appointments WHERE starts > strftime('%s','now') - 3600 ORDER BY starts"
    )
    items = [dict(row) | {"starts": _when(row["starts"])} for row in rows]
    if args.json:
        print(json.dumps(items, indent=2))
    for a in [] if args.json else items:
        print(
            f"{a['starts']}  {a['department']:16s} {a['doctor']:16s} {a['household']}/{a['device']}"
        )
    return 0


def _status(store: Store, args: argparse.Namespace) -> int:
    states = dict(store.query("SELECT state, COUNT(*) FROM requests GROUP BY state"))
    report = {
        "requests": states,
        "waiting": states.get("waiting", 0),
        "open_sessions": states.get("assigned", 0) + states.get("accepted", 0),
        "outbox": store.outbox_size(),
        "refused": store.rejections(),
        "doctors": dict(store.query("SELECT state, COUNT(*) FROM doctors GROUP BY state")),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = _config(args)
        if args.command == "serve":
            from services.doctor_connect.service import serve

            return serve(config)
        store = Store(config.database_path())
        try:
            if args.command == "doctor":
                return _doctor(store, args)
            if args.command == "appointments":
                return _appointments(store, args)
            return _status(store, args)
        finally:
            store.close()
    except (ConfigError, roster.RosterError, UsageError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
