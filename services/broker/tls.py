"""A local certificate authority and the broker's certificate, made with the openssl CLI.

For development and a single home or practice server: the CA's certificate is what every
client is given (`tls_ca`); its key never leaves the broker's folder (owner-only).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path


class TlsError(RuntimeError):
    """openssl failed (its message is included)."""


def openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def make_ca(ca: Path, key: Path, *, name: str = "care local CA", days: int = 3650) -> None:
    """A self-signed CA certificate `ca` and its private key `key` (mode 0600)."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
            "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(ca))  # fmt: skip
    os.chmod(key, 0o600)


def make_server_cert(
    cert: Path, key: Path, ca: Path, ca_key: Path, names: list[str], *, days: int = 825
) -> None:
    """A server certificate for `names` (host names or IP addresses, the first is the CN),
    signed by the CA; the key is mode 0600."""
    if not names:
        raise ValueError("a server certificate needs at least one host name")
    sans = []
    for name in names:
        try:
            ipaddress.ip_address(name)
            sans.append(f"IP:{name}")
        except ValueError:
            sans.append(f"DNS:{name}")
    csr = cert.with_suffix(".csr")
    ext = cert.with_suffix(".ext")
    ext.write_text(
        f"subjectAltName = {', '.join(sans)}\n"
        "extendedKeyUsage = serverAuth\nbasicConstraints = CA:FALSE\n"
    )
    try:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={names[0]}",
                "-keyout", str(key), "-out", str(csr))  # fmt: skip
        os.chmod(key, 0o600)
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                "-CAcreateserial", "-days", str(days), "-extfile", str(ext),
                "-out", str(cert))  # fmt: skip
    finally:
        csr.unlink(missing_ok=True)
        ext.unlink(missing_ok=True)
