"""Hostile input against the CertRA REST API: never a 5xx, never a stored row.

Hypothesis throws raw bytes, arbitrary JSON and eID-signed requests with mutated CSRs and fields at the API.
Every answer must be a 4xx problem, and no request, certificate, OCSP response, replay id or CRL may be
stored; the only rows allowed are ``auth.failed`` audit entries for signatures that do not verify.
Requests signed by an untrusted or expired eID are refused and audited; a replayed request is refused.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from starlette.testclient import TestClient

from ehealth_certs.client.eid import FileEid, signed_request
from ehealth_certs.pki.eid_dev import create_citizen_ca, create_test_eid
from ehealth_certs.storage.models import (
    AuditEvent,
    BlockedKey,
    Certificate,
    CertificateRequest,
    Crl,
    OcspResponse,
    UsedRequestId,
)
from tests.ra.helpers import CONTACT, add_doctor, http_client

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")

SSIN = "79121430944"
API = "/api/production/certra"
SIGNED = ("/certificates", "/revocations", "/actor-qualities", "/certificate-info")
UNSIGNED = ("/contracts", "/revocation-contracts")
JOSE = {"Content-Type": "application/jose"}
HYPO = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])  # fmt: skip
STORED = (CertificateRequest, Certificate, OcspResponse, UsedRequestId, Crl, BlockedKey)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@cache
def _auth_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


class Snapshot:
    """Row counts before an attack; ``assert_nothing_stored`` compares after it."""

    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.counts = self._counts()
        with platform.rt.db.read() as s:
            self.audit_seq = s.execute(select(func.max(AuditEvent.seq))).scalar() or 0

    def _counts(self) -> dict[str, int]:
        with self.platform.rt.db.read() as s:
            return {
                m.__tablename__: s.execute(select(func.count()).select_from(m)).scalar_one() for m in STORED
            }

    def assert_nothing_stored(self) -> None:
        assert self._counts() == self.counts
        with self.platform.rt.db.read() as s:
            actions = set(
                s.execute(select(AuditEvent.action).where(AuditEvent.seq > self.audit_seq)).scalars()
            )
        assert actions <= {"auth.failed"}, actions


def _assert_4xx(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture
def web(platform: Any) -> TestClient:
    return http_client(platform)


@pytest.fixture
def good_request(
    platform: Any, clock: Any, eid_factory: Any, tmp_path: Path, web: TestClient
) -> tuple[Any, dict]:
    """A doctor's eID and a valid GenerateCertificate body (not sent)."""
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    card = person.card
    contract = web.post(f"{API}/contracts", json={
        "signer": {"ssin": card.ssin, "firstName": card.first_name, "lastName": card.last_name},
        "certificateIdentifier": {"type": "SSIN", "value": card.ssin},
    }).json()  # fmt: skip
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name.from_rfc4514_string(contract["dn"]))
        .sign(_auth_key(), hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    return card, {"csr": base64.b64encode(csr).decode(), "contract": contract, "contactData": CONTACT}


def test_raw_garbage_bodies(platform: Any, web: TestClient) -> None:
    snap = Snapshot(platform)

    @HYPO
    @given(
        path=st.sampled_from(SIGNED + UNSIGNED),
        body=st.binary(max_size=3000) | st.text(max_size=300).map(str.encode),
    )
    def attack(path: str, body: bytes) -> None:
        _assert_4xx(web.post(API + path, content=body, headers=JOSE))

    attack()
    snap.assert_nothing_stored()


def test_arbitrary_json_and_fake_tokens(platform: Any, web: TestClient) -> None:
    snap = Snapshot(platform)
    b64 = st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))

    @HYPO
    @given(path=st.sampled_from(UNSIGNED), body=json_values, token=st.tuples(b64, b64, b64).map(".".join),
           signed_path=st.sampled_from(SIGNED))  # fmt: skip
    def attack(path: str, body: Any, token: str, signed_path: str) -> None:
        _assert_4xx(web.post(API + path, content=json.dumps(body).encode()))
        _assert_4xx(web.post(API + signed_path, content=token.encode(), headers=JOSE))

    attack()
    snap.assert_nothing_stored()


def test_path_parameters(platform: Any, web: TestClient) -> None:
    snap = Snapshot(platform)

    @HYPO
    @given(env=st.text(min_size=1, max_size=20), pki=st.text(min_size=1, max_size=80))
    def attack(env: str, pki: str) -> None:
        from urllib.parse import quote

        r = web.get(f"/api/{quote(env, safe='')}/certra/certificates/{quote(pki, safe='')}")
        assert r.status_code < 500, r.text

    attack()
    snap.assert_nothing_stored()


@pytest.mark.parametrize("path", SIGNED + UNSIGNED)
def test_oversized_bodies_get_413(platform: Any, web: TestClient, path: str) -> None:
    snap = Snapshot(platform)
    big = b"a" * (64 * 1024 + 1)
    r = web.post(API + path, content=big, headers=JOSE)
    assert r.status_code == 413 and r.json()["kind"] == "payload-too-large"

    def chunks() -> Any:  # no Content-Length: the limit must hold while streaming
        for _ in range(17):
            yield b"a" * 4096

    r = web.post(API + path, content=chunks(), headers=JOSE)
    assert r.status_code == 413
    at_limit = web.post(API + path, content=b"a" * (64 * 1024), headers=JOSE)
    assert at_limit.status_code != 413
    snap.assert_nothing_stored()


