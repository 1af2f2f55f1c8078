"""EtkRA registration checks, on SQLite and PostgreSQL: who may sign, the challenge (fresh, used once, exact
expiry), every ToBeRegistered fact, the key policy, and the state table."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.etkra.service import CHALLENGE_LIFETIME
from ehealth_certs.etkra.states import ETK_TRANSITIONS, EtkState, transition
from ehealth_certs.etkra.verify import auth_signed_request
from ehealth_certs.pki.etk import build_to_be_registered, serial_from_secret, solve_challenge
from ehealth_certs.pki.keystore import KeyEntry, load_keystore
from ehealth_certs.storage.models import AuditEvent
from tests.ra.helpers import CONTACT, add_doctor, keystore_dir, manager

SSIN = "79121430944"
PROD = Environment.PRODUCTION

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")


@pytest.fixture(scope="module")
def enc_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa.generate_private_key(65537, 2048) for _ in range(3)]


@pytest.fixture
def auth(platform, clock, eid_factory, tmp_path: Path) -> KeyEntry:
    """A delivered eHealth certificate WITHOUT an ETK (the manager's ETK step is switched off)."""
    add_doctor(platform, SSIN)
    person = eid_factory(SSIN, tmp=tmp_path)
    m = manager(platform, clock)
    m._ensure_etk = lambda _p, _pw: None  # type: ignore[method-assign]
    outcome = m.request(person.card, keystore_dir=keystore_dir(tmp_path), password="pw", contact=CONTACT)
    return load_keystore(outcome.keystore.read_bytes(), "pw").authentication()


def token(entry: KeyEntry, body: dict, clock, *, chain=None, key=None) -> str:
    signer = key or entry.private_key
    return auth_signed_request(
        list(chain or entry.chain),
        lambda data: signer.sign(data, padding.PKCS1v15(), hashes.SHA256()),
        body,
        now=clock.now(),
    )


def spki(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def start(platform, auth, clock, key) -> bytes:
    answer = platform.etkra.start_registration(PROD, token(auth, {"publicEncryptionKey": spki(key)}, clock))
    return base64.b64decode(answer["challenge"])


def complete(platform, auth, clock, cert: x509.Certificate) -> dict:
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    return platform.etkra.complete_registration(PROD, token(auth, {"toBeRegistered": der}, clock))


def kind_of(fn) -> ErrorKind:
    with pytest.raises(DomainError) as err:
        fn()
    return err.value.kind


def test_challenge_layout_and_a_complete_registration(platform, clock, auth, enc_keys) -> None:
    challenge = start(platform, auth, clock, enc_keys[0])
    assert len(challenge) == 256 + 32  # RSA-2048 ciphertext || SHA-256
    serial = serial_from_secret(solve_challenge(challenge, enc_keys[0]))
    tbr = build_to_be_registered(auth.certificate, auth.private_key, enc_keys[0].public_key(), serial)
    clock.advance(CHALLENGE_LIFETIME)  # the last instant the challenge is accepted
    answer = complete(platform, auth, clock, tbr)
    assert answer["toBeActivated"] is False and answer["serial"] == str(serial)
    # used once: the same answer again finds no registration in progress
    assert kind_of(lambda: complete(platform, auth, clock, tbr)) is ErrorKind.CHALLENGE_INVALID
    # and a second ETK for the same certificate is refused
    assert kind_of(lambda: start(platform, auth, clock, enc_keys[1])) is ErrorKind.CONFLICT
    with platform.rt.db.read() as s:
        actions = [e.action for e in s.query(AuditEvent).order_by(AuditEvent.seq)]
    assert "etk.registration.started" in actions and "etk.registered" in actions


def test_expired_challenge_is_refused_one_second_late(platform, clock, auth, enc_keys) -> None:
    challenge = start(platform, auth, clock, enc_keys[0])
    serial = serial_from_secret(solve_challenge(challenge, enc_keys[0]))
    tbr = build_to_be_registered(auth.certificate, auth.private_key, enc_keys[0].public_key(), serial)
    clock.advance(CHALLENGE_LIFETIME + timedelta(seconds=1))
    assert kind_of(lambda: complete(platform, auth, clock, tbr)) is ErrorKind.CHALLENGE_INVALID
    assert platform.etkra.expire() == 1  # maintenance ends the lapsed challenge


def test_every_to_be_registered_fact_is_checked(platform, clock, auth, enc_keys) -> None:
    key = enc_keys[0]
    serial = serial_from_secret(solve_challenge(start(platform, auth, clock, key), key))
    good = build_to_be_registered(auth.certificate, auth.private_key, key.public_key(), serial)
    subject = auth.certificate.subject

    def variant(**change) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(change.get("subject", subject))
            .issuer_name(change.get("issuer", subject))
            .serial_number(change.get("serial", serial))
            .not_valid_before(change.get("nb", good.not_valid_before_utc))
            .not_valid_after(good.not_valid_after_utc)
            .public_key(change.get("pub", key.public_key()))
        )
        ku = change.get("ku", x509.KeyUsage(False, False, True, True, False, False, False, False, False))
        b = b.add_extension(ku, critical=change.get("critical", True))
        return b.sign(change.get("signer", auth.private_key), hashes.SHA256())

    other = enc_keys[1]
    cases = {
        "wrong serial": (variant(serial=serial + 1), ErrorKind.CHALLENGE_INVALID),
        "other public key": (variant(pub=other.public_key()), ErrorKind.BAD_REQUEST),
        "signed by the encryption key": (variant(signer=key), ErrorKind.BAD_REQUEST),
        "issuer differs": (variant(issuer=x509.Name.from_rfc4514_string("CN=other")), ErrorKind.BAD_REQUEST),
        "validity not copied": (
            variant(nb=good.not_valid_before_utc + timedelta(seconds=1)),
            ErrorKind.BAD_REQUEST,
        ),
        "key usage not critical": (variant(critical=False), ErrorKind.BAD_REQUEST),
        "key usage keyCertSign": (
            variant(ku=x509.KeyUsage(False, False, False, False, False, True, False, False, False)),
            ErrorKind.BAD_REQUEST,
        ),
    }
    for name, (cert, expected) in cases.items():
        assert kind_of(lambda c=cert: complete(platform, auth, clock, c)) is expected, name
    # after all refusals the challenge still stands for the right answer
    assert complete(platform, auth, clock, good)["serial"] == str(serial)


def test_key_policy_for_the_encryption_key(platform, clock, auth) -> None:
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point of the test
    assert kind_of(lambda: start(platform, auth, clock, small)) is ErrorKind.WEAK_KEY
    body = {"publicEncryptionKey": spki(auth.private_key)}  # the authentication key itself
    assert (
        kind_of(lambda: platform.etkra.start_registration(PROD, token(auth, body, clock)))
        is ErrorKind.BAD_REQUEST
    )
    bad = {"publicEncryptionKey": "not base64!"}
    assert (
        kind_of(lambda: platform.etkra.start_registration(PROD, token(auth, bad, clock)))
        is ErrorKind.BAD_REQUEST
    )


def test_who_may_sign(platform, clock, auth, enc_keys, eid_factory, tmp_path: Path) -> None:
    body = {"publicEncryptionKey": spki(enc_keys[0])}
    # the right certificate, but the other environment's EtkRA
    assert kind_of(
        lambda: platform.etkra.start_registration(Environment.ACCEPTANCE, token(auth, body, clock))
    ) is (ErrorKind.UNTRUSTED_SIGNER)
    # an eID certificate is not an eHealth certificate
    card = eid_factory(SSIN, tmp=tmp_path).card
    eid_token = auth_signed_request(
        card.authentication_chain, card.sign_with_authentication, body, now=clock.now()
    )
    assert kind_of(lambda: platform.etkra.start_registration(PROD, eid_token)) is ErrorKind.UNTRUSTED_SIGNER
    # replay of the same token
    t = token(auth, body, clock)
    platform.etkra.start_registration(PROD, t)
    assert kind_of(lambda: platform.etkra.start_registration(PROD, t)) is ErrorKind.REPLAY
    # too old
    stale = token(auth, {"publicEncryptionKey": spki(enc_keys[1])}, clock)
    clock.advance(timedelta(seconds=platform.rt.settings.request_signature_max_age_seconds + 1))
    assert kind_of(lambda: platform.etkra.start_registration(PROD, stale)) is ErrorKind.BAD_REQUEST
    # revoked certificate
    pki = auth.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    platform.certra.operator_revoke(PROD, pki, "keyCompromise", "operator:alice")
    revoked = token(auth, {"publicEncryptionKey": spki(enc_keys[2])}, clock)
    assert kind_of(lambda: platform.etkra.start_registration(PROD, revoked)) is ErrorKind.FORBIDDEN
    with platform.rt.db.read() as s:
        failures = s.query(AuditEvent).filter(AuditEvent.action == "auth.failed").count()
    assert failures >= 4
    # expired certificate
    clock.set(auth.certificate.not_valid_after_utc + timedelta(seconds=1))
    late = token(auth, {"publicEncryptionKey": spki(enc_keys[2])}, clock)
    assert kind_of(lambda: platform.etkra.start_registration(PROD, late)) is ErrorKind.EXPIRED


def test_state_table() -> None:
    assert transition(EtkState.IN_REQUEST, EtkState.VALID_ACTIVE) is EtkState.VALID_ACTIVE
    assert transition(EtkState.WAIT_FOR_ACTIVATION, EtkState.VALID_ACTIVE) is EtkState.VALID_ACTIVE
    refused = [(a, b) for a in EtkState for b in EtkState if b not in ETK_TRANSITIONS[a]]
    assert (EtkState.REVOKED, EtkState.VALID_ACTIVE) in refused
    assert (EtkState.VALID_ACTIVE, EtkState.WAIT_FOR_ACTIVATION) in refused
    for a, b in refused:
        with pytest.raises(DomainError) as err:
            transition(a, b)
        assert err.value.kind is ErrorKind.INVALID_TRANSITION
