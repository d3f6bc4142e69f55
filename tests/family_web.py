"""The web console in tests: two households on one real `family-notify serve --web`, their
members' passwords set through the real CLI, and an HTTP client that keeps cookies and
shows every status (no redirect followed)."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from tests.broker import Mosquitto
from tests.family_process import (
    ROOT,
    FamilyConfigFiles,
    Household,
    MemberSpec,
    setup_household,
    write_config,
)

PASSWORDS = {("h1", "anna"): "anna's long secret", ("h2", "zoe"): "zoe's own secret"}
OTHER = Household(
    id="h2",
    device="speaker-2",
    senior="Grandpa Joe",
    emergency_number=None,
    members=(
        MemberSpec("joe", "Joe", "senior"),
        MemberSpec("zoe", "Zoe", "family", "granddaughter", ("sms:+4915100009",)),
    ),
)


def set_password(
    config: FamilyConfigFiles, household: str, member: str, password: str
) -> subprocess.CompletedProcess[str]:
    """`family-notify household member set-password`, the password on stdin."""
    return subprocess.run(
        [sys.executable, "-m", "services.family.cli", "--config", str(config.path),
         "household", "member", "set-password", household, member],
        cwd=ROOT,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


def two_households(directory: Path, broker: Mosquitto, **timings) -> FamilyConfigFiles:
    """h1 (Mum and her family, tests/family_process.py) and h2 (Grandpa Joe and Zoe), with
    the passwords of PASSWORDS."""
    config = write_config(directory, broker, **timings)
    setup_household(config)
    setup_household(config, OTHER)
    for (household, member), password in PASSWORDS.items():
        result = set_password(config, household, member, password)
        assert result.returncode == 0, result.stderr
    return config


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    @property
    def title(self) -> str:
        match = re.search(r"<h1>(.*?)</h1>", self.body)
        return match[1] if match else ""

    def csrf(self) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert match, self.body[:500]
        return match[1]


@dataclass
class WebClient:
    """A browser without a browser: cookies kept, redirects shown, not followed."""

    url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, form: dict | None = None) -> Response:
        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, path, body=body, headers=headers)
            reply = connection.getresponse()
            response = Response(
                reply.status, reply.getheaders(), reply.read().decode("utf-8", "replace")
            )
        finally:
            connection.close()
        for header in response.cookies():
            jar = SimpleCookie(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post(self, path: str, form: dict) -> Response:
        return self.request("POST", path, form)

    def sign_in(self, household: str, member: str, password: str | None = None) -> Response:
        page = self.get("/login")
        password = PASSWORDS[(household, member)] if password is None else password
        return self.post(
            "/login",
            {"csrf": page.csrf(), "household": household, "member": member, "password": password},
        )
