"""EtkRA through the Certificate Manager, in process, on SQLite and PostgreSQL: request, depot, renewal,
activation, revocation, expiry; the keystore opens messages sealed to its ETK."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.depot import normalise_identifier
from ehealth_certs.etkra.states import EtkState
from ehealth_certs.pki.etk import parse_etk, validate_etk
from ehealth_certs.pki.keystore import load_keystore
from ehealth_certs.pki.seal import TrustStatus, ValidationStatus, seal, unseal
from tests.ra.helpers import CONTACT, add_doctor, http_client, keystore_dir, manager

SSIN = "79121430944"
OTHER = "69022608813"
PROD = Environment.PRODUCTION

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")


def _lookup(platform, value=SSIN, app=None):
    return platform.depot.lookup(PROD, normalise_identifier("SSIN", value, app))


def _enrol(platform, clock, eid_factory, tmp_path: Path, ssin: str = SSIN):
    add_doctor(platform, ssin)
    person = eid_factory(ssin, tmp=tmp_path)
    m = manager(platform, clock)
    outcome = m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
    return m, person, outcome


def test_request_registers_an_etk_served_by_the_depot(platform, clock, eid_factory, tmp_path: Path) -> None:
    m, person, outcome = _enrol(platform, clock, eid_factory, tmp_path)
    assert outcome.delivered and outcome.etk_status == "VALID_ACTIVE" and outcome.etk_serial
    store = load_keystore(outcome.keystore.read_bytes(), "pw")
    # the key is stored under the decimal serial of the ETK's encryption certificate
    assert list(store.decryption_keys()) == [outcome.etk_serial]
    answer = _lookup(platform)
    assert answer.etk is not None
    etk = parse_etk(answer.etk)
    assert str(etk.encryption_certificate.serial_number) == outcome.etk_serial
    assert etk.encryption_certificate.serial_number.bit_length() <= 128
    assert etk.authentication_certificate == outcome.certificate
    er = platform.rt.environments[PROD]
    assert etk.ra_certificate == er.pki.etkra.certificate
    assert validate_etk(etk, trusted_cas=[er.pki.root.certificate], now=clock.now(),
                        trusted_ra=[er.pki.etkra.certificate]) == []  # fmt: skip
    # padding: a value without its leading zeros finds nothing else, the exact one finds it
    with pytest.raises(DomainError) as err:
        _lookup(platform, OTHER)
    assert err.value.kind is ErrorKind.NOT_FOUND
    # status through CertificateInfo
    info = m.status(person.card)
    assert [(i["authenticationCertificateStatus"], i["etkStatus"]) for i in info] == [
        ("VALID_ACTIVE", "VALID_ACTIVE")
    ]
    assert info[0]["etkSerialNumber"] == outcome.etk_serial
    # a message sealed to the depot's ETK opens with the keystore
    sender = store.authentication()
    message = seal(b"secret for the doctor", sender.private_key, sender.chain, [etk], clock.now())
    result = unseal(message, [store], trusted_cas=[er.pki.issuing.certificate], now=clock.now(),
                    revocation_checker=lambda _c, _i: "good")  # fmt: skip
    assert result.content == b"secret for the doctor"
    assert result.recipient_alias == outcome.etk_serial
    assert result.report.validation is ValidationStatus.VALID and result.report.trust is TrustStatus.FULL


def test_a_second_registration_for_the_same_certificate_is_refused(
    platform, clock, eid_factory, tmp_path
) -> None:
    m, _person, outcome = _enrol(platform, clock, eid_factory, tmp_path)
    from ehealth_certs.client.etk import register_etk

    auth = load_keystore(outcome.keystore.read_bytes(), "pw").authentication()
    with pytest.raises(DomainError) as err:
        register_etk(m.client, auth, clock, persist=lambda _k, _c: None, forget=lambda _c: None)
    assert err.value.kind is ErrorKind.CONFLICT


def test_revoking_the_certificate_revokes_its_etk_at_once(
    platform, clock, eid_factory, tmp_path: Path
) -> None:
    m, person, outcome = _enrol(platform, clock, eid_factory, tmp_path)
    assert _lookup(platform).etk is not None  # cached now
    m.revoke(person.card, public_key_identifier_hex=outcome.public_key_identifier, reason="keyCompromise")
    with pytest.raises(DomainError) as err:
        _lookup(platform)
    assert err.value.kind is ErrorKind.NOT_FOUND
    info = m.status(person.card)
    assert info[0]["etkStatus"] == "REVOKED"


def test_revocation_by_another_process_is_visible_within_a_minute(
    platform, settings, clock, eid_factory, tmp_path: Path
) -> None:
    from ehealth_certs.platform import Platform

    _m, _person, outcome = _enrol(platform, clock, eid_factory, tmp_path)
    assert _lookup(platform).etk is not None  # cached in "the server"
    operator = Platform.start(settings, clock, create_pki=False)  # the operator CLI, another process
    try:
        operator.certra.operator_revoke(
            PROD, outcome.public_key_identifier, "keyCompromise", "operator:alice"
        )
    finally:
        operator.close()
    clock.advance(timedelta(seconds=29))
    assert _lookup(platform).etk is not None  # still the cached answer
    clock.advance(timedelta(seconds=1))
    with pytest.raises(DomainError) as err:
        _lookup(platform)
    assert err.value.kind is ErrorKind.NOT_FOUND


def test_renewal_waits_for_activation_and_then_replaces_the_old_etk(
    platform, clock, eid_factory, tmp_path: Path
) -> None:
    m, person, first = _enrol(platform, clock, eid_factory, tmp_path)
    old_etk = _lookup(platform).etk
    assert first.certificate is not None
    clock.set(first.certificate.not_valid_after_utc - timedelta(days=80))  # inside the replacement period
    renewed = m.renew(person.card, keystore=first.keystore, password="pw", contact=CONTACT)
    assert renewed.replaces_certificate == first.public_key_identifier
    assert renewed.etk_status == "VALID_ACTIVE" and renewed.etk_serial != first.etk_serial
    new_etk = _lookup(platform).etk
    assert new_etk is not None and new_etk != old_etk
    assert str(parse_etk(new_etk).encryption_certificate.serial_number) == renewed.etk_serial
    store = load_keystore(renewed.keystore.read_bytes(), "pw")
    assert set(store.decryption_keys()) == {first.etk_serial, renewed.etk_serial}  # old messages still open
    statuses = sorted(i["etkStatus"] for i in m.status(person.card))
    assert statuses == ["REVOKED", "VALID_ACTIVE"]  # the old ETK is superseded


def test_replacement_etk_is_not_served_before_activation(
    platform, clock, eid_factory, tmp_path: Path
) -> None:
    from ehealth_certs.client.etk import activate_etk, register_etk

    m, person, first = _enrol(platform, clock, eid_factory, tmp_path)
    old_etk = _lookup(platform).etk
    clock.set(first.certificate.not_valid_after_utc - timedelta(days=80))
    # renew without the manager's ETK step: certificate only
    m2 = manager(platform, clock)
    m2._ensure_etk = lambda _p, _pw: None  # type: ignore[method-assign]
    renewed = m2.renew(person.card, keystore=first.keystore, password="pw", contact=CONTACT)
    auth = load_keystore(renewed.keystore.read_bytes(), "pw").authentication()
    keys = {}
    reg = register_etk(m.client, auth, clock, persist=lambda k, c: keys.update({c.serial_number: k}),
                       forget=lambda _c: None)  # fmt: skip
    assert reg.to_be_activated
    assert _lookup(platform).etk == old_etk  # the old ETK is still the one served
    statuses = sorted(i["etkStatus"] for i in m.status(person.card))
    assert statuses == ["VALID_ACTIVE", "WAIT_FOR_ACTIVATION"]
    assert activate_etk(m.client, auth, clock) == "VALID_ACTIVE"
    assert _lookup(platform).etk == reg.etk.encoded
    with pytest.raises(DomainError) as err:  # nothing waits any more
        activate_etk(m.client, auth, clock)
    assert err.value.kind is ErrorKind.INVALID_TRANSITION


def test_expired_certificate_etk_is_not_served(platform, clock, eid_factory, tmp_path: Path) -> None:
    _m, _person, outcome = _enrol(platform, clock, eid_factory, tmp_path)
    assert outcome.certificate is not None
    clock.set(outcome.certificate.not_valid_after_utc)
    assert _lookup(platform).etk is not None  # the end is inclusive
    clock.advance(timedelta(seconds=1))
    with pytest.raises(DomainError) as err:
        _lookup(platform)
    assert err.value.kind is ErrorKind.NOT_FOUND
    with platform.rt.db.read() as s:
        from ehealth_certs.storage.models import EtkRecord

        row = s.query(EtkRecord).one()
        assert platform.etkra.effective_state(row, clock.now()) is EtkState.EXPIRED
    assert platform.etkra.expire() == 1
    with platform.rt.db.read() as s:
        assert s.query(EtkRecord).one().status == EtkState.EXPIRED


def test_several_application_ids_give_the_matching_identifiers(
    platform, clock, eid_factory, tmp_path
) -> None:
    """Two organisation certificates (two ApplicationIDs) under one CBE: the depot lists them."""
    from ehealth_certs.ra.sources import add_mandate, import_organisations

    cbe = "0809394427"
    import_organisations(platform.rt, f"type,number,name\nCBE,{cbe},EHEALTH-PLATFORM\n".encode(),
                         operator="operator:test")  # fmt: skip
    add_mandate(platform.rt, ssin=SSIN, id_type="CBE", number=cbe, operator="operator:test")
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock)
    outcomes = []
    for app in ("KGSS", "ETKDEPOT"):
        outcomes.append(m.request(person.card, keystore_dir=keystore_dir(tmp_path) / app, password="pw",
                                  contact=CONTACT, organization=("CBE", cbe), application_id=app))  # fmt: skip
    for o in outcomes:
        if not o.delivered:
            req = next(
                r
                for r in platform.certra.list_requests()
                if r["publicKeyIdentifier"] == o.public_key_identifier
            )
            platform.certra.approve(req["id"], "operator:alice")
            assert m.complete(o.keystore, "pw") is not None
    answer = platform.depot.lookup(PROD, normalise_identifier("CBE", "809394427"))
    assert answer.etk is None
    assert [(i.type, i.value, i.application_id) for i in answer.matches] == [
        ("CBE", cbe, "ETKDEPOT"), ("CBE", cbe, "KGSS"),
    ]  # fmt: skip
    one = platform.depot.lookup(PROD, normalise_identifier("CBE", cbe, "KGSS"))
    assert one.etk is not None
    assert "KGSS" in parse_etk(one.etk).encryption_certificate.subject.rfc4514_string()


def test_rest_depot_answers(platform, clock, eid_factory, tmp_path: Path) -> None:
    _m, _person, outcome = _enrol(platform, clock, eid_factory, tmp_path)
    client = http_client(platform)
    r = client.get("/api/production/etkdepot/etks", params={"type": "SSIN", "value": SSIN})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["identifier"] == {"type": "SSIN", "value": SSIN, "applicationId": None}
    assert (
        str(parse_etk(base64.b64decode(body["etk"])).encryption_certificate.serial_number)
        == outcome.etk_serial
    )
    r = client.get("/api/acceptance/etkdepot/etks", params={"type": "SSIN", "value": SSIN})
    assert r.status_code == 404 and r.json()["kind"] == "not-found"  # environments share nothing
    r = client.get("/api/production/etkdepot/etks", params={"type": "NOPE", "value": "1"})
    assert r.status_code == 400 and r.json()["kind"] == "bad-identifier"
    r = client.get("/api/production/etkdepot/etks", params={"type": "SSIN", "value": "1" * 12})
    assert r.status_code == 400 and r.json()["kind"] == "bad-identifier"
    r = client.get("/api/nowhere/etkdepot/etks", params={"type": "SSIN", "value": SSIN})
    assert r.status_code == 404
    assert "/api/{env}/etkdepot/etks" in client.get("/openapi.json").json()["paths"]
