"""Real trusted lists (byte-identical DSS fixtures in shared/data/sample-tl): the consumer verifies the
Belgian list pinned through the EU list's pointer and the v6 sample, at a time inside their signers'
validity, and rejects them at today's date (expired signers), after a one-byte change, or with the
wrong pin."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import tsl
from ehealth_certs.trustlist.consume import pointer_signers, verify_trusted_list
from tests.paths import DATA
from tests.trustlist.tl_helpers import SAFE_XMLSEC1, replace_once

SAMPLES = DATA / "sample-tl"

BE_SIGNER_SHA256 = "197410fb8652b658229c50b8ef4817be1d02f54f9008e21d8ba5c3555ad52f86"
LOTL_TIME = datetime(2019, 9, 5, tzinfo=UTC)  # LOTL 248 issued 2019-09-04
BE_TIME = datetime(2019, 6, 14, tzinfo=UTC)  # BE 43 issued 2019-06-13, signer valid until 2024-02-17
FI_TIME = datetime(2024, 11, 21, tzinfo=UTC)  # FI test signer valid 2023-11-20 .. 2025-11-20
TODAY = datetime(2026, 11, 30, tzinfo=UTC)  # injected "now": both list signers have expired by then


def _read(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.fixture(scope="module")
def be() -> bytes:
    return _read("BE-tl-v5-seq43.xml")


@pytest.fixture(scope="module")
def lotl() -> bytes:
    return _read("eu-lotl-v5-seq248.xml")


@pytest.fixture(scope="module")
def fi() -> bytes:
    return _read("FI-tl-v6-seq49-testsigned.xml")


def _keyinfo_certificate(xml: bytes) -> x509.Certificate:
    node = etree.fromstring(xml).find(
        f".//{{{tsl.DS_NS}}}KeyInfo/{{{tsl.DS_NS}}}X509Data/{{{tsl.DS_NS}}}X509Certificate"
    )
    return x509.load_der_x509_certificate(base64.b64decode(node.text))


@pytest.fixture(scope="module")
def lotl_signer(lotl: bytes) -> x509.Certificate:
    # In production the LOTL signers come from the Official Journal; the fixture carries the only copy.
    return _keyinfo_certificate(lotl)


@pytest.fixture(scope="module")
def be_pins(lotl: bytes, lotl_signer: x509.Certificate) -> list[x509.Certificate]:
    return pointer_signers(lotl, "BE", parent_pinned_signers=[lotl_signer], now=LOTL_TIME)


def test_lotl_pointer_announces_the_belgian_signer(be_pins: list[x509.Certificate]) -> None:
    assert len(be_pins) == 4
    assert BE_SIGNER_SHA256 in {tsl.fingerprint(c) for c in be_pins}


def test_belgian_list_verifies_pinned_by_the_lotl_pointer(be: bytes, be_pins: list[x509.Certificate]) -> None:
    verified = verify_trusted_list(be, pinned_signers=be_pins, now=BE_TIME, expected_territory="BE")
    assert verified.version == 5 and verified.sequence_number == 43
    assert verified.list_id == "TSL-BE-2019-T2v2"
    assert tsl.fingerprint(verified.signer) == BE_SIGNER_SHA256
    assert verified.signing_time == datetime(2019, 6, 13, 16, 43, 27, tzinfo=UTC)
    assert verified.next_update == datetime(2019, 12, 13, tzinfo=UTC)
    assert len(verified.services) == 26
    statuses = [s.status for s in verified.services]
    assert statuses.count(tsl.STATUS_GRANTED) == 22 and statuses.count(tsl.STATUS_WITHDRAWN) == 4
    assert {s.service_type for s in verified.services} == {
        tsl.SERVICE_CA_QC,
        tsl.SVC_TYPE + "EDS/Q",
        tsl.SVC_TYPE + "QESValidation/Q",
    }
    assert verified.trust_anchors()  # granted CA/QC certificates


def test_belgian_list_is_rejected_today_because_its_signer_expired(
    be: bytes, be_pins: list[x509.Certificate]
) -> None:
    with pytest.raises(DomainError) as err:
        verify_trusted_list(be, pinned_signers=be_pins, now=TODAY)
    assert err.value.kind is ErrorKind.EXPIRED and "signer certificate" in err.value.detail


def test_belgian_list_with_one_byte_changed_is_rejected(be: bytes, be_pins: list[x509.Certificate]) -> None:
    tampered = replace_once(be, b"<TSLSequenceNumber>43<", b"<TSLSequenceNumber>44<")
    with pytest.raises(DomainError) as err:
        verify_trusted_list(tampered, pinned_signers=be_pins, now=BE_TIME)
    assert err.value.kind is ErrorKind.BAD_SIGNATURE
    one_letter = replace_once(be, b"Brussels", b"Brusselz")
    with pytest.raises(DomainError) as err:
        verify_trusted_list(one_letter, pinned_signers=be_pins, now=BE_TIME)
    assert err.value.kind is ErrorKind.BAD_SIGNATURE


def test_belgian_list_with_the_wrong_pin_is_untrusted(
    be: bytes, fi: bytes, lotl_signer: x509.Certificate
) -> None:
    with pytest.raises(DomainError) as err:
        verify_trusted_list(be, pinned_signers=[_keyinfo_certificate(fi), lotl_signer], now=BE_TIME)
    assert err.value.kind is ErrorKind.UNTRUSTED_SIGNER


def test_v6_sample_verifies_when_its_test_signer_is_pinned(fi: bytes) -> None:
    pin = _keyinfo_certificate(fi)
    # The DSS test key is a CA certificate without the tslSigning EKU: the profile check names both faults.
    with pytest.raises(DomainError) as err:
        verify_trusted_list(fi, pinned_signers=[pin], now=FI_TIME)
    assert err.value.kind is ErrorKind.UNTRUSTED_SIGNER
    assert "CA is true" in err.value.detail and "0.4.0.2231.3.0" in err.value.detail

    verified = verify_trusted_list(fi, pinned_signers=[pin], now=FI_TIME, enforce_signer_profile=False)
    assert verified.version == 6 and verified.sequence_number == 49 and verified.territory == "FI"
    assert verified.next_update == datetime(2025, 5, 14, 7, 11, 1, tzinfo=UTC)


def test_v6_sample_rejections(fi: bytes, be_pins: list[x509.Certificate]) -> None:
    pin = [_keyinfo_certificate(fi)]
    cases = [
        (fi, pin, TODAY, ErrorKind.EXPIRED),
        (
            replace_once(fi, b"<TSLSequenceNumber>49<", b"<TSLSequenceNumber>50<"),
            pin,
            FI_TIME,
            ErrorKind.BAD_SIGNATURE,
        ),
        (fi, be_pins, FI_TIME, ErrorKind.UNTRUSTED_SIGNER),
    ]
    for xml, pins, now, kind in cases:
        with pytest.raises(DomainError) as err:
            verify_trusted_list(xml, pinned_signers=pins, now=now, enforce_signer_profile=False)
        assert err.value.kind is kind, err.value.detail


def test_pointer_for_a_missing_territory_or_an_unpinned_lotl(
    lotl: bytes, be_pins: list[x509.Certificate]
) -> None:
    lotl_signer = _keyinfo_certificate(lotl)
    with pytest.raises(DomainError) as err:
        pointer_signers(lotl, "ZZ", parent_pinned_signers=[lotl_signer], now=LOTL_TIME)
    assert err.value.kind is ErrorKind.NOT_FOUND
    with pytest.raises(DomainError) as err:
        pointer_signers(lotl, "BE", parent_pinned_signers=be_pins, now=LOTL_TIME)
    assert err.value.kind is ErrorKind.UNTRUSTED_SIGNER


@pytest.mark.interop
@pytest.mark.parametrize(
    ("name", "at"),
    [("BE-tl-v5-seq43.xml", BE_TIME), ("FI-tl-v6-seq49-testsigned.xml", FI_TIME)],
)
def test_xmlsec1_agrees_on_the_real_lists(name: str, at: datetime, tmp_path: Path) -> None:
    xml = _read(name)
    pem = tmp_path / "pin.pem"
    pem.write_bytes(_keyinfo_certificate(xml).public_bytes(serialization.Encoding.PEM))
    import subprocess

    def judge(data: bytes) -> int:
        path = tmp_path / "list.xml"
        path.write_bytes(data)
        cmd = [
            *SAFE_XMLSEC1,
            "--trusted-pem",
            str(pem),
            "--verification-time",
            at.strftime("%Y-%m-%d %H:%M:%S"),
        ]
        return subprocess.run([*cmd, str(path)], capture_output=True, timeout=60, check=False).returncode

    assert judge(xml) == 0
    seq = etree.fromstring(xml).findtext(f".//{{{tsl.TSL_NS}}}TSLSequenceNumber")
    assert judge(replace_once(xml, f"<TSLSequenceNumber>{seq}<".encode(), b"<TSLSequenceNumber>1<")) != 0