def _mutate(data: bytes, draw: Callable[[Any], Any]) -> bytes:
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
    if kind == "flip":
        i = draw(st.integers(0, len(data) - 1))
        return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "insert":
        i = draw(st.integers(0, len(data)))
        return data[:i] + draw(st.binary(min_size=1, max_size=8)) + data[i:]
    i, j = sorted((draw(st.integers(0, len(data))), draw(st.integers(0, len(data)))))
    return data[:i] + data[j:] + data[i:j]


def test_signed_requests_with_mutated_csrs(
    platform: Any, clock: Any, web: TestClient, good_request: Any
) -> None:
    card, body = good_request
    csr = base64.b64decode(body["csr"])
    snap = Snapshot(platform)

    @HYPO
    @given(data=st.data())
    def attack(data: st.DataObject) -> None:
        mutated = _mutate(csr, data.draw)
        assume(mutated != csr)  # an empty splice is no mutation
        token = signed_request(card, "signature", {**body, "csr": base64.b64encode(mutated).decode()},
                               now=clock.now())  # fmt: skip
        _assert_4xx(web.post(f"{API}/certificates", content=token.encode(), headers=JOSE))

    attack()
    snap.assert_nothing_stored()


def test_signed_requests_with_mutated_fields(
    platform: Any, clock: Any, web: TestClient, good_request: Any
) -> None:
    card, body = good_request
    snap = Snapshot(platform)
    not_a_string_list = json_values.filter(
        lambda v: (
            v is not None and v != [] and not (isinstance(v, list) and all(isinstance(x, str) for x in v))
        )
    )

    @HYPO
    @given(field=st.sampled_from(["csr", "contract", "contactData", "baseServiceUsage"]), value=json_values,
           drop=st.booleans(), data=st.data())  # fmt: skip
    def attack(field: str, value: Any, drop: bool, data: st.DataObject) -> None:
        mutated = dict(body)
        if field == "baseServiceUsage":  # optional: only a wrong type is an error
            mutated[field] = data.draw(not_a_string_list)
        elif field == "contract" and not drop:
            # a subtle change inside the contract (DN, signer, text) rather than a wholesale replacement
            contract = json.loads(json.dumps(body["contract"]))
            key = data.draw(st.sampled_from(sorted(contract)))
            assume(contract[key] != value)
            contract[key] = value
            mutated["contract"] = contract
        elif drop:
            del mutated[field]
        else:
            mutated[field] = value
        token = signed_request(card, "signature", mutated, now=clock.now())
        _assert_4xx(web.post(f"{API}/certificates", content=token.encode(), headers=JOSE))

    attack()
    snap.assert_nothing_stored()


def _audited_failures(platform: Any) -> list[dict]:
    with platform.rt.db.read() as s:
        rows = s.execute(select(AuditEvent).where(AuditEvent.action == "auth.failed")).scalars().all()
        return [{"outcome": r.outcome, **r.details} for r in rows]


def test_untrusted_and_expired_eids_are_refused_and_audited(platform: Any, clock: Any, web: TestClient,
                                                            citizen_ca: Any, good_request: Any,
                                                            tmp_path: Path) -> None:  # fmt: skip
    _, body = good_request
    snap = Snapshot(platform)
    rogue_ca = create_citizen_ca(now=clock.now() - timedelta(days=10), name="Rogue Citizen CA")
    rogue = create_test_eid(ssin=SSIN, first_name="Jan", last_name="Janssens", ca=rogue_ca,
                            now=clock.now() - timedelta(days=1))  # fmt: skip
    expired = create_test_eid(ssin=SSIN, first_name="Jan", last_name="Janssens", ca=citizen_ca,
                              now=clock.now() - timedelta(days=40), valid_days=30)  # fmt: skip
    outcomes = {}
    for name, eid in (("untrusted", rogue), ("expired", expired)):
        FileEid.write(tmp_path / f"{name}.json", eid, "0000")
        card = FileEid.open(tmp_path / f"{name}.json", "0000")
        token = signed_request(card, "signature", body, now=clock.now())
        r = web.post(f"{API}/certificates", content=token.encode(), headers=JOSE)
        assert r.status_code == 401, r.text
        outcomes[name] = r.json()["kind"]
    assert outcomes == {"untrusted": "untrusted-signer", "expired": "expired"}
    snap.assert_nothing_stored()
    failures = _audited_failures(platform)
    assert [(f["outcome"], f["reason"]) for f in failures] == [
        ("failure", "untrusted-signer"),
        ("failure", "expired"),
    ]


def test_replayed_signed_request_is_refused(
    platform: Any, clock: Any, web: TestClient, good_request: Any
) -> None:
    card, body = good_request
    token = signed_request(card, "signature", body, now=clock.now())
    first = web.post(f"{API}/certificates", content=token.encode(), headers=JOSE)
    assert first.status_code == 201, first.text
    snap = Snapshot(platform)
    again = web.post(f"{API}/certificates", content=token.encode(), headers=JOSE)
    assert again.status_code == 409 and again.json()["kind"] == "replay"
    snap.assert_nothing_stored()
    # after the replay store forgets the id (1 h), the token's age still refuses it (max age 5 min)
    clock.advance(timedelta(hours=2))
    stale = web.post(f"{API}/certificates", content=token.encode(), headers=JOSE)
    assert stale.status_code == 400 and "issueInstant" in stale.json()["detail"]
    snap.assert_nothing_stored()
