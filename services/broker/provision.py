"""The broker's folder: certificates, accounts, the dynamic-security file, mosquitto.conf.

    broker = BrokerDir(path)
    broker.init(hosts=["localhost", "127.0.0.1"], port=8883)   # CA, server cert, services
    made = broker.add_household("smith", devices=["kitchen"], members=["anna"])
    broker.config                                              # mosquitto -c this

Everything in the folder is the owner's only (0700 folder, 0600 files). Accounts keep only
salted hashes of their passwords (`accounts.json`, and the plugin's `dynamic-security.json`);
the clear password of each is in `credentials/`, one TOML file per account with the
client's `[mqtt]` settings, which is what is handed to that device, app or service. A
change is written to the plugin's file and, when the broker of this folder is running,
applied to it at once through its control API (the plugin reads its file only at start).
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.broker import dynsec, tls
from services.broker.acl import Account

DEFAULT_PORT = 8883
DEFAULT_HOSTS = ["localhost", "127.0.0.1"]
# A message is at most 64 KiB (protocol.MAX_PAYLOAD_BYTES); the packet adds the topic and
# headers. Mosquitto drops the connection of a client that sends a bigger one.
MAX_PACKET_BYTES = 70_000


class ProvisionError(RuntimeError):
    """Something the person provisioning can fix (a missing init, an unknown account)."""


@dataclass(frozen=True)
class Credentials:
    account: Account
    password: str
    path: Path  # the TOML file with the client's [mqtt] settings


def private_write(path: Path, text: str) -> None:
    """Write `text` to a file only the owner can read, replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a TOML basic string for these values


class BrokerDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.ca = self.path / "ca.pem"
        self.ca_key = self.path / "ca.key"
        self.cert = self.path / "server.pem"
        self.key = self.path / "server.key"
        self.config = self.path / "mosquitto.conf"
        self.dynsec_file = self.path / "dynamic-security.json"
        self.settings_file = self.path / "broker.json"
        self.accounts_file = self.path / "accounts.json"
        self.admin_file = self.path / "admin.secret"
        self.credentials = self.path / "credentials"
        self.data = self.path / "data"
        self.pid_file = self.path / "mosquitto.pid"

    # --- setting up -----------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        if not self.settings_file.exists():
            raise ProvisionError(f"{self.path} is not set up: run `care-broker init` first")
        return json.loads(self.settings_file.read_text())

    @property
    def initialised(self) -> bool:
        return self.settings_file.exists()

    def init(
        self,
        *,
        hosts: list[str] | None = None,
        port: int = DEFAULT_PORT,
        bind: str = "127.0.0.1",
        practice: str = "practice",
        run_as_root: bool | None = None,
        log_file: str | None = None,
    ) -> None:
        """Set the folder up: a CA (kept when there is one), a server certificate for
        `hosts` (clients connect to the first), the services' accounts, mosquitto.conf.
        Running it again keeps the CA, the accounts and their passwords."""
        if not 0 < port < 65536:
            raise ProvisionError(f"port {port} is out of range")
        try:
            dynsec.plugin_path()
        except FileNotFoundError as exc:
            raise ProvisionError(str(exc)) from None
        hosts = list(dict.fromkeys([*(hosts or []), *DEFAULT_HOSTS]))
        if bind not in ("", "0.0.0.0", "::") and bind not in hosts:
            hosts.append(bind)
        for d in (self.path, self.credentials, self.data):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(d, 0o700)
        if not self.ca.exists():
            tls.make_ca(self.ca, self.ca_key)
        tls.make_server_cert(self.cert, self.key, self.ca, self.ca_key, hosts)
        if not self.admin_file.exists():
            private_write(self.admin_file, secrets.token_urlsafe(24) + "\n")
        if run_as_root is None:
            run_as_root = os.getuid() == 0
        settings = {
            "hosts": hosts,
            "port": port,
            "bind": bind,
            "practice": practice,
            "run_as_root": run_as_root,
            "log_file": log_file,
        }
        private_write(self.settings_file, json.dumps(settings, indent=2) + "\n")
        private_write(self.config, self._config_text(settings))
        services = [
            Account("service", "family-notify"),
            Account("service", "doctor-connect", practice=practice),
        ]
        self._provision([a for a in services if a.username not in self.accounts()])
        if not self.dynsec_file.exists():
            self._write_dynsec()

    def _config_text(self, settings: dict[str, Any]) -> str:
        lines = [
            "# Written by `care-broker init`; edits are overwritten.",
            "per_listener_settings false",
            "allow_anonymous false",
            f"plugin {dynsec.plugin_path()}",
            f"plugin_opt_config_file {self.dynsec_file}",
            "persistence true",
            f"persistence_location {self.data}/",
            f"pid_file {self.pid_file}",
            f"log_dest file {settings['log_file']}"
            if settings.get("log_file")
            else "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
            f"max_packet_size {MAX_PACKET_BYTES}",
            "max_keepalive 300",
            "max_queued_messages 1000",  # per client while it is away
            "persistent_client_expiration 14d",
            "set_tcp_nodelay true",
        ]
        if settings["run_as_root"]:
            lines.append("user root")  # else it drops to "mosquitto", who cannot read here
        lines += [
            f"listener {settings['port']} {settings['bind']}".rstrip(),
            f"cafile {self.ca}",
            f"certfile {self.cert}",
            f"keyfile {self.key}",
            "tls_version tlsv1.2",  # the oldest accepted
            "require_certificate false",  # clients prove who they are with a password
        ]
        return "\n".join(lines) + "\n"

    # --- accounts -------------------------------------------------------------------------

    def _records(self) -> dict[str, dict[str, Any]]:
        if not self.accounts_file.exists():
            return {}
        return json.loads(self.accounts_file.read_text())

    def accounts(self) -> dict[str, Account]:
        return {name: Account.from_dict(r["account"]) for name, r in self._records().items()}

    def credentials_path(self, account: Account) -> Path:
        return self.credentials / (account.username.replace("/", "__") + ".toml")

    def read_credentials(self, username: str) -> dict[str, Any]:
        """The `[mqtt]` table handed to the client of `username`."""
        account = self.accounts().get(username)
        if account is None:
            raise ProvisionError(f"no account {username!r}")
        return tomllib.loads(self.credentials_path(account).read_text())["mqtt"]

    def add_household(
        self, household: str, devices: list[str], members: list[str], *, rotate: bool = False
    ) -> list[Credentials]:
        """Provision a household: an account for each device and each member's app. An
        account that exists keeps its password unless `rotate`."""
        if not devices and not members:
            raise ProvisionError("a household needs at least one device or member")
        try:
            wanted = [Account("device", household, d) for d in devices]
            wanted += [Account("member", household, m) for m in members]
        except ValueError as exc:
            raise ProvisionError(str(exc)) from None
        return self._provision(wanted, rotate=rotate)

    def add_doctor(self, practice: str, doctor: str, *, rotate: bool = False) -> Credentials:
        try:
            account = Account("doctor", practice, doctor)
        except ValueError as exc:
            raise ProvisionError(str(exc)) from None
        return self._provision([account], rotate=rotate)[0]

    def remove(self, usernames: list[str]) -> None:
        records = self._records()
        unknown = [u for u in usernames if u not in records]
        if unknown:
            raise ProvisionError(f"no account {unknown[0]!r}")
        accounts = self.accounts()
        for username in usernames:
            del records[username]
            self.credentials_path(accounts[username]).unlink(missing_ok=True)
        private_write(self.accounts_file, json.dumps(records, indent=2) + "\n")
        self._write_dynsec()
        self._control([c for u in usernames for c in dynsec.delete_commands(u)])

    def _provision(self, wanted: list[Account], *, rotate: bool = False) -> list[Credentials]:
        settings = self.settings()
        records = self._records()
        made: list[Credentials] = []
        commands: list[dict[str, Any]] = []
        for account in wanted:
            path = self.credentials_path(account)
            known = records.get(account.username)
            password = None
            if known is not None and not rotate and known["account"] == account.to_dict():
                password = _read_password(path)
            if password is None:
                password = secrets.token_urlsafe(24)
                records[account.username] = {
                    "account": account.to_dict(),
                    "hash": dynsec.password_entry(password),
                }
                commands += dynsec.create_commands(account, password)
            private_write(path, self._client_config(account, password, settings))
            made.append(Credentials(account, password, path))
        private_write(self.accounts_file, json.dumps(records, indent=2) + "\n")
        self._write_dynsec()
        self._control(commands)
        return made

    def refresh_roles(self) -> None:
        """Write every account's role anew from `services.broker.acl`, before the broker
        starts (it reads the file only then): a broker folder set up by an older version
        gets the access rules of this one (a doctor's app that could read every device's
        conversation, a service missing a topic it now needs). Refuses while it runs."""
        if self.running_pid() is not None:
            raise ProvisionError(f"a broker runs with {self.path}: stop it first")
        self._write_dynsec()

    def _write_dynsec(self) -> None:
        pairs = [(Account.from_dict(r["account"]), r["hash"]) for r in self._records().values()]
        private_write(self.dynsec_file, dynsec.render(pairs, self.admin_password()))

    def admin_password(self) -> str:
        return self.admin_file.read_text().strip()

    # --- the running broker ---------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The pid of the broker running with this folder, if one is."""
        try:
            pid = int(self.pid_file.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def _control(self, commands: list[dict[str, Any]]) -> None:
        if not commands or self.running_pid() is None:
            return  # it reads the file when it starts
        settings = self.settings()
        bind = settings["bind"]
        host = "127.0.0.1" if bind in ("", "0.0.0.0", "::") else bind
        dynsec.send(host, settings["port"], str(self.ca), self.admin_password(), commands)

    def _client_config(self, account: Account, password: str, settings: dict[str, Any]) -> str:
        """The [mqtt] table for the client of `account` (the device's config keys; the
        services' `[mqtt]` tables take the same ones), and a device's [device] table."""
        lines = [
            f"# Credentials of {account.username}: keep this file private.",
            "[mqtt]",
            f"host = {_toml_str(settings['hosts'][0])}",
            f"port = {settings['port']}",
            f"username = {_toml_str(account.username)}",
            f"password = {_toml_str(password)}",
            f"tls_ca = {_toml_str(str(self.ca))}",
        ]
        if account.party in ("member", "doctor"):
            lines.append(f"client_id = {_toml_str(account.client_id or '')}  # the only one")
        if account.party == "device":
            lines += [
                "",
                "[device]",
                f"household = {_toml_str(account.owner)}",
                f"device_id = {_toml_str(account.endpoint or '')}",
            ]
        return "\n".join(lines) + "\n"


def _read_password(path: Path) -> str | None:
    try:
        return tomllib.loads(path.read_text())["mqtt"]["password"]
    except (OSError, KeyError, ValueError):
        return None
