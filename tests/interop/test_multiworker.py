"""`ehcerts serve` with two worker processes (the default on two cores): one maintenance leader, and every
worker answers OCSP authoritatively for a certificate issued by the other one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ehealth_certs.client.eid import FileEid
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.manager import CertificateManager
from ehealth_certs.clock import SystemClock
from ehealth_certs.environment import Environment
from tests.conftest import start_live_server, stop_live_server

SSIN = "82051234978"


@pytest.mark.interop
def test_two_workers_share_the_work(live_data_dir: Path, live_port: int, tmp_path: Path) -> None:
    server = start_live_server(live_data_dir, port=live_port, extra_env={"EHCERTS_WORKERS": "2"})
    try:
        # exactly one worker holds the maintenance lock
        fd = os.open(live_data_dir / "maintenance.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)

        eid_file = tmp_path / "anna.eid"
        pin = {"EHCERTS_EID_PIN": "2468"}
        server.cli("dev", "make-eid", "--ssin", SSIN, "--first-name", "Anna", "--last-name", "Peeters",
                   "--out", str(eid_file), extra_env=pin)  # fmt: skip
        pros = tmp_path / "pros.csv"
        pros.write_text(f"ssin,first_name,last_name,quality,nihii\n{SSIN},Anna,Peeters,nurse,\n")
        server.cli("admin", "import", "professionals", str(pros))

        card = FileEid.open(eid_file, "2468")
        manager = CertificateManager(
            client=PlatformClient(server.url, Environment.PRODUCTION),
            clock=SystemClock(),
            confirm=lambda _c: True,
        )
        outcome = manager.request(
            card, keystore_dir=tmp_path, password="pw-2468", contact={"emailPrivate": "anna@example.be"}
        )
        assert outcome.delivered and outcome.certificate is not None
        cert = outcome.certificate
        issuing = x509.load_der_x509_certificate(
            httpx.get(f"{server.url}/pki/production/issuing.crt").content
        )
        sha1 = hashes.SHA1()  # noqa: S303 - RFC 5019 CertIDs use SHA-1
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuing, sha1).build()
        body = request.public_bytes(serialization.Encoding.DER)
        # fresh connections are spread over both workers; the one that did not issue reads the stored answer
        statuses = set()
        for _ in range(24):
            with httpx.Client() as fresh:
                answer = fresh.post(
                    f"{server.url}/pki/production/ocsp", content=body,
                    headers={"Content-Type": "application/ocsp-request"},
                )  # fmt: skip
            response = ocsp.load_der_ocsp_response(answer.content)
            statuses.add(response.certificate_status)
        assert statuses == {ocsp.OCSPCertStatus.GOOD}
    finally:
        stop_live_server(server)
