"""ldaps:// and StartTLS against a real slapd, with a CA and server certificate made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.config import DirectoryConfig
from connectors.directory.openldap import OpenLdapDirectory
from devtools.slapd_sandbox import Sandbox, find_slapd
from syncd.ports import DirectoryError, Scope


def _cert(subject: str, issuer_key, issuer_name, key, ca: bool, san=None):  # type: ignore[no-untyped-def]
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pki(folder: Path, name: str) -> tuple[Path, Path, Path]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(f"{name} CA", None, None, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(
        "127.0.0.1",
        ca_key,
        ca.subject,
        key,
        ca=False,
        san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    paths = folder / f"{name}-ca.pem", folder / f"{name}-cert.pem", folder / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    paths[2].chmod(0o600)
    return paths


@pytest.fixture(scope="module")
def tls_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path, Path]]:
    if find_slapd() is None:
        pytest.skip("Debian slapd is not installed")
    root = tmp_path_factory.mktemp("tls")
    ca, cert, key = _pki(root, "good")
    other_ca = _pki(root, "other")[0]
    sandbox = Sandbox(root / "slapd", suffix="dc=tls,dc=gov,dc=vn", tls=(ca, cert, key))
    sandbox.start()
    yield sandbox, ca, other_ca
    sandbox.stop()


def _directory(sandbox: Sandbox, url: str, ca: Path | None, **kw: object) -> OpenLdapDirectory:
    cfg = DirectoryConfig(
        url=url, bind_dn=sandbox.service_dn, base_dn=sandbox.people_dn, ca_file=ca, **kw
    )  # type: ignore[arg-type]
    return OpenLdapDirectory(cfg, sandbox.service_password, "tls.gov.vn")


def test_ldaps_with_the_right_ca_reads(tls_slapd: tuple[Sandbox, Path, Path]) -> None:
    sandbox, ca, _ = tls_slapd
    assert _directory(sandbox, sandbox.ldaps_url, ca).read(Scope()) == []


def test_ldaps_with_a_wrong_ca_is_refused(tls_slapd: tuple[Sandbox, Path, Path]) -> None:
    sandbox, _, other = tls_slapd
    with pytest.raises(DirectoryError, match=r"cannot reach|certificate"):
        _directory(sandbox, sandbox.ldaps_url, other).read(Scope())


def test_ldaps_checks_the_host_name(tls_slapd: tuple[Sandbox, Path, Path]) -> None:
    sandbox, ca, _ = tls_slapd
    url = sandbox.ldaps_url.replace("127.0.0.1", "localhost")  # the certificate names 127.0.0.1
    with pytest.raises(DirectoryError, match=r"doesn't match|hostname|IP address mismatch"):
        _directory(sandbox, url, ca).read(Scope())


def test_starttls_with_verification(tls_slapd: tuple[Sandbox, Path, Path]) -> None:
    sandbox, ca, other = tls_slapd
    assert _directory(sandbox, sandbox.url, ca, start_tls=True).read(Scope()) == []
    with pytest.raises(DirectoryError):
        _directory(sandbox, sandbox.url, other, start_tls=True).read(Scope())
