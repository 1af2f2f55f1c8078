"""External judges on the certificate lifecycle, against the REAL server (`ehcerts serve`) and the REAL CLI.

One server for the module: a doctor obtains a certificate with `ehcerts cert request` (subprocess, secrets in
the environment); a second doctor's certificate is revoked for keyCompromise through the REST API. Then:
openssl (verify -crl_check with the CRL fetched from the CDP URL, ocsp against the AIA URL), keytool and
openssl pkcs12 on the keystore, pkilint's command-line linters on certificates, chain, CRL and OCSP
responses, and the profile against the real eHealth facts (ehealth-reference §7, §8.2).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from ehealth_certs.client.eid import FileEid
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.manager import CertificateManager
from ehealth_certs.clock import SystemClock
from ehealth_certs.environment import Environment
from ehealth_certs.pki.keystore import load_keystore
from ehealth_certs.pki.lint import ALLOWLIST
from ehealth_certs.pki.profiles import add_months
from tests.conftest import LiveServer, start_live_server, stop_live_server

PIN = "2468"
KEYSTORE_PASSWORD = "keystore pw 13579"
GOOD, REVOKED = ("79121430944", "Jan", "Janssens"), ("69022608813", "Piet", "Peeters")
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
LINT = Path(sys.executable).parent
SHA1 = hashes.SHA1  # the RFC 6960 CertID hash every client sends


@dataclass
class World:
    server: LiveServer
    folder: Path
    keystore: Path
    good: x509.Certificate
    revoked: x509.Certificate
    issuing: x509.Certificate
    root: x509.Certificate

    def pem(self, name: str, cert: x509.Certificate) -> Path:
        path = self.folder / f"{name}.pem"
        path.write_bytes(cert.public_bytes(PEM))
        return path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})  # fmt: skip


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, live_pki_template: Path, live_port: int
) -> Iterator[World]:
    import shutil

    folder = tmp_path_factory.mktemp("interop")
    data = folder / "live-data"
    data.mkdir()
    shutil.copytree(live_pki_template, data / "pki")
    server = start_live_server(data, port=live_port)
    try:
        for ssin, first, last in (GOOD, REVOKED):
            server.cli("dev", "make-eid", "--ssin", ssin, "--first-name", first, "--last-name", last,
                       "--out", str(folder / f"{ssin}.eid"), extra_env={"EHCERTS_EID_PIN": PIN})  # fmt: skip
        csv = folder / "professionals.csv"
        csv.write_text("ssin,first_name,last_name,quality,nihii\n" + "".join(
            f"{ssin},{first},{last},doctor,\n" for ssin, first, last in (GOOD, REVOKED)))  # fmt: skip
        server.cli("admin", "import", "professionals", str(csv))

        # the holder's CLI, as a user would run it
        result = run(sys.executable, "-m", "ehealth_certs", "cert", "request", "--server", server.url,
                     "--eid", str(folder / f"{GOOD[0]}.eid"), "--email", "jan.janssens@example.be",
                     "--keystore-dir", str(folder / "keystores"), "--accept-contract", "--json",
                     env={"EHCERTS_EID_PIN": PIN, "EHCERTS_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD})  # fmt: skip
        assert result.returncode == 0, result.stderr
        outcome = json.loads(result.stdout)
        assert outcome["delivered"] and outcome["automaticallyValidated"]
        keystore = Path(outcome["keystore"])
        good = load_keystore(keystore.read_bytes(), KEYSTORE_PASSWORD).authentication().certificate

        card = FileEid.open(folder / f"{REVOKED[0]}.eid", PIN)
        manager = CertificateManager(client=PlatformClient(server.url, Environment.PRODUCTION), clock=SystemClock(),
                                     confirm=lambda _c: True)  # fmt: skip
        doomed = manager.request(card, keystore_dir=folder / "keystores", password="pw",
                                 contact={"emailPrivate": "piet@example.be"})  # fmt: skip
        assert doomed.certificate is not None
        manager.revoke(card, public_key_identifier_hex=doomed.public_key_identifier, reason="keyCompromise")
        server.cli("admin", "publish-crl")  # the operator's "now": the background loop would within 15 s
        issuing = x509.load_der_x509_certificate(
            httpx.get(f"{server.url}/pki/production/issuing.crt").content
        )
        root = x509.load_der_x509_certificate(httpx.get(f"{server.url}/pki/production/root.crt").content)
        yield World(server, folder, keystore, good, doomed.certificate, issuing, root)
    finally:
        stop_live_server(server)


def _crl_url(cert: x509.Certificate) -> str:
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    return str(cdp[0].full_name[0].value)  # type: ignore[index]


def _ocsp_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    return next(
        str(d.access_location.value) for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP
    )


@pytest.fixture(scope="module")
def crl_pem(world: World) -> Path:
    response = httpx.get(_crl_url(world.good))
    assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
    path = world.folder / "crl.pem"
    path.write_bytes(x509.load_der_x509_crl(response.content).public_bytes(PEM))
    return path


# -- keystore -----------------------------------------------------------------------------------------------


def test_openssl_and_keytool_read_the_cli_keystore(world: World) -> None:
    env = {"PW": KEYSTORE_PASSWORD}
    info = run(
        "openssl", "pkcs12", "-info", "-passin", "env:PW", "-noout", "-in", str(world.keystore), env=env
    )
    assert info.returncode == 0, info.stderr
    assert "MAC: sha1" in info.stderr + info.stdout
    listing = run("keytool", "-list", "-v", "-storetype", "PKCS12", "-storepass:env", "PW", "-keystore",
                  str(world.keystore), env=env)  # fmt: skip
    assert listing.returncode == 0, listing.stdout + listing.stderr
    assert "Alias name: authentication" in listing.stdout
    assert "Entry type: PrivateKeyEntry" in listing.stdout and "Certificate chain length: 2" in listing.stdout
    assert "Entry type: trustedCertEntry" in listing.stdout
    assert f'Owner: CN="SSIN={GOOD[0]}", OU=eHealth-platform Belgium, OU=JAN JANSSENS' in listing.stdout
    wrong = run("keytool", "-list", "-storetype", "PKCS12", "-storepass:env", "PW", "-keystore",
                str(world.keystore), env={"PW": "wrong"})  # fmt: skip
    assert wrong.returncode != 0


# -- openssl verify with the CRL from the CDP -------------------------------------------------------------------


def test_openssl_verify_with_the_served_crl(world: World, crl_pem: Path) -> None:
    cafile = world.folder / "cas.pem"
    cafile.write_bytes(world.root.public_bytes(PEM) + world.issuing.public_bytes(PEM))
    good = run("openssl", "verify", "-crl_check", "-CAfile", str(cafile), "-CRLfile", str(crl_pem),
               str(world.pem("good", world.good)))  # fmt: skip
    assert good.returncode == 0 and good.stdout.strip().endswith(": OK"), good.stdout + good.stderr
    bad = run("openssl", "verify", "-crl_check", "-CAfile", str(cafile), "-CRLfile", str(crl_pem),
              str(world.pem("revoked", world.revoked)))  # fmt: skip
    assert bad.returncode != 0 and "certificate revoked" in bad.stdout + bad.stderr
    # the same CDP URL is in the issuing CA certificate's own CRL chain setup: both certificates point there
    assert _crl_url(world.good) == _crl_url(world.revoked) == f"{world.server.url}/pki/production/crl"


# -- openssl ocsp against the AIA URL -----------------------------------------------------------------------------


def _openssl_ocsp(world: World, *target: str, issuer: Path | None = None) -> str:
    issuer_pem = issuer or world.pem("issuing", world.issuing)
    result = run("openssl", "ocsp", "-url", _ocsp_url(world.good), "-issuer", str(issuer_pem), *target,
                 "-CAfile", str(world.pem("issuing", world.issuing)), "-partial_chain", "-resp_text")  # fmt: skip
    return result.stdout + result.stderr


def test_openssl_ocsp_good_revoked_unknown(world: World) -> None:
    good = _openssl_ocsp(world, "-cert", str(world.pem("good", world.good)))
    assert "Response verify OK" in good and f"{world.pem('good', world.good)}: good" in good
    revoked = _openssl_ocsp(world, "-cert", str(world.pem("revoked", world.revoked)))
    assert "Response verify OK" in revoked and ": revoked" in revoked and "Reason: keyCompromise" in revoked
    unknown = _openssl_ocsp(world, "-serial", "0x1234")
    assert "Response verify OK" in unknown and "0x1234: unknown" in unknown
    # nonce: openssl sends one by default; the pre-signed answer has none and openssl accepts that
    assert "WARNING: no nonce in response" in good


def test_openssl_ocsp_other_issuer_is_unauthorized(world: World) -> None:
    other = world.folder / "citizen-ca.pem"
    other.write_bytes((world.server.data_dir / "dev" / "citizen-ca" / "citizen-ca.crt.pem").read_bytes())
    out = _openssl_ocsp(world, "-serial", "0x1234", issuer=other)
    assert "Responder Error: unauthorized" in out


def _post(world: World, body: bytes) -> ocsp.OCSPResponse:
    r = httpx.post(_ocsp_url(world.good), content=body, headers={"Content-Type": "application/ocsp-request"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(r.content)


def test_ocsp_malformed_and_get(world: World) -> None:
    for garbage in (b"garbage", b"\x30\x80", os.urandom(64)):
        assert _post(world, garbage).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    request = ocsp.OCSPRequestBuilder().add_certificate(world.good, world.issuing, SHA1()).build()
    b64 = quote(base64.b64encode(request.public_bytes(DER)).decode(), safe="")
    got = httpx.get(f"{_ocsp_url(world.good)}/{b64}")
    assert got.status_code == 200
    answer = ocsp.load_der_ocsp_response(got.content)
    assert (
        answer.certificate_status is ocsp.OCSPCertStatus.GOOD
        and answer.serial_number == world.good.serial_number
    )
    responder = answer.certificates[0]  # the delegated responder, issued by the CA it answers for
    assert responder.issuer == world.issuing.subject
    assert (
        ExtendedKeyUsageOID.OCSP_SIGNING
        in responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    bad = httpx.get(f"{_ocsp_url(world.good)}/{quote('not base64 !!', safe='')}")
    assert (
        ocsp.load_der_ocsp_response(bad.content).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )


# -- pkilint (its command-line linters, not our wrapper) --------------------------------------------------------


def _pkilint(tool: str, *args: str) -> list[tuple[str, str, str]]:
    result = run(str(LINT / tool), "lint", "-s", "WARNING", "-f", "JSON", *args)
    assert result.returncode in (0, *range(1, 256)) and result.stdout, result.stderr
    findings = [
        (fd["severity"], fd["code"], r["node_path"])
        for r in json.loads(result.stdout)["results"]
        for fd in r["finding_descriptions"]
    ]
    return [f for f in findings if f[1] not in ALLOWLIST]


def test_pkilint_certificates_chain_crl_and_ocsp(world: World, crl_pem: Path) -> None:
    issuing = world.pem("issuing", world.issuing)
    for name, cert in (("good", world.good), ("revoked", world.revoked), ("issuing", world.issuing)):
        assert _pkilint("lint_pkix_cert", str(world.pem(name, cert))) == [], name
    assert (
        _pkilint("lint_pkix_signer_signee_cert_chain", str(issuing), str(world.pem("good", world.good))) == []
    )
    assert (
        _pkilint("lint_pkix_signer_signee_cert_chain", str(world.pem("root", world.root)), str(issuing)) == []
    )
    assert _pkilint("lint_crl", "-t", "CRL", "-p", "BR", str(crl_pem)) == []
    for name, cert in (("good", world.good), ("revoked", world.revoked)):
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, world.issuing, SHA1()).build()
        der = httpx.post(_ocsp_url(cert), content=request.public_bytes(DER)).content
        path = world.folder / f"ocsp-{name}.der"
        path.write_bytes(der)
        assert _pkilint("lint_ocsp_response", "--document-format", "DER", str(path)) == [], name


# -- the profile against the real eHealth facts --------------------------------------------------------------


def test_dn_and_profile_match_the_ehealth_production_certificate(world: World) -> None:
    cert = world.good
    ssin, first, last = GOOD
    # §7.1/§7.2: CN=SSIN=<id>,OU=eHealth-platform Belgium,OU=<NAME>,OU=SSIN=<id>,O=Federal Government,C=BE
    expected = x509.Name.from_rfc4514_string(
        f"CN=SSIN\\={ssin},OU=eHealth-platform Belgium,OU={first.upper()} {last.upper()},OU=SSIN\\={ssin},"
        "O=Federal Government,C=BE"
    )
    assert [(a.oid, a.value) for a in cert.subject] == [(a.oid, a.value) for a in expected]
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME] + [
        NameOID.ORGANIZATIONAL_UNIT_NAME] * 3 + [NameOID.COMMON_NAME]  # fmt: skip
    tags = [rdn[0]["value"].name for rdn in asn1_x509.Certificate.load(cert.public_bytes(DER)).subject.chosen]
    assert tags == ["printable_string"] + ["utf8_string"] * 5
    assert all(len(rdn) == 1 for rdn in cert.subject.rdns)
    # §8.2: v3, sha256WithRSA, RSA 2048 e=65537, 3 years inclusive, KU critical dS+nR+kE, EKU clientAuth +
    # emailProtection, BC critical CA:FALSE, SKI = SHA-1 of the key, AKI, AIA OCSP, CRL DP, no policies
    text = run("openssl", "x509", "-noout", "-text", "-in", str(world.pem("good", cert))).stdout
    assert "Version: 3 (0x2)" in text and "Signature Algorithm: sha256WithRSAEncryption" in text
    assert "Public-Key: (2048 bit)" in text and "Exponent: 65537 (0x10001)" in text
    assert (
        "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation, Key Encipherment"
        in text
    )
    assert "TLS Web Client Authentication, E-mail Protection" in text
    assert "X509v3 Basic Constraints: critical\n                CA:FALSE" in text
    assert "Certificate Policies" not in text
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048 and key.public_numbers().e == 65537
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key)  # RFC 5280 method 1: the PublicKeyIdentifier
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == world.issuing.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest  # fmt: skip
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]  # fmt: skip
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    assert end == add_months(start, 36) - timedelta(seconds=1)
    assert 64 <= cert.serial_number.bit_length() <= 159
