"""Concurrent GenerateCertificate calls for the same DN: exactly one certificate, on SQLite (one writer at a
time) and on PostgreSQL (READ COMMITTED: the DN lock makes the check-then-insert atomic)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from ehealth_certs.client.eid import signed_request
from ehealth_certs.clock import FixedClock
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.platform import Platform
from ehealth_certs.ra.states import CertState
from ehealth_certs.storage.models import Certificate
from tests.conftest import Person
from tests.ra.helpers import CONTACT, add_doctor

SSIN = "79121430944"
RACERS = 6


@pytest.mark.usefixtures("trust_citizen_ca")
def test_racing_requests_for_one_dn_give_exactly_one_certificate(
    platform: Platform, clock: FixedClock, eid_factory: Callable[..., Person], tmp_path: Path
) -> None:
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    signer = {"ssin": SSIN, "firstName": "Jan", "lastName": "Janssens"}
    contract = platform.certra.generate_contract(
        Environment.PRODUCTION, {"signer": signer, "certificateIdentifier": {"type": "SSIN", "value": SSIN}}
    )
    tokens = []
    for _ in range(RACERS):  # a different key each time, as different devices of the same person would
        key = rsa.generate_private_key(65537, 2048)
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name.from_rfc4514_string(contract["dn"]))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        body = {"csr": base64.b64encode(csr).decode(), "contract": contract, "contactData": CONTACT}
        tokens.append(signed_request(person.card, "signature", body, now=clock.now()))

    start = threading.Barrier(RACERS)

    def race(token: str) -> str:
        start.wait()
        try:
            platform.certra.generate_certificate(Environment.PRODUCTION, token)
        except DomainError as exc:
            return exc.kind.value
        return "issued"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = list(pool.map(race, tokens))
    assert outcomes.count("issued") == 1, outcomes
    refused = {ErrorKind.CONFLICT.value, ErrorKind.RENEWAL_NOT_OPEN.value}
    assert all(o in refused for o in outcomes if o != "issued"), outcomes
    with platform.rt.db.read() as s:
        assert s.execute(select(func.count()).select_from(Certificate)).scalar_one() == 1
        assert s.execute(select(Certificate.status)).scalar_one() == CertState.ISSUED
