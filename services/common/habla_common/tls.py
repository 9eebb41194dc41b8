"""HTTPS for the gateway: this machine's own certificate.

A phone's browser records from the microphone only on an ``https://`` page (or localhost), so
``habla up`` (and the gateway container with ``GATEWAY_HTTPS=1``) serves HTTPS when the phone
reaches it over the network. With no certificate of the user's own (``GATEWAY_TLS_CERT`` /
``GATEWAY_TLS_KEY``, e.g. from ``tailscale cert``), a self-signed one is made in the data dir,
for every name and address the phone may use: the
phone warns once that it does not know the issuer, the user checks the fingerprint printed by
``habla up`` and goes on. The certificate is made again only when a new address of the
machine is not in it, or it is about to expire, so the phone's exception keeps working.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["ensure_certificate", "fingerprint", "loopback_context", "names_of"]

VALID_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)


def loopback_context() -> ssl.SSLContext:
    """For talking to this machine's own gateway on loopback: its certificate (self-signed, or
    the user's own for another name) is not checked there."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def names_of(cert_path: Path) -> set[str]:
    """The host names and addresses a certificate is good for."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(a) for a in san.get_values_for_type(x509.IPAddress)} | set(san.get_values_for_type(x509.DNSName))


def fingerprint(cert_path: Path) -> str:
    """SHA-256 fingerprint, as browsers show it (AB:CD:…)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _usable(cert_path: Path, key_path: Path, hosts: set[str]) -> bool:
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except ValueError:
        return False
    fresh = cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE
    return fresh and hosts <= names_of(cert_path)


def ensure_certificate(folder: Path, hosts: list[str]) -> tuple[Path, Path]:
    """``(cert.pem, key.pem)`` in ``folder`` covering ``hosts`` (plus localhost and 127.0.0.1):
    the existing pair when it still covers them, else a new self-signed pair."""
    wanted = {"localhost", "127.0.0.1", *(h for h in hosts if h)}
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if _usable(cert_path, key_path, wanted):
        return cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Habla on this computer")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in sorted(wanted)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    tmp_key = key_path.with_suffix(".tmp")
    tmp_key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    tmp_key.chmod(0o600)
    os.replace(tmp_key, key_path)
    tmp_cert = cert_path.with_suffix(".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_cert, cert_path)
    return cert_path, key_path
