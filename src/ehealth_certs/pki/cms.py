"""Shared CMS helpers for ETKs and sealed messages: BER-tolerant parsing, signer-info verification,
signed-data building, certificate path checks and the violation vocabulary of the eHealth ETEE libraries.

Parsing is asn1crypto (accepts BER: indefinite lengths, OCTET STRINGs chunked into 1000-byte pieces);
everything this module writes is DER.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ehealth_certs.errors import DomainError, ErrorKind

RevocationStatus = Literal["good", "revoked", "unknown"]
# (certificate, its issuer) -> status; the caller decides whether that is OCSP, a CRL or a cache.
RevocationChecker = Callable[[x509.Certificate, x509.Certificate], RevocationStatus]


class ViolationCode(StrEnum):
    NOT_TIME_VALID = "NOT_TIME_VALID"
    UNTRUSTED_ISSUER = "UNTRUSTED_ISSUER"
    ISSUER_SIGNATURE_INVALID = "ISSUER_SIGNATURE_INVALID"
    WRONG_KEY_USAGE = "WRONG_KEY_USAGE"
    WRONG_KEY_TYPE = "WRONG_KEY_TYPE"
    KEY_TOO_SMALL = "KEY_TOO_SMALL"
    REVOKED = "REVOKED"
    REVOCATION_UNKNOWN = "REVOCATION_UNKNOWN"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    ALGORITHM_NOT_ALLOWED = "ALGORITHM_NOT_ALLOWED"
    INNER_SIGNER_DIFFERENT = "INNER_SIGNER_DIFFERENT"
    DN_MISMATCH = "DN_MISMATCH"


@dataclass(frozen=True)
class Violation:
    """One failed check. ``target`` names what failed (a layer or a certificate role)."""

    code: ViolationCode
    target: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code.value, "target": self.target, "detail": self.detail}


# ---------------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------------


def malformed(detail: str) -> DomainError:
    return DomainError(ErrorKind.MALFORMED_MESSAGE, detail)


def load_content_info(data: bytes, expected: str, what: str) -> Any:
    """Parse a CMS ContentInfo of type ``expected`` (asn1crypto name) and return its content, fully parsed."""
    try:
        info = cms.ContentInfo.load(data)
        ctype = info["content_type"].native
        if ctype != expected:
            raise malformed(f"{what}: expected CMS {expected}, found {ctype}")
        content = info["content"]
        content.native  # noqa: B018  (forces the lazy parse so that broken input fails here)
    except DomainError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise malformed(f"{what} is not a CMS ContentInfo ({type(exc).__name__})") from exc
    return content


def octets(value: Any) -> bytes:
    """The bytes of a (possibly constructed, BER-chunked) OCTET STRING."""
    native = value.native
    if isinstance(native, bytes):
        return native
    return bytes(value.contents) if native is None else bytes(value.parsed.dump())


def econtent(signed_data: Any, what: str) -> bytes:
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "data":
        raise malformed(f"{what}: encapsulated content type is {encap['content_type'].native}, not data")
    content = encap["content"]
    if content.native is None:
        raise malformed(f"{what}: detached content is not supported")
    return octets(content)


def certificates_of(signed_data: Any) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    certs = signed_data["certificates"]
    if certs.native is None:
        return out
    for choice in certs:
        if choice.name != "certificate":
            continue
        out.append(load_certificate(choice.chosen.dump()))
    return out


def load_certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        try:
            return x509.load_der_x509_certificate(asn1_x509.Certificate.load(der).dump(force=True))
        except ValueError as exc:
            raise malformed("an embedded certificate cannot be parsed") from exc


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------------------
# Names and identifiers
# ---------------------------------------------------------------------------------------------------


def same_name(a: x509.Name, b: x509.Name) -> bool:
    """RFC 5280 §7.1 name comparison (asn1crypto normalises case and spaces; RDN order matters)."""
    a_der, b_der = a.public_bytes(), b.public_bytes()
    return a_der == b_der or bool(asn1_x509.Name.load(a_der) == asn1_x509.Name.load(b_der))


def sid_matches(sid: Any, cert: x509.Certificate) -> bool:
    """Does a SignerIdentifier / RecipientIdentifier point at ``cert``?"""
    if sid.name == "issuer_and_serial_number":
        ias = sid.chosen
        if ias["serial_number"].native != cert.serial_number:
            return False
        return bool(ias["issuer"] == asn1_x509.Name.load(cert.issuer.public_bytes()))
    if sid.name == "subject_key_identifier":
        try:
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        except x509.ExtensionNotFound:
            return False
        return bool(ski == sid.chosen.native)
    return False


def issuer_and_serial(cert: x509.Certificate) -> Any:
    return cms.IssuerAndSerialNumber(
        {"issuer": asn1_x509.Name.load(cert.issuer.public_bytes()), "serial_number": cert.serial_number}
    )


# ---------------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------------

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
STRONG_DIGESTS = frozenset({"sha256", "sha384", "sha512"})


def hash_by_name(name: str) -> hashes.HashAlgorithm:
    if name not in _HASHES:
        raise malformed(f"unsupported digest algorithm {name}")
    return _HASHES[name]()


def digest(name: str, data: bytes) -> bytes:
    return hashlib.new(name, data).digest()


def signed_attrs_to_be_signed(signer_info: Any) -> bytes:
    """The signed attributes as signed: their original bytes under the SET OF tag (RFC 5652 §5.4)."""
    encoded = bytes(signer_info["signed_attrs"].dump())
    return b"\x31" + encoded[1:]


def signed_attribute(signer_info: Any, name: str, what: str) -> Any | None:
    """The single value of signed attribute ``name``; several values or several attributes are malformed."""
    attrs = signer_info["signed_attrs"]
    if attrs.native is None:
        return None
    found = [a for a in attrs if a["type"].native == name]
    if not found:
        return None
    if len(found) > 1 or len(found[0]["values"]) != 1:
        raise malformed(f"{what}: several {name} attributes")
    return found[0]["values"][0]


def verify_with_key(
    public_key: Any, signature: bytes, data: bytes, signature_algorithm: Any, digest_name: str
) -> bool:
    """Verify ``signature`` over ``data`` as a CMS signatureAlgorithm (PSS, PKCS#1 v1.5, ECDSA) says."""
    algo = signature_algorithm["algorithm"].native
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if algo == "rsassa_pss":
                params = signature_algorithm["parameters"]
                hash_name = params["hash_algorithm"]["algorithm"].native
                mgf_hash = params["mask_gen_algorithm"]["parameters"]["algorithm"].native
                salt = params["salt_length"].native
                pss = padding.PSS(mgf=padding.MGF1(hash_by_name(mgf_hash)), salt_length=salt)
                public_key.verify(signature, data, pss, hash_by_name(hash_name))
                return True
            hash_name = _pkcs1_hash(algo, digest_name)
            public_key.verify(signature, data, padding.PKCS1v15(), hash_by_name(hash_name))
            return True
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            hash_name = {"sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}.get(
                algo, digest_name
            )
            public_key.verify(signature, data, ec.ECDSA(hash_by_name(hash_name)))
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, DomainError):
        return False
    return False


