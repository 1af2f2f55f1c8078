"""Concurrent GenerateCertificate calls for the same DN: exactly one certificate, on SQLite (one writer at a
time) and on PostgreSQL (READ COMMITTED: the DN lock makes the check-then-insert atomic)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import Select, func, select

from ehealth_certs.client.eid import signed_request
from ehealth_certs.clock import FixedClock
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.platform import Platform
from ehealth_certs.ra.states import CertState
from ehealth_certs.storage.models import AuditEvent, Certificate
from tests.conftest import Person
from tests.ra.helpers import CONTACT, add_doctor, keystore_dir, manager

SSIN = "79121430944"
RACERS = 6


def _race(calls: list[Callable[[], object]]) -> list[str]:
    """Run the calls at the same instant; each outcome is "ok" or the error kind."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> str:
        start.wait()
        try:
            call()
        except DomainError as exc:
            return exc.kind.value
        return "ok"

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _count(platform: Platform, statement: Select[Any]) -> int:
    with platform.rt.db.read() as s:
        return int(s.execute(statement).scalar_one())


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

    outcomes = _race(
        [partial(platform.certra.generate_certificate, Environment.PRODUCTION, token) for token in tokens]
    )
    assert outcomes.count("ok") == 1, outcomes
    refused = {ErrorKind.CONFLICT.value, ErrorKind.RENEWAL_NOT_OPEN.value}
    assert all(o in refused for o in outcomes if o != "ok"), outcomes
    assert _count(platform, select(func.count()).select_from(Certificate)) == 1
    issued = select(func.count()).where(Certificate.status == CertState.ISSUED)
    assert _count(platform, issued) == 1


@pytest.mark.usefixtures("trust_citizen_ca")
def test_two_operators_approving_at_once_give_one_certificate(
    platform: Platform, clock: FixedClock, eid_factory: Callable[..., Person], tmp_path: Path
) -> None:
    person = eid_factory(SSIN, tmp=tmp_path)  # no care quality: the request waits for an operator
    outcome = manager(platform, clock).request(
        person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT
    )
    assert not outcome.automatically_validated
    (pending,) = platform.certra.list_requests(status="PENDING_APPROVAL")
    outcomes = _race([partial(platform.certra.approve, pending["id"], op) for op in ("op:a", "op:b")])
    assert sorted(outcomes) == [ErrorKind.INVALID_TRANSITION.value, "ok"], outcomes
    assert _count(platform, select(func.count()).select_from(Certificate)) == 1
    approvals = select(func.count()).where(AuditEvent.action == "certificate.approved")
    assert _count(platform, approvals) == 1


@pytest.mark.usefixtures("trust_citizen_ca")
def test_racing_revocations_revoke_once(
    platform: Platform, clock: FixedClock, eid_factory: Callable[..., Person], tmp_path: Path
) -> None:
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    outcome = manager(platform, clock).request(
        person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT
    )
    revoke = partial(
        platform.certra.operator_revoke,
        Environment.PRODUCTION,
        outcome.public_key_identifier,
        "cessationOfOperation",
        "op:a",
    )
    outcomes = _race([revoke] * RACERS)
    assert outcomes.count("ok") == 1 and outcomes.count(ErrorKind.CONFLICT.value) == RACERS - 1, outcomes
    revocations = select(func.count()).where(AuditEvent.action == "certificate.revoked")
    assert _count(platform, revocations) == 1
