"""The eHealth subject DN (ehealth-reference §7): exact production encoding, tolerant parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.names import (
    ORG_UNIT_PLATFORM,
    EHealthName,
    build_subject,
    keystore_file_stem,
    names_equal,
    normalise_text,
    parse_subject,
    person_name,
    validate_application_id,
)

# The shared folder sits beside the project root.
FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "data" / "etee-fixtures"

PRINTABLE_STRING, UTF8_STRING = 0x13, 0x0C
OID_C, OID_O, OID_OU, OID_CN = "2.5.4.6", "2.5.4.10", "2.5.4.11", "2.5.4.3"

IAM = EHealthName("CBE", "0809394427", "EHEALTH-PLATFORM", "IAM")
JAN = EHealthName("SSIN", "79121430944", "JAN JANSSENS")


def _rdns(name: x509.Name) -> list[tuple[str, int, str]]:
    """(oid, DER tag of the value, text) for each RDN, read from the DER with asn1crypto."""
    parsed = asn1_x509.Name.load(name.public_bytes())
    out = []
    for rdn in parsed.chosen:
        assert len(rdn) == 1, "one attribute per RDN"
        atv = rdn[0]
        raw = atv["value"].dump()
        out.append((atv["type"].dotted, raw[0], atv["value"].native))
    return out


def _etk_certificates(path: Path) -> list[x509.Certificate]:
    signed = cms.ContentInfo.load(path.read_bytes())["content"]
    return [x509.load_der_x509_certificate(c.chosen.dump()) for c in signed["certificates"]]


# --- build ---------------------------------------------------------------------------------------


def test_person_subject_exact_encoding() -> None:
    assert _rdns(build_subject(JAN)) == [
        (OID_C, PRINTABLE_STRING, "BE"),
        (OID_O, UTF8_STRING, "Federal Government"),
        (OID_OU, UTF8_STRING, "SSIN=79121430944"),
        (OID_OU, UTF8_STRING, "JAN JANSSENS"),
        (OID_OU, UTF8_STRING, "eHealth-platform Belgium"),
        (OID_CN, UTF8_STRING, "SSIN=79121430944"),
    ]
    assert build_subject(JAN).rfc4514_string() == (
        "CN=SSIN=79121430944,OU=eHealth-platform Belgium,OU=JAN JANSSENS,OU=SSIN=79121430944,"
        "O=Federal Government,C=BE"
    )


def test_organisation_subject_exact_encoding_and_reference_dn() -> None:
    subject = build_subject(EHealthName("CBE", "809394427", "eHealth-platform", "iam"))
    assert _rdns(subject) == [
        (OID_C, PRINTABLE_STRING, "BE"),
        (OID_O, UTF8_STRING, "Federal Government"),
        (OID_OU, UTF8_STRING, "IAM"),
        (OID_OU, UTF8_STRING, "CBE=0809394427"),
        (OID_OU, UTF8_STRING, "EHEALTH-PLATFORM"),
        (OID_OU, UTF8_STRING, "eHealth-platform Belgium"),
        (OID_CN, UTF8_STRING, "CBE=0809394427, IAM"),
    ]
    # The production IAM certificate's DN as printed in the reference (§7.2).
    assert subject.rfc4514_string() == (
        "CN=CBE=0809394427\\, IAM,OU=eHealth-platform Belgium,OU=EHEALTH-PLATFORM,OU=CBE=0809394427,"
        "OU=IAM,O=Federal Government,C=BE"
    )


def test_build_is_byte_identical_to_the_real_kgss_certificate() -> None:
    kgss = next(
        c for c in _etk_certificates(FIXTURES / "etk" / "kgss.etk") if "KGSS" in c.subject.rfc4514_string()
    )
    ours = build_subject(EHealthName("CBE", "0809394427", "eHealth-platform", "KGSS"))
    assert ours.public_bytes() == kgss.subject.public_bytes()
    assert parse_subject(kgss.subject) == EHealthName("CBE", "0809394427", "EHEALTH-PLATFORM", "KGSS")


def test_openssl_reads_the_subject_in_the_same_order(tmp_path: Path) -> None:
    import subprocess

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(build_subject(IAM)).sign(key, hashes.SHA256())
    path = tmp_path / "req.pem"
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    out = subprocess.run(
        ["openssl", "req", "-in", str(path), "-noout", "-subject", "-nameopt", "RFC2253,show_type"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert out.strip() == (
        "subject=CN=UTF8STRING:CBE=0809394427\\, IAM,OU=UTF8STRING:eHealth-platform Belgium,"
        "OU=UTF8STRING:EHEALTH-PLATFORM,OU=UTF8STRING:CBE=0809394427,OU=UTF8STRING:IAM,"
        "O=UTF8STRING:Federal Government,C=PRINTABLESTRING:BE"
    )


def test_build_normalises_and_pads() -> None:
    subject = build_subject(EHealthName("SSIN", "79121430944", "  Mélanie   Dupré-Ñúñez "))
    assert parse_subject(subject).name == "MELANIE DUPRE-NUNEZ"
    assert parse_subject(build_subject(EHealthName("SITE", "12", "Site X"))).id_value == "0012"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (EHealthName("SSIN", "85073003329", "X"), ErrorKind.BAD_IDENTIFIER),
        (EHealthName("NIHII11", "00000000202", "BOB"), ErrorKind.BAD_IDENTIFIER),
        (EHealthName("FOO", "1", "X"), ErrorKind.BAD_IDENTIFIER),
        (EHealthName("SSIN", "79121430944", "JAN", "APP"), ErrorKind.BAD_REQUEST),
        (EHealthName("CBE", "0809394427", "X", "BAD APP"), ErrorKind.BAD_REQUEST),
        (EHealthName("CBE", "0809394427", "X", "A" * 31), ErrorKind.BAD_REQUEST),
        (EHealthName("CBE", "0809394427", "  "), ErrorKind.BAD_REQUEST),
        (EHealthName("CBE", "0809394427", "X" * 65), ErrorKind.BAD_REQUEST),
        (EHealthName("CBE", "0809394427", "A\x00B"), ErrorKind.BAD_REQUEST),
    ],
)
def test_build_refusals(name: EHealthName, kind: ErrorKind) -> None:
    with pytest.raises(DomainError) as info:
        build_subject(name)
    assert info.value.kind is kind


# --- text rules ----------------------------------------------------------------------------------


def test_normalise_text() -> None:
    assert normalise_text("Émile Zola") == "EMILE ZOLA"
    assert normalise_text("çaÑ") == "CAN"
    assert normalise_text("Jan  Janssens ") == "JAN JANSSENS"
    assert person_name("Jan", "Janssens") == "JAN JANSSENS"
    assert person_name("Anne-Sophie", "Van den Bergh") == "ANNE-SOPHIE VAN DEN BERGH"


def test_application_id() -> None:
    assert validate_application_id("kgss") == "KGSS"
    assert validate_application_id("médi_care-2") == "MEDI_CARE-2"
    assert validate_application_id("A" * 30) == "A" * 30
    for bad in ["", "A" * 31, "MY APP", "APP/1", "APP,X"]:
        with pytest.raises(DomainError) as info:
            validate_application_id(bad)
        assert info.value.kind is ErrorKind.BAD_REQUEST


def test_keystore_file_stem() -> None:
    assert keystore_file_stem(JAN) == "SSIN=79121430944"
    assert keystore_file_stem(IAM) == "CBE=0809394427,IAM"


def test_is_person() -> None:
    assert JAN.is_person
    assert not IAM.is_person


# --- parse ---------------------------------------------------------------------------------------


def _name(*attrs: tuple[x509.ObjectIdentifier, str], printable: bool = False) -> x509.Name:
    kind = _ASN1Type.PrintableString if printable else _ASN1Type.UTF8String
    return x509.Name([x509.NameAttribute(oid, value, _type=kind) for oid, value in attrs])


@pytest.mark.parametrize("subject", [JAN, IAM])
def test_round_trip(subject: EHealthName) -> None:
    assert parse_subject(build_subject(subject)) == subject


def test_parse_cn_first_all_printable() -> None:
    subject = _name(
        (NameOID.COMMON_NAME, "CBE=0809394427, IAM"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, ORG_UNIT_PLATFORM),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "EHEALTH-PLATFORM"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "CBE=0809394427"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "IAM"),
        (NameOID.ORGANIZATION_NAME, "Federal Government"),
        (NameOID.COUNTRY_NAME, "BE"),
        printable=True,
    )
    assert parse_subject(subject) == IAM
    assert not names_equal(subject, build_subject(IAM))  # other order


def test_parse_old_fixture_order() -> None:
    # C=BE,O=Federal Government,OU=eHealth-platform Belgium,OU=Bob,OU=NIHII=00000000202,CN=NIHII=00000000202
    subject = _name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.ORGANIZATION_NAME, "Federal Government"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, ORG_UNIT_PLATFORM),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "Bob"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "NIHII=00000000202"),
        (NameOID.COMMON_NAME, "NIHII=00000000202"),
        printable=True,
    )
    assert parse_subject(subject) == EHealthName("NIHII", "00000000202", "Bob")


def test_parse_real_old_bob_etk() -> None:
    certs = _etk_certificates(FIXTURES / "bob" / "old_bobs_public_key.etk")
    bob = next(c for c in certs if "NIHII" in c.subject.rfc4514_string())
    assert parse_subject(bob.subject) == EHealthName("NIHII", "00000000202", "Bob")


def test_parse_identifier_from_cn_when_no_ou() -> None:
    subject = _name((NameOID.COMMON_NAME, "NIHII11=11478761004"), (NameOID.ORGANIZATIONAL_UNIT_NAME, "DR X"))
    assert parse_subject(subject) == EHealthName("NIHII11", "11478761004", "DR X")


def test_parse_eid_certificate_subject() -> None:
    subject = _name(
        (NameOID.COUNTRY_NAME, "BE"),
        (NameOID.COMMON_NAME, "Jan Janssens (Authentication)"),
        (NameOID.SURNAME, "Janssens"),
        (NameOID.GIVEN_NAME, "Jan"),
        (NameOID.SERIAL_NUMBER, "79121430944"),
    )
    assert parse_subject(subject) == JAN


@pytest.mark.parametrize(
    "subject",
    [
        x509.Name([]),
        _name((NameOID.COMMON_NAME, "eH CA"), (NameOID.ORGANIZATIONAL_UNIT_NAME, ORG_UNIT_PLATFORM)),
        _name((NameOID.COMMON_NAME, "x"), (NameOID.SERIAL_NUMBER, "740906124")),
    ],
)
def test_parse_refuses_non_ehealth_names(subject: x509.Name) -> None:
    with pytest.raises(DomainError) as info:
        parse_subject(subject)
    assert info.value.kind is ErrorKind.BAD_REQUEST


# --- equality ------------------------------------------------------------------------------------


def test_names_equal_ignores_string_types_only() -> None:
    ours = build_subject(IAM)
    printable = x509.Name(
        [x509.NameAttribute(a.oid, str(a.value), _type=_ASN1Type.PrintableString) for a in ours]
    )
    assert ours.public_bytes() != printable.public_bytes()
    assert names_equal(ours, printable)
    assert names_equal(ours, build_subject(IAM))
    assert not names_equal(
        ours, build_subject(EHealthName("CBE", "0809394427", "EHEALTH-PLATFORM", "IAMACC"))
    )
    assert not names_equal(ours, build_subject(EHealthName("CBE", "0809394427", "EHEALTH-PLATFORM")))
    lower = x509.Name([x509.NameAttribute(a.oid, str(a.value).lower()) for a in ours])
    assert not names_equal(ours, lower)


def test_names_equal_compares_rdn_grouping_and_order() -> None:
    c = x509.NameAttribute(NameOID.COUNTRY_NAME, "BE")
    o = x509.NameAttribute(NameOID.ORGANIZATION_NAME, "X")
    one_rdn = x509.Name([x509.RelativeDistinguishedName([c, o])])
    two_rdns = x509.Name([c, o])
    swapped_in_set = x509.Name([x509.RelativeDistinguishedName([o, c])])
    assert not names_equal(one_rdn, two_rdns)
    assert names_equal(one_rdn, swapped_in_set)
    assert not names_equal(two_rdns, x509.Name([o, c]))
