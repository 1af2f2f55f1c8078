"""Publishing: the list we build and sign is schema-valid, has the guide's exact shape, and verifies with
our verifier, python-xmlsec and the xmlsec1 command line; any edit after signing fails all three."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import xmlsec
from asn1crypto import tsp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import tsl
from ehealth_certs.pki.signing import SignatureScheme, SoftwareSigner
from ehealth_certs.trustlist.publish import (
    STATUS_GRANTED,
    STATUS_WITHDRAWN,
    ServiceHistoryEntry,
    TrustService,
    build_trusted_list,
    sha2_digest_file,
)
from tests.trustlist.tl_helpers import (
    CA_PKC,
    ISSUE,
    NEXT,
    NOW,
    SCHEME,
    Pki,
    SignerPair,
    make_cert,
    publish,
    pyxmlsec_verify,
    replace_once,
    services_for,
    sign_trusted_list,
    xmlsec1_verify,
)

DS = tsl.DS_NS
XA = tsl.XADES_NS


def _q(ns: str, n: str) -> str:
    return f"{{{ns}}}{n}"


@pytest.mark.interop
@pytest.mark.parametrize("which", ["rsa_signer", "ec_signer"])
def test_published_list_is_valid_and_verifies_with_all_three_verifiers(
    which: str, pki: Pki, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    signer: SignerPair = request.getfixturevalue(which)
    xml = publish(pki, signer)

    tsl.validate_schema(etree.fromstring(xml))
    verified = tsl.verify_trusted_list(xml, pinned_signers=[signer.certificate], now=NOW)
    pyxmlsec_verify(xml, signer.certificate)
    judge = xmlsec1_verify(xml, signer.pem(tmp_path), tmp_path)
    assert judge.returncode == 0, judge.stderr
    assert "SignedInfo References (ok/all): 2/2" in judge.stderr

    assert verified.version == 6
    assert verified.sequence_number == 7
    assert verified.issue_time == ISSUE and verified.next_update == NEXT
    assert verified.signer == signer.certificate
    assert verified.list_id == "TSL-BE-acceptance-7"
    by_cert = {c: (t, s) for t, c, s in verified.certificates}
    assert by_cert[pki.root] == (CA_PKC, STATUS_GRANTED)
    assert by_cert[pki.old_issuing] == (CA_PKC, STATUS_WITHDRAWN)
    assert by_cert[pki.ocsp] == (tsl.SERVICE_OCSP, STATUS_GRANTED)
    assert by_cert[pki.tsa] == (tsl.SERVICE_TSA, STATUS_GRANTED)
    assert pki.etkra in by_cert and pki.tls in by_cert
    # A withdrawn CA stays listed but is no trust anchor.
    assert pki.old_issuing not in verified.trust_anchors()
    assert set(verified.trust_anchors([CA_PKC])) == {pki.root, pki.issuing}


def test_signature_has_the_exact_shape_of_the_guide(signed_list: bytes, rsa_signer: SignerPair) -> None:
    assert signed_list.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(signed_list)
    signatures = list(root.iter(_q(DS, "Signature")))
    assert len(signatures) == 1 and root[-1] is signatures[0]
    sig = signatures[0]
    si = sig.find(_q(DS, "SignedInfo"))
    assert si.find(_q(DS, "CanonicalizationMethod")).get("Algorithm") == tsl.C14N_EXC
    assert si.find(_q(DS, "SignatureMethod")).get("Algorithm").endswith("#rsa-sha256")
    refs = si.findall(_q(DS, "Reference"))
    assert len(refs) == 2  # no reference to KeyInfo
    transforms = [[t.get("Algorithm") for t in r.iter(_q(DS, "Transform"))] for r in refs]
    assert refs[0].get("URI") == f"#{root.get('Id')}"
    assert transforms[0] == [tsl.TRANSFORM_ENVELOPED, tsl.C14N_EXC]
    assert refs[1].get("Type") == "http://uri.etsi.org/01903#SignedProperties"
    assert transforms[1] == [tsl.C14N_EXC]  # the explicit transform signxml forgets
    sp = root.find(f".//{_q(XA, 'SignedProperties')}")
    assert refs[1].get("URI") == f"#{sp.get('Id')}"
    key_info = sig.find(_q(DS, "KeyInfo"))
    assert [c.tag for c in key_info] == [_q(DS, "X509Data")]
    assert [c.tag for c in key_info[0]] == [_q(DS, "X509Certificate")]
    der = rsa_signer.certificate.public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(key_info[0][0].text) == der
    assert not list(sig.iter(_q(DS, "KeyValue")))

    ssp = sp.find(_q(XA, "SignedSignatureProperties"))
    assert [c.tag for c in ssp] == [_q(XA, "SigningTime"), _q(XA, "SigningCertificateV2")]
    assert ssp[0].text == "2026-06-01T08:00:00Z"
    cert = ssp[1].find(_q(XA, "Cert"))
    assert base64.b64decode(cert.find(f".//{_q(DS, 'DigestValue')}").text) == hashlib.sha256(der).digest()
    issuer_serial = tsp.IssuerSerial.load(base64.b64decode(cert.find(_q(XA, "IssuerSerialV2")).text))
    assert issuer_serial["serial_number"].native == rsa_signer.certificate.serial_number
    general_name = issuer_serial["issuer"][0]
    assert general_name.name == "directory_name"
    assert general_name.chosen.untag().dump() == rsa_signer.certificate.issuer.public_bytes()
    assert sp.getparent().get("Target") == f"#{sig.get('Id')}"


def test_scheme_information_names_the_platform_and_history_is_kept(signed_list: bytes) -> None:
    root = etree.fromstring(signed_list)
    ns = {"t": tsl.TSL_NS}
    assert root.get("TSLTag") == tsl.TSL_TAG
    assert root.xpath("string(t:SchemeInformation/t:TSLVersionIdentifier)", namespaces=ns) == "6"
    assert (
        root.xpath("string(t:SchemeInformation/t:SchemeOperatorName/t:Name)", namespaces=ns)
        == SCHEME.operator_name
    )
    assert "EUgeneric" not in root.xpath("string(t:SchemeInformation/t:TSLType)", namespaces=ns)
    withdrawn = root.xpath(
        "//t:TSPService[t:ServiceInformation/t:ServiceStatus = $s]", namespaces=ns, s=STATUS_WITHDRAWN
    )
    assert len(withdrawn) == 1
    history = withdrawn[0].xpath("t:ServiceHistory/t:ServiceHistoryInstance", namespaces=ns)
    assert [h.xpath("string(t:ServiceStatus)", namespaces=ns) for h in history] == [STATUS_GRANTED]
    assert history[0].xpath("string(t:StatusStartingTime)", namespaces=ns) == "2026-01-02T00:00:00Z"


TAMPERS = {
    "sequence number": (b"<TSLSequenceNumber>7<", b"<TSLSequenceNumber>8<"),
    "service status": (
        b"<ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn<",
        b"<ServiceStatus>http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted<",
    ),
    "service name": (b">eHealth TSA<", b">eHealth TSB<"),
    "signing time": (b"<xades:SigningTime>2026-06-01T08:00:00Z", b"<xades:SigningTime>2026-06-01T08:00:01Z"),
}


@pytest.mark.interop
@pytest.mark.parametrize("edit", sorted(TAMPERS))
def test_edit_after_signing_fails_every_verifier(
    edit: str, signed_list: bytes, rsa_signer: SignerPair, tmp_path: Path
) -> None:
    old, new = TAMPERS[edit]
    tampered = replace_once(signed_list, old, new)
    with pytest.raises(DomainError) as err:
        tsl.verify_trusted_list(tampered, pinned_signers=[rsa_signer.certificate], now=NOW)
    assert err.value.kind is ErrorKind.BAD_SIGNATURE
    assert "digest mismatch" in err.value.detail
    with pytest.raises(xmlsec.Error):
        pyxmlsec_verify(tampered, rsa_signer.certificate)
    judge = xmlsec1_verify(tampered, rsa_signer.pem(tmp_path), tmp_path)
    assert judge.returncode != 0
    # Sanity: the untouched bytes pass the same judge.
    assert xmlsec1_verify(signed_list, rsa_signer.pem(tmp_path), tmp_path).returncode == 0


@pytest.mark.interop
def test_xmlsec1_safe_command_refuses_a_list_pinned_to_another_signer(
    signed_list: bytes, other_signer: SignerPair, tmp_path: Path
) -> None:
    judge = xmlsec1_verify(signed_list, other_signer.pem(tmp_path), tmp_path)
    assert judge.returncode != 0


def test_signer_is_called_once_with_the_canonical_signed_info(pki: Pki, ec_signer: SignerPair) -> None:
    calls: list[bytes] = []

    class Recording:
        public_key = ec_signer.signer.public_key
        scheme = ec_signer.signer.scheme

        def sign(self, data: bytes) -> bytes:
            calls.append(data)
            return ec_signer.signer.sign(data)

    root = build_trusted_list(
        scheme=SCHEME, services=services_for(pki), sequence_number=3, issue_time=ISSUE, next_update=NEXT
    )
    xml = sign_trusted_list(
        root, signer=Recording(), signer_certificate=ec_signer.certificate, signing_time=ISSUE
    )
    assert len(calls) == 1
    signed_info = etree.fromstring(xml).find(f"{_q(DS, 'Signature')}/{_q(DS, 'SignedInfo')}")
    assert calls[0] == tsl.c14n_exclusive(signed_info)
    assert calls[0].startswith(b'<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">')
    # The caller's tree is not modified.
    assert root.find(f".//{_q(DS, 'Signature')}") is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"sequence_number": 0}, "TSLSequenceNumber"),
        ({"next_update": ISSUE + timedelta(days=200)}, "6 months"),
        ({"next_update": ISSUE}, "6 months"),
    ],
)
def test_build_refuses_bad_scheme_parameters(pki: Pki, kwargs: dict[str, object], needle: str) -> None:
    args: dict[str, object] = {
        "scheme": SCHEME,
        "services": services_for(pki),
        "sequence_number": 1,
        "issue_time": ISSUE,
        "next_update": NEXT,
    }
    args.update(kwargs)
    with pytest.raises(DomainError) as err:
        build_trusted_list(**args)  # type: ignore[arg-type]
    assert err.value.kind is ErrorKind.BAD_REQUEST and needle in err.value.detail


def test_build_refuses_bad_services(pki: Pki) -> None:
    t = datetime(2026, 3, 1, tzinfo=UTC)
    bad = [
        TrustService(pki.root, CA_PKC, "x", "granted", t),
        TrustService(pki.root, "CA/PKC", "x", STATUS_GRANTED, t),
        TrustService(pki.root, CA_PKC, "x", STATUS_WITHDRAWN, t, (ServiceHistoryEntry(STATUS_GRANTED, t),)),
        TrustService(
            pki.root,
            CA_PKC,
            "x",
            STATUS_WITHDRAWN,
            t,
            (
                ServiceHistoryEntry(STATUS_GRANTED, t - timedelta(days=9)),
                ServiceHistoryEntry(STATUS_GRANTED, t),
            ),
        ),
    ]
    for service in bad:
        with pytest.raises(DomainError) as err:
            build_trusted_list(
                scheme=SCHEME, services=[service], sequence_number=1, issue_time=ISSUE, next_update=NEXT
            )
        assert err.value.kind is ErrorKind.BAD_REQUEST


def test_sign_refuses_a_signer_outside_the_tl_signer_profile(pki: Pki, rsa_signer: SignerPair) -> None:
    root = build_trusted_list(
        scheme=SCHEME, services=services_for(pki), sequence_number=1, issue_time=ISSUE, next_update=NEXT
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cases = {
        "BasicConstraints CA is true": make_cert(key, "CA as signer", ca=True),
        "ExtendedKeyUsage": make_cert(key, "no EKU"),
    }
    for needle, cert in cases.items():
        with pytest.raises(DomainError) as err:
            sign_trusted_list(root, signer=SoftwareSigner(key), signer_certificate=cert, signing_time=ISSUE)
        assert err.value.kind is ErrorKind.CONFIGURATION and needle in err.value.detail

    with pytest.raises(DomainError) as err:  # key and certificate do not belong together
        sign_trusted_list(
            root, signer=SoftwareSigner(key), signer_certificate=rsa_signer.certificate, signing_time=ISSUE
        )
    assert err.value.kind is ErrorKind.CONFIGURATION

    with pytest.raises(DomainError) as err:  # signing time after the signer expired
        sign_trusted_list(
            root,
            signer=rsa_signer.signer,
            signer_certificate=rsa_signer.certificate,
            signing_time=rsa_signer.certificate.not_valid_after_utc + timedelta(seconds=1),
        )
    assert err.value.kind is ErrorKind.EXPIRED


def test_sign_refuses_short_rsa_keys_and_pss(pki: Pki) -> None:
    root = build_trusted_list(
        scheme=SCHEME, services=services_for(pki), sequence_number=1, issue_time=ISSUE, next_update=NEXT
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = make_cert(key, "short key signer", tl_signer=True)
    with pytest.raises(DomainError) as err:
        sign_trusted_list(root, signer=SoftwareSigner(key), signer_certificate=cert, signing_time=ISSUE)
    assert err.value.kind is ErrorKind.CONFIGURATION and "3072" in err.value.detail
    with pytest.raises(DomainError) as err:
        tsl.prepare_signature(
            root, signer_certificate=cert, scheme=SignatureScheme.RSA_PSS_SHA256, signing_time=ISSUE
        )
    assert err.value.kind is ErrorKind.CONFIGURATION


def test_sign_refuses_an_already_signed_list(signed_list: bytes, rsa_signer: SignerPair) -> None:
    with pytest.raises(DomainError) as err:
        sign_trusted_list(
            etree.fromstring(signed_list),
            signer=rsa_signer.signer,
            signer_certificate=rsa_signer.certificate,
            signing_time=ISSUE,
        )
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_sha2_file_is_lowercase_hex_and_parses_back(signed_list: bytes) -> None:
    content = sha2_digest_file(signed_list)
    digest = hashlib.sha256(signed_list).hexdigest()
    assert content == digest.encode() + b"\n"
    assert tsl.parse_sha2_file(content) == digest
    assert tsl.parse_sha2_file(digest.upper().encode()) == digest
    assert tsl.parse_sha2_file(hashlib.sha256(signed_list).digest()) == digest
    with pytest.raises(DomainError) as err:
        tsl.parse_sha2_file(b"not a digest")
    assert err.value.kind is ErrorKind.MALFORMED_MESSAGE


def test_empty_list_without_services_is_still_valid(rsa_signer: SignerPair, pki: Pki) -> None:
    xml = publish(pki, rsa_signer, services=[])
    verified = tsl.verify_trusted_list(xml, pinned_signers=[rsa_signer.certificate], now=NOW)
    assert verified.certificates == [] and verified.trust_anchors() == []
