"""`care-broker`: the project's Mosquitto, with TLS, one account per party and an ACL.

    care-broker init [--host NAME]... [--port 8883] [--bind ADDR] [--practice ID]
    care-broker household HOUSEHOLD [--device ID]... [--member ID]... [--rotate]
                          [--device-config PATH]
    care-broker doctor PRACTICE DOCTOR [--rotate]
    care-broker remove USERNAME...
    care-broker list [--json]
    care-broker credentials USERNAME        the account's [mqtt] table (TOML) on stdout
    care-broker run                         init when needed, then run Mosquitto with it

The folder is `--dir`, else `$CARE_BROKER_DIR`, else
`$XDG_STATE_HOME/senior-assistant/broker`. Changes reach a running broker at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from services.broker.dynsec import ControlError
from services.broker.provision import DEFAULT_PORT, BrokerDir, Credentials, ProvisionError
from services.broker.tls import TlsError

PROG = "care-broker"
EXIT_USAGE = 2
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def default_dir() -> Path:
    if os.environ.get("CARE_BROKER_DIR"):
        return Path(os.environ["CARE_BROKER_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "senior-assistant" / "broker"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    broker = BrokerDir(args.dir or default_dir())
    try:
        return int(args.handler(args, broker) or 0)
    except (ProvisionError, ControlError, TlsError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _report(made: list[Credentials]) -> None:
    for creds in made:
        print(f"{creds.account.username}: {creds.path}")


def cmd_init(args: argparse.Namespace, broker: BrokerDir) -> int:
    broker.init(hosts=args.host, port=args.port, bind=args.bind, practice=args.practice)
    print(f"broker folder {broker.path} ready; CA for clients: {broker.ca}")
    print(f"run it with: {PROG} --dir {broker.path} run")
    return 0


def cmd_household(args: argparse.Namespace, broker: BrokerDir) -> int:
    devices, members = args.device or [], args.member or []
    if args.device_config and len(devices) != 1:
        raise ProvisionError("--device-config needs exactly one --device")
    made = broker.add_household(args.household, devices, members, rotate=args.rotate)
    _report(made)
    if args.device_config:
        _write_device_config(Path(args.device_config).expanduser(), made[0])
    return 0


def _write_device_config(path: Path, creds: Credentials) -> None:
    """Put the device's [mqtt] and [device] tables into its config file: a new file, or an
    existing one that has neither table yet."""
    text = creds.path.read_text()
    if path.exists():
        existing = path.read_text()
        if "[mqtt]" in existing or "[device]" in existing:
            raise ProvisionError(
                f"{path} already has [mqtt] or [device]; copy them from {creds.path}"
            )
        text = existing.rstrip("\n") + "\n\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)
    print(f"device config: {path}")


def cmd_doctor(args: argparse.Namespace, broker: BrokerDir) -> int:
    _report([broker.add_doctor(args.practice, args.doctor, rotate=args.rotate)])
    return 0


def cmd_remove(args: argparse.Namespace, broker: BrokerDir) -> int:
    broker.remove(args.username)
    print(f"removed {len(args.username)} account(s)")
    return 0


def cmd_list(args: argparse.Namespace, broker: BrokerDir) -> int:
    accounts = broker.accounts()
    if args.json:
        print(json.dumps({name: a.to_dict() for name, a in sorted(accounts.items())}, indent=2))
    else:
        for name, account in sorted(accounts.items()):
            print(f"{account.party:8} {name}")
    return 0


def cmd_credentials(args: argparse.Namespace, broker: BrokerDir) -> int:
    accounts = broker.accounts()
    if args.username not in accounts:
        raise ProvisionError(f"no account {args.username!r}")
    sys.stdout.write(broker.credentials_path(accounts[args.username]).read_text())
    return 0


def cmd_run(args: argparse.Namespace, broker: BrokerDir) -> int:
    if not broker.initialised:
        broker.init()
        print(f"{PROG}: set up {broker.path}", file=sys.stderr)
    if broker.running_pid() is not None:
        raise ProvisionError(f"a broker already runs with {broker.path}")
    broker.refresh_roles()  # the access rules of this version, for accounts made before it
    settings = broker.settings()
    print(
        f"{PROG}: Mosquitto with TLS on {settings['bind'] or '*'}:{settings['port']}, "
        f"CA {broker.ca}",
        file=sys.stderr,
        flush=True,
    )
    os.execv(MOSQUITTO, [MOSQUITTO, "-c", str(broker.config)])
    return 0  # not reached


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="the broker's folder (default: %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="CA, server certificate, services' accounts, config")
    init.add_argument("--host", action="append", help="a name clients use (repeatable)")
    init.add_argument("--port", type=int, default=DEFAULT_PORT)
    init.add_argument("--bind", default="127.0.0.1", help="listen address ('' for all)")
    init.add_argument("--practice", default="practice", help="doctor-connect's practice id")
    init.set_defaults(handler=cmd_init)

    household = sub.add_parser("household", help="provision a household's credentials")
    household.add_argument("household")
    household.add_argument("--device", action="append", help="a device id (repeatable)")
    household.add_argument("--member", action="append", help="a member id (repeatable)")
    household.add_argument("--rotate", action="store_true", help="new passwords")
    household.add_argument("--device-config", help="write the device's tables to this file")
    household.set_defaults(handler=cmd_household)

    doctor = sub.add_parser("doctor", help="provision a doctor's app")
    doctor.add_argument("practice")
    doctor.add_argument("doctor")
    doctor.add_argument("--rotate", action="store_true", help="a new password")
    doctor.set_defaults(handler=cmd_doctor)

    remove = sub.add_parser("remove", help="delete accounts (they are disconnected)")
    remove.add_argument("username", nargs="+")
    remove.set_defaults(handler=cmd_remove)

    listing = sub.add_parser("list", help="the accounts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_list)

    creds = sub.add_parser("credentials", help="an account's [mqtt] table")
    creds.add_argument("username")
    creds.set_defaults(handler=cmd_credentials)

    run = sub.add_parser("run", help="run Mosquitto with this folder's configuration")
    run.set_defaults(handler=cmd_run)
    return parser


if __name__ == "__main__":
    sys.exit(main())