def _pkcs1_hash(algo: str, digest_name: str) -> str:
    if algo in ("rsassa_pkcs1v15", "rsa"):
        return digest_name
    for name in _HASHES:
        if algo == f"{name}_rsa":
            return name
    raise malformed(f"unsupported signature algorithm {algo}")


def signature_algorithm_names(signer_info: Any) -> tuple[str, str]:
    """(digest, signature hash) names, to check the algorithm policy."""
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    sig = signer_info["signature_algorithm"]
    algo = sig["algorithm"].native
    if algo == "rsassa_pss":
        return digest_name, sig["parameters"]["hash_algorithm"]["algorithm"].native
    try:
        return digest_name, _pkcs1_hash(algo, digest_name)
    except DomainError:
        return digest_name, algo


def verify_signer_info(signer_info: Any, public_key: Any, content: bytes, what: str) -> str | None:
    """Check messageDigest and the signature; returns None when valid, else the reason."""
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        return f"unsupported digest {digest_name}"
    signature = signer_info["signature"].native
    if signer_info["signed_attrs"].native is None:
        data = content
    else:
        md = signed_attribute(signer_info, "message_digest", what)
        if md is None:
            return "the signed attributes hold no messageDigest"
        if md.native != digest(digest_name, content):
            return "messageDigest does not match the content"
        data = signed_attrs_to_be_signed(signer_info)
    if not verify_with_key(public_key, signature, data, signer_info["signature_algorithm"], digest_name):
        return "the signature value does not verify with the signer's key"
    return None


