"""The certificate lifecycle end to end, in process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.keys import public_key_identifier
from ehealth_certs.pki.keystore import load_keystore
from ehealth_certs.pki.names import EHealthName, build_subject
from tests.ra.helpers import CONTACT, add_acceptance_project, add_doctor, keystore_dir, manager

SSIN = "79121430944"

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")


def test_production_request_is_issued_with_the_exact_profile(
    platform, clock, eid_factory, tmp_path: Path
) -> None:
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    outcome = manager(platform, clock).request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw-1",
                                               contact=CONTACT)  # fmt: skip
    assert outcome.automatically_validated and outcome.delivered
    assert outcome.keystore.name == f"SSIN={SSIN} {clock.now():%Y%m%d-%H%M%S}.p12"
    store = load_keystore(outcome.keystore.read_bytes(), "pw-1")
    entry = store.authentication()
    cert = entry.certificate
    # subject: exactly the server-built DN, RDN order and string types included
    expected = build_subject(EHealthName("SSIN", SSIN, "JAN JANSSENS"))
    assert cert.subject.public_bytes() == expected.public_bytes()
    rdns = asn1_x509.Certificate.load(
        cert.public_bytes(__import__("cryptography").hazmat.primitives.serialization.Encoding.DER)
    )
    tags = [rdn[0]["value"].name for rdn in rdns.subject.chosen]
    assert tags == ["printable_string"] + ["utf8_string"] * 5
    # key usage, EKU, basic constraints, SKI == PublicKeyIdentifier
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert (
        ku.critical
        and ku.value.digital_signature
        and ku.value.content_commitment
        and ku.value.key_encipherment
    )
    assert not ku.value.data_encipherment and not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION]
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert (
        ski.hex()
        == outcome.public_key_identifier
        == public_key_identifier(entry.private_key.public_key()).hex()
    )
    # 36 months, inclusive end
    assert cert.not_valid_before_utc == clock.now()
    assert cert.not_valid_after_utc == clock.now().replace(year=clock.now().year + 3) - timedelta(seconds=1)
    # chain: leaf then issuing CA, root not included; issuing CA stored as trusted entry
    issuing = platform.rt.environments[Environment.PRODUCTION].pki.issuing.certificate
    assert entry.chain[1:] == [issuing]
    assert issuing in store.trusted.values()
    assert 0 < cert.serial_number < 2**159


def test_acceptance_needs_a_registered_project(platform, clock, eid_factory, tmp_path: Path) -> None:
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock, Environment.ACCEPTANCE)
    with pytest.raises(DomainError) as err:
        m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
    assert err.value.kind is ErrorKind.NOT_ENTITLED
    add_acceptance_project(platform, "integrator-x", SSIN)
    outcome = m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT,
                        project="integrator-x")  # fmt: skip
    assert outcome.delivered
    cert = outcome.certificate
    assert cert is not None
    assert cert.not_valid_after_utc == clock.now().replace(year=clock.now().year + 1) - timedelta(seconds=1)
    acc_issuing = platform.rt.environments[Environment.ACCEPTANCE].pki.issuing.certificate
    assert cert.issuer == acc_issuing.subject


def test_person_without_quality_waits_for_an_operator(platform, clock, eid_factory, tmp_path: Path) -> None:
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock)
    outcome = m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
    assert not outcome.automatically_validated and not outcome.delivered
    pending = platform.certra.list_requests(status="PENDING_APPROVAL")
    assert [r["publicKeyIdentifier"] for r in pending] == [outcome.public_key_identifier]
    with pytest.raises(DomainError) as err:  # four eyes
        platform.certra.approve(pending[0]["id"], f"SSIN={SSIN}")
    assert err.value.kind is ErrorKind.FORBIDDEN
    assert m.complete(outcome.keystore, "pw") is None  # still pending
    platform.certra.approve(pending[0]["id"], "operator:alice")
    cert = m.complete(outcome.keystore, "pw")
    assert (
        cert is not None
        and cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
        == outcome.public_key_identifier
    )
    info = m.status(person.card)
    assert [i["authenticationCertificateStatus"] for i in info] == ["VALID_ACTIVE"]
    assert info[0]["automaticallyValidated"] is False
