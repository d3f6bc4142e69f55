"""Mosquitto's dynamic-security plugin: its JSON file, and its control API for a running
broker (which reads the file only when it starts, and keeps it up to date itself).

Each account is a dynsec client with a role of the same name holding its ACL
(`services.broker.acl`); anything not granted is refused (`defaultACLAccess` all false but
unsubscribing). An `admin` client may use the control topic and nothing else: it is what
`care-broker` uses to change a running broker.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Iterable
from typing import Any

from services.broker import acl
from services.broker.acl import Account

PLUGIN_NAME = "mosquitto_dynamic_security.so"  # Debian's mosquitto package ships it
ADMIN = "care-broker-admin"
CONTROL = "$CONTROL/dynamic-security/v1"
# The plugin's own hash: PBKDF2-HMAC-SHA512, a 12-byte salt. Passwords are 192-bit random
# tokens, so the iteration count is not what protects them.
ITERATIONS = 101

DEFAULT_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
ADMIN_ACLS = [
    {"acltype": "publishClientSend", "topic": f"{CONTROL}/#", "allow": True},
    {"acltype": "publishClientReceive", "topic": f"{CONTROL}/#", "allow": True},
    {"acltype": "subscribePattern", "topic": f"{CONTROL}/#", "allow": True},
]


class ControlError(RuntimeError):
    """The running broker refused or did not answer a control command."""


def plugin_path() -> str:
    """Where the plugin is installed (Debian puts it in the multiarch library folder)."""
    candidates = sorted(glob.glob(f"/usr/lib/*/{PLUGIN_NAME}"))
    candidates += [f"/usr/lib/{PLUGIN_NAME}", f"/usr/local/lib/{PLUGIN_NAME}"]
    for path in candidates:
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{PLUGIN_NAME} not found: install the Debian package mosquitto")


def password_entry(password: str, salt: bytes | None = None) -> dict[str, Any]:
    salt = salt if salt is not None else os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode("ascii"),
        "salt": base64.b64encode(salt).decode("ascii"),
        "iterations": ITERATIONS,
    }


def render(accounts: Iterable[tuple[Account, dict[str, Any]]], admin_password: str) -> str:
    """The plugin's JSON file for (account, `password_entry`) pairs, plus the admin."""
    clients = [
        {"username": ADMIN, **password_entry(admin_password), "roles": [{"rolename": ADMIN}]}
    ]
    roles = [{"rolename": ADMIN, "acls": ADMIN_ACLS}]
    for account, hashed in sorted(accounts, key=lambda pair: pair[0].username):
        name = account.username
        client = {"username": name, **hashed, "roles": [{"rolename": name}]}
        if account.client_id is not None:
            client["clientid"] = account.client_id
        clients.append(client)
        roles.append({"rolename": name, "acls": acl.dynsec_acls(account)})
    data = {"clients": clients, "groups": [], "roles": roles, "defaultACLAccess": DEFAULT_ACCESS}
    return json.dumps(data, indent=1) + "\n"


def create_commands(account: Account, password: str) -> list[dict[str, Any]]:
    """Control commands that (re)create `account` on a running broker."""
    name = account.username
    client: dict[str, Any] = {
        "command": "createClient",
        "username": name,
        "password": password,
        "roles": [{"rolename": name}],
    }
    if account.client_id is not None:
        client["clientid"] = account.client_id
    return [
        {"command": "deleteClient", "username": name},
        {"command": "deleteRole", "rolename": name},
        {"command": "createRole", "rolename": name, "acls": acl.dynsec_acls(account)},
        client,
    ]


def delete_commands(username: str) -> list[dict[str, Any]]:
    return [
        {"command": "deleteClient", "username": username},
        {"command": "deleteRole", "rolename": username},
    ]


_MAY_FAIL = {"deleteClient", "deleteRole"}  # deleting what is not there is fine


def send(
    host: str,
    port: int,
    ca: str,
    admin_password: str,
    commands: list[dict[str, Any]],
    timeout: float = 10.0,
) -> None:
    """Run `commands` on the broker as the admin client; ControlError when one fails."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    if not commands:
        return
    answered = threading.Event()
    subscribed = threading.Event()
    responses: list[dict[str, Any]] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"care-broker-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(ADMIN, admin_password)
    client.tls_set(ca_certs=ca)

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            c.subscribe(f"{CONTROL}/response", qos=1)

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            responses.extend(json.loads(msg.payload).get("responses", []))
        answered.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = on_message
    try:
        client.connect(host, port)
    except OSError as exc:
        raise ControlError(f"cannot reach the broker at {host}:{port}: {exc}") from None
    client.loop_start()
    try:
        if not subscribed.wait(timeout):
            raise ControlError("the broker did not accept the admin client")
        client.publish(CONTROL, json.dumps({"commands": commands}), qos=1)
        if not answered.wait(timeout):
            raise ControlError("the broker did not answer the control commands")
    finally:
        client.disconnect()
        client.loop_stop()
    failed = [r for r in responses if r.get("error") and r.get("command") not in _MAY_FAIL]
    if failed:
        raise ControlError(f"{failed[0].get('command')}: {failed[0].get('error')}")