def certificate_signature_valid(cert: x509.Certificate, issuer_key: Any) -> bool:
    """Verify a certificate signature with any hash (verify_directly_issued_by refuses SHA-1)."""
    params = cert.signature_algorithm_parameters
    algorithm = cert.signature_hash_algorithm
    try:
        if isinstance(issuer_key, rsa.RSAPublicKey) and isinstance(params, padding.PKCS1v15 | padding.PSS):
            if algorithm is None:
                return False
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, params, algorithm)
            return True
        if isinstance(issuer_key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, params)
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return False


# ---------------------------------------------------------------------------------------------------
# Building (DER)
# ---------------------------------------------------------------------------------------------------

PSS_SHA256 = {
    "algorithm": "rsassa_pss",
    "parameters": {
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        "salt_length": 32,
        "trailer_field": "trailer_field_bc",
    },
}
PKCS1_RSA = {"algorithm": "rsassa_pkcs1v15"}


def cms_time(at: datetime) -> Any:
    at = at.astimezone(UTC).replace(microsecond=0)
    if at.year < 2050:
        return cms.Time({"utc_time": at})
    return cms.Time({"general_time": at})


def signed_attributes(content: bytes, signing_time: datetime) -> Any:
    return cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["data"]},
            {"type": "signing_time", "values": [cms_time(signing_time)]},
            {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
        ]
    )


def attrs_set_der(attrs: Any) -> bytes:
    """DER of the attributes as a SET OF: what the signer signs (RFC 5652 §5.4)."""
    return bytes(cms.CMSAttributes(list(attrs)).dump(force=True))


def signed_data(
    content: bytes,
    signer_cert: x509.Certificate,
    signature: bytes,
    *,
    signature_algorithm: dict[str, Any],
    signed_attrs: Any | None,
    certificates: Sequence[x509.Certificate],
) -> bytes:
    """Assemble a DER ContentInfo(SignedData) with one signer; the signature is computed by the caller."""
    signer: dict[str, Any] = {
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": issuer_and_serial(signer_cert)}),
        "digest_algorithm": {"algorithm": "sha256"},
        "signature_algorithm": signature_algorithm,
        "signature": signature,
    }
    if signed_attrs is not None:
        signer["signed_attrs"] = signed_attrs
    sd: dict[str, Any] = {
        "version": "v1",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "data", "content": content},
        "signer_infos": [signer],
    }
    if certificates:
        sd["certificates"] = [asn1_x509.Certificate.load(der(c)) for c in certificates]
    info = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(sd)})
    return bytes(info.dump())


# ---------------------------------------------------------------------------------------------------
# Certificate checks shared by ETK validation and unsealing
# ---------------------------------------------------------------------------------------------------


def key_bits(cert: x509.Certificate) -> int | None:
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return pub.key_size
    return None


