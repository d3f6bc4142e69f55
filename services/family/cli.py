"""`family-notify`: run the family-notification service and manage what it knows.

    family-notify serve [--worker N] [--web HOST:PORT]    one worker (and the web console)
    family-notify household add|change|remove|list|show   households and their devices
    family-notify household member add|change|remove      up to eight members each
    family-notify household member set-password H M       a member's web console password
    family-notify reminder add|change|remove|list         a senior's reminders, from afar
    family-notify alert list|show|close                   alerts, their state and audit trail
    family-notify digest HOUSEHOLD [--day D] [--send]     the daily digest
    family-notify status                                  what the service refused, what waits

Commands other than `serve` work on the database alone: what they send (a reminder
command, a digest) is queued in the outbox and a running worker sends it within a tick.
"""

from __future__ import annotations

import argparse
import faulthandler
import getpass
import json
import logging
import signal
import sys
import time
from typing import Any

from protocol import ReminderAdd, ReminderChange, ReminderRemove
from protocol.schema import SchemaError, from_dict
from services.family import alerts, households, reminders
from services.family.config import ConfigError, FamilyConfig, load_config, parse_listen
from services.family.digest import build, local_day
from services.family.households import Household, HouseholdError, Member
from services.family.outbox import Outbox
from services.family.store import Store

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    except HouseholdError as exc:
        print(f"family-notify: refused ({exc.reason}): {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, SchemaError, ValueError) as exc:
        print(f"family-notify: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def _store(config: FamilyConfig) -> Store:
    return Store(config.database())


def _queue(store: Store) -> Outbox:
    """The CLI's outbox: what it plans, a running worker sends."""
    return Outbox(store, {}, "cli", claims=False)


# --- serve --------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, config: FamilyConfig) -> int:
    from services.family.service import FamilyService
    from services.stop_signals import StopSignals

    stop = StopSignals()  # SIGTERM, SIGINT (no lock in the handler: see the module)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` prints every thread's stack
    listen = args.web or config.web.listen
    if listen:
        parse_listen(listen)  # a ValueError before anything starts
    service = FamilyService(config, worker=args.worker)
    try:
        service.start()
    except TimeoutError as exc:
        print(f"family-notify: cannot serve: {exc}", file=sys.stderr)
        return 1
    web = None
    if listen:
        from services.family.web.server import WebConsole

        try:
            web = WebConsole(service, listen, config.web).start()
        except OSError as exc:
            service.stop()
            print(
                f"family-notify: cannot serve the web console on {listen}: {exc}", file=sys.stderr
            )
            return 1
        print(f"family-notify: web console at {web.url}", flush=True)
    print(f"family-notify: serving as {service.client_id}", flush=True)
    stop.wait()
    if web is not None:
        web.stop()
    service.stop()
    return 0


# --- households ---------------------------------------------------------------------------


def cmd_household_add(args: argparse.Namespace, config: FamilyConfig) -> int:
    household = Household(
        id=args.household,
        senior=args.senior,
        devices=tuple(args.device),
        timezone=args.timezone,
        emergency_number=args.emergency_number,
    )
    households.add(_store(config), household)
    print(f"household {household.id} added")
    return 0


def cmd_household_change(args: argparse.Namespace, config: FamilyConfig) -> int:
    changes = {
        k: v
        for k, v in {
            "senior": args.senior,
            "timezone": args.timezone,
            "emergency_number": args.emergency_number,
            "devices": tuple(args.device) if args.device else None,
        }.items()
        if v is not None
    }
    _print(households.change(_store(config), args.household, **changes).to_dict())
    return 0


def cmd_household_remove(args: argparse.Namespace, config: FamilyConfig) -> int:
    households.remove(_store(config), args.household)
    print(f"household {args.household} removed")
    return 0


def cmd_household_list(args: argparse.Namespace, config: FamilyConfig) -> int:
    for household_id in households.ids(_store(config).db):
        print(household_id)
    return 0


def cmd_household_show(args: argparse.Namespace, config: FamilyConfig) -> int:
    _print(households.require(_store(config).db, args.household).to_dict())
    return 0


def _member_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields = {
        "name": args.name,
        "role": args.role,
        "relation": args.relation,
        "quiet": args.quiet,
        "language": args.language,
        "contacts": tuple(args.contact) if args.contact is not None else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def cmd_member_add(args: argparse.Namespace, config: FamilyConfig) -> int:
    if not args.name:
        raise ValueError("a new member needs --name")
    member = Member(id=args.member, **_member_fields(args))
    households.add_member(_store(config), args.household, member)
    print(f"member {member.id} added to {args.household}")
    return 0


def cmd_member_change(args: argparse.Namespace, config: FamilyConfig) -> int:
    fields = _member_fields(args)
    if args.no_quiet:
        fields["quiet"] = None
    member = households.change_member(_store(config), args.household, args.member, **fields)
    _print(member.__dict__)
    return 0


def cmd_member_password(args: argparse.Namespace, config: FamilyConfig) -> int:
    from services.family.web.auth import set_password

    if sys.stdin.isatty():
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    set_password(_store(config), args.household, args.member, password)
    print(f"password of {args.member} in {args.household} set; their web sessions ended")
    return 0


def cmd_member_remove(args: argparse.Namespace, config: FamilyConfig) -> int:
    store = _store(config)
    alerts.Alerts(store, _queue(store), config, "cli").remove_member(args.household, args.member)
    print(f"member {args.member} removed from {args.household}")
    return 0


# --- reminders ----------------------------------------------------------------------------


UNTRACKED_WARNING = (
    "note: without --medication the device says this reminder once, does not ask whether"
    " it was taken, and never reports a missed dose"
)


def _reminder_body(args: argparse.Namespace) -> ReminderAdd | ReminderChange | ReminderRemove:
    data: dict[str, Any] = {"reminder_id": args.reminder}
    cls: type = ReminderRemove
    if args.action in ("add", "change"):
        cls = ReminderAdd if args.action == "add" else ReminderChange
        for key in ("text", "at", "medication", "dose", "every_hours", "date"):
            if getattr(args, key) is not None:
                data[key] = getattr(args, key)
        if args.days:
            data["days"] = args.days.split(",")
        if args.action == "add":
            data["kind"] = args.kind
    return from_dict(cls, data)  # the same checks as a command arriving over MQTT


def cmd_reminder(args: argparse.Namespace, config: FamilyConfig) -> int:
    store = _store(config)
    if args.action == "list":
        _print(reminders.listing(store.db, args.household))
        return 0
    body = _reminder_body(args)
    outbox = _queue(store)
    by = args.as_member or reminders.CLI
    command_id, _ = reminders.Reminders(store, outbox).request(body, args.household, by)
    print(f"{body.TYPE} queued for the device as command {command_id}")
    now = [r for r in reminders.listing(store.db, args.household) if r["id"] == args.reminder]
    if any(reminders.untracked(r) and r["state"] != "removed" for r in now):
        print(UNTRACKED_WARNING, file=sys.stderr)
    return 0


# --- alerts -------------------------------------------------------------------------------


def cmd_alert(args: argparse.Namespace, config: FamilyConfig) -> int:
    store = _store(config)
    if args.action == "list":
        query = "SELECT id, household, category, state, step, received FROM alerts WHERE 1"
        params: list[Any] = []
        if args.household:
            query += " AND household = ?"
            params.append(args.household)
        if args.state:
            query += " AND state = ?"
            params.append(args.state)
        rows = store.db.execute(query + " ORDER BY received", params).fetchall()
        _print([dict(r) for r in rows])
        return 0
    if args.action == "show":
        described = alerts.describe(store.db, args.alert)
        if described is None:
            raise ValueError(f"no alert {args.alert}")
        _print(described)
        return 0
    closer = alerts.Alerts(store, _queue(store), config, "cli")
    if not closer.close(args.alert, "cli"):
        raise ValueError(f"no open alert {args.alert}")
    print(f"alert {args.alert} closed")
    return 0


# --- digest and status --------------------------------------------------------------------


def cmd_digest(args: argparse.Namespace, config: FamilyConfig) -> int:
    from services.family.digest import Digests

    store = _store(config)
    household = households.require(store.db, args.household)
    day = args.day or local_day(time.time(), household.timezone)
    language = household.members[0].language if household.members else "en"
    digest = build(store.db, household, day, language)
    _print(digest.__dict__)
    if args.send:
        queued = Digests(store, _queue(store), config.digest.at).send(household.id, day)
        print(f"queued for {len(queued) or 'the'} member(s); a running worker sends it")
    return 0


def cmd_status(args: argparse.Namespace, config: FamilyConfig) -> int:
    db = _store(config).db
    _print(
        {
            "database": str(config.database()),
            "households": db.execute("SELECT COUNT(*) FROM households").fetchone()[0],
            "alerts": dict(db.execute("SELECT state, COUNT(*) FROM alerts GROUP BY state")),
            "outbox": dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")),
            "commands": dict(db.execute("SELECT state, COUNT(*) FROM commands GROUP BY state")),
            "refused": dict(db.execute("SELECT reason, count FROM rejections ORDER BY reason")),
        }
    )
    return 0


# --- the parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="family-notify", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML config (default: XDG config, else defaults)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run one worker of the service")
    serve.add_argument("--worker", default="1", help="this worker's name (in its client id)")
    serve.add_argument(
        "--web", metavar="HOST:PORT", help="serve the web console here (default: web.listen)"
    )
    serve.set_defaults(handler=cmd_serve)

    household = sub.add_parser("household", help="households, their devices and members")
    hsub = household.add_subparsers(dest="action", required=True)
    add = hsub.add_parser("add", help="a new household")
    change = hsub.add_parser("change", help="change a household")
    for p, required in ((add, True), (change, False)):
        p.add_argument("household")
        p.add_argument("--senior", required=required, help='how the family calls them: "Mum"')
        p.add_argument("--device", action="append", required=required, help="device id")
        p.add_argument("--timezone", default="UTC" if required else None)
        p.add_argument("--emergency-number", help="called when nobody answers an emergency")
    add.set_defaults(handler=cmd_household_add)
    change.set_defaults(handler=cmd_household_change)
    for name, handler, text in (
        ("remove", cmd_household_remove, "remove a household and its members"),
        ("show", cmd_household_show, "a household as JSON"),
    ):
        p = hsub.add_parser(name, help=text)
        p.add_argument("household")
        p.set_defaults(handler=handler)
    hsub.add_parser("list", help="household ids").set_defaults(handler=cmd_household_list)

    member = hsub.add_parser("member", help="a household's members")
    msub = member.add_subparsers(dest="member_action", required=True)
    for name, handler in (("add", cmd_member_add), ("change", cmd_member_change)):
        p = msub.add_parser(name, help=f"{name} a member")
        p.add_argument("household")
        p.add_argument("member", help="the member's id (their app's topic)")
        p.add_argument("--name")
        p.add_argument("--role", choices=households.ROLES)
        p.add_argument("--relation", help='to the senior: "daughter"')
        p.add_argument(
            "--contact", action="append", help="sms:NUMBER or phone:NUMBER, in escalation order"
        )
        p.add_argument("--quiet", help="quiet hours, local: HH:MM-HH:MM")
        p.add_argument("--language", help="en or de")
        if name == "change":
            p.add_argument("--no-quiet", action="store_true", help="no quiet hours")
        p.set_defaults(handler=handler)
    p = msub.add_parser(
        "set-password", help="a member's password for the web console (read from stdin)"
    )
    p.add_argument("household")
    p.add_argument("member")
    p.set_defaults(handler=cmd_member_password)
    p = msub.add_parser("remove", help="remove a member")
    p.add_argument("household")
    p.add_argument("member")
    p.set_defaults(handler=cmd_member_remove)

    reminder = sub.add_parser("reminder", help="a senior's reminders, sent to the device")
    rsub = reminder.add_subparsers(dest="action", required=True)
    for name in ("add", "change", "remove", "list"):
        p = rsub.add_parser(name, help=f"{name} reminders")
        p.add_argument("household")
        if name != "list":
            p.add_argument("reminder", help="the reminder's id")
            p.add_argument("--as", dest="as_member", help="the member asking (checked)")
        if name in ("add", "change"):
            p.add_argument("--text", required=name == "add")
            p.add_argument("--at", required=name == "add", help="local time HH:MM")
            p.add_argument("--days", help="mon,tue,... (default: every day)")
            p.add_argument("--every-hours", type=int, help="every N hours from --at (1-12)")
            p.add_argument("--date", help="once, on this local date YYYY-MM-DD")
            p.add_argument("--medication")
            p.add_argument("--dose")
        if name == "add":
            p.add_argument(
                "--kind",
                default="medication",
                choices=["medication", "appointment", "check_in", "other"],
            )
        p.set_defaults(handler=cmd_reminder)

    alert = sub.add_parser("alert", help="alerts and their audit trail")
    asub = alert.add_subparsers(dest="action", required=True)
    p = asub.add_parser("list", help="alerts as JSON")
    p.add_argument("--household")
    p.add_argument("--state", choices=["open", "delivered", "escalated", "acknowledged", "closed"])
    p.set_defaults(handler=cmd_alert)
    for name in ("show", "close"):
        p = asub.add_parser(name, help=f"{name} an alert")
        p.add_argument("alert")
        p.set_defaults(handler=cmd_alert)

    digest = sub.add_parser("digest", help="a household's daily digest")
    digest.add_argument("household")
    digest.add_argument("--day", help="YYYY-MM-DD, the household's local date (default today)")
    digest.add_argument("--send", action="store_true", help="queue it for every member")
    digest.set_defaults(handler=cmd_digest)

    sub.add_parser("status", help="counts: alerts, outbox, refusals").set_defaults(
        handler=cmd_status
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