def key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def time_valid(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def is_self_signed(cert: x509.Certificate) -> bool:
    return same_name(cert.issuer, cert.subject) and certificate_signature_valid(cert, cert.public_key())


@dataclass(frozen=True)
class PathResult:
    path: list[x509.Certificate]  # leaf first; ends with the anchor when trusted
    trusted: bool
    violations: list[Violation]


def check_path(
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    trusted_cas: Sequence[x509.Certificate],
    now: datetime,
    *,
    target: str,
    allow_sha1: bool = False,
    revocation_checker: RevocationChecker | None = None,
    check_revocation: bool = False,
) -> PathResult:
    """Build leaf -> trusted CA from ``pool`` and ``trusted_cas`` and check time, issuer signatures and
    algorithms along it (and revocation of every non-anchor certificate when asked)."""
    anchors = {der(c) for c in trusted_cas}
    violations: list[Violation] = []
    path = [leaf]
    trusted = der(leaf) in anchors
    current = leaf
    while not trusted and len(path) < 12:
        candidates = [
            c for c in (*trusted_cas, *pool) if same_name(current.issuer, c.subject) and c not in path
        ]
        issuer = next((c for c in candidates if certificate_signature_valid(current, c.public_key())), None)
        if issuer is None:
            if candidates:
                violations.append(
                    Violation(
                        ViolationCode.ISSUER_SIGNATURE_INVALID,
                        target,
                        f"the signature of {current.subject.rfc4514_string()} fails with its issuer key",
                    )
                )
            else:
                violations.append(
                    Violation(
                        ViolationCode.UNTRUSTED_ISSUER,
                        target,
                        f"no trusted issuer found for {current.subject.rfc4514_string()}",
                    )
                )
            break
        path.append(issuer)
        current = issuer
        if der(issuer) in anchors:
            trusted = True
        elif is_self_signed(issuer):
            violations.append(
                Violation(
                    ViolationCode.UNTRUSTED_ISSUER,
                    target,
                    f"root {issuer.subject.rfc4514_string()} is not trusted",
                )
            )
            break
    for cert in path:
        anchor = der(cert) in anchors
        if not time_valid(cert, now):
            violations.append(
                Violation(
                    ViolationCode.NOT_TIME_VALID,
                    target,
                    f"{cert.subject.rfc4514_string()} is valid {cert.not_valid_before_utc:%Y-%m-%d} to "
                    f"{cert.not_valid_after_utc:%Y-%m-%d}, not on {now:%Y-%m-%d}",
                )
            )
        if not anchor:
            hash_alg = cert.signature_hash_algorithm
            name = hash_alg.name if hash_alg is not None else "none"
            if name not in STRONG_DIGESTS and not (allow_sha1 and name == "sha1"):
                violations.append(
                    Violation(
                        ViolationCode.ALGORITHM_NOT_ALLOWED,
                        target,
                        f"{cert.subject.rfc4514_string()} is signed with {name}",
                    )
                )
    if check_revocation:
        violations.extend(_revocation(path, trusted, anchors, target, revocation_checker))
    return PathResult(path, trusted, violations)


def _revocation(
    path: list[x509.Certificate],
    trusted: bool,
    anchors: set[bytes],
    target: str,
    checker: RevocationChecker | None,
) -> list[Violation]:
    out: list[Violation] = []
    if checker is None:
        return [Violation(ViolationCode.REVOCATION_UNKNOWN, target, "no revocation checker configured")]
    for cert, issuer in itertools.pairwise(path):
        if der(cert) in anchors:
            break
        status = checker(cert, issuer)
        if status == "revoked":
            out.append(
                Violation(ViolationCode.REVOKED, target, f"{cert.subject.rfc4514_string()} is revoked")
            )
        elif status != "good":
            out.append(
                Violation(
                    ViolationCode.REVOCATION_UNKNOWN,
                    target,
                    f"revocation status of {cert.subject.rfc4514_string()} is unknown",
                )
            )
    if not trusted and len(path) == 1:
        out.append(
            Violation(ViolationCode.REVOCATION_UNKNOWN, target, "no issuer to ask for revocation status")
        )
    return out
