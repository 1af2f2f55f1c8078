"""Compact JWS (RFC 7515) signed by an eID key and carrying its certificate chain in ``x5c``.

The eHealth protocol signs some requests with the citizen's eID (GetActorQualities and
GetCertificateInfoForCitizen with the Authentication key, GenerateCertificate and Revoke with the
Signature key). Here such a request is a compact JWS whose protected header is::

    {"alg": "RS256" | "ES256" | "ES384", "typ": "ehcerts+jws", "x5c": [b64 DER leaf, intermediates...]}

The verifier is deliberately narrow, because JOSE's flexibility is where its attacks live:

* the header may hold exactly ``alg``, ``typ`` and ``x5c``; ``jwk``, ``jku``, ``x5u``, ``kid``,
  ``crit`` and anything else are refused, so a token can never name its own trust anchor or key URL;
* ``alg`` must be the one algorithm that matches the key type of ``x5c[0]`` (no ``none``, no HMAC,
  no RSA/EC confusion);
* base64url segments must be canonical (no padding, no stray characters, zero trailing bits), so one
  signature has exactly one encoding; JSON objects with duplicate names are refused;
* the token is capped at ``MAX_TOKEN_BYTES``.

``verify_jws`` proves only that ``x5c[0]``'s key signed the token. Trust (which CA issued that
certificate, whether it is valid now, whose it is) is the caller's decision; see
``ehealth_certs.identity.eid``.

Signing goes through a callback so that a smart card (PKCS#11) can sign without ever exposing its
key: the callback receives the JWS signing input and must hash it itself with the algorithm's hash
(``hash_for_public_key``) and return the raw signature: PKCS#1 v1.5 bytes for RSA, DER-encoded
ECDSA for EC (as PKCS#11 ``CKM_ECDSA`` wrappers and ``cryptography`` return it); this module turns
the latter into the JOSE ``r||s`` form.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ehealth_certs.errors import DomainError, ErrorKind

JWS_TYPE = "ehcerts+jws"
MAX_TOKEN_BYTES = 1024 * 1024
# A leaf plus a few intermediates is all an eID chain ever needs; more is a resource attack.
MAX_CHAIN_LENGTH = 5
# Real eID RSA keys are 2048 bits; 1024-bit cards (before 2014) have all expired.
MIN_RSA_BITS = 2048

_ALLOWED_HEADER_NAMES = frozenset({"alg", "typ", "x5c"})
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_B64STD = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_EC_CURVES: dict[str, tuple[str, hashes.HashAlgorithm, int]] = {
    # curve name -> (JOSE alg, hash, coordinate size in bytes)
    "secp256r1": ("ES256", hashes.SHA256(), 32),
    "secp384r1": ("ES384", hashes.SHA384(), 48),
}


@dataclass(frozen=True)
class JwsParts:
    """A JWS whose signature verified with the key of ``chain[0]``."""

    header: dict[str, Any]
    payload: bytes
    chain: list[x509.Certificate]


def jws_algorithm_for(public_key: object) -> str:
    """The only JOSE ``alg`` accepted for this key type (``DomainError(BAD_SIGNATURE)`` otherwise)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise DomainError(
                ErrorKind.BAD_SIGNATURE, f"RSA key of {public_key.key_size} bits is below {MIN_RSA_BITS}"
            )
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _ec_params(public_key)[0]
    raise DomainError(ErrorKind.BAD_SIGNATURE, f"unsupported key type {type(public_key).__name__}")


def hash_for_public_key(public_key: object) -> hashes.HashAlgorithm:
    """The hash a signing callback must use for this key (SHA-256, or SHA-384 for P-384)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return _ec_params(public_key)[1]
    jws_algorithm_for(public_key)
    return hashes.SHA256()


def sign_jws(payload: bytes, *, chain: Sequence[x509.Certificate], sign: Callable[[bytes], bytes]) -> str:
    """Sign ``payload`` with the key behind ``chain[0]`` through ``sign`` and return a compact JWS.

    The produced signature is verified before it is returned, so a card whose key does not match the
    certificate (wrong slot, replaced card) fails here rather than at the server.
    """
    if not chain:
        raise DomainError(ErrorKind.BAD_REQUEST, "a JWS needs at least the signer's certificate in x5c")
    if len(chain) > MAX_CHAIN_LENGTH:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"x5c holds {len(chain)} certificates, at most {MAX_CHAIN_LENGTH}"
        )
    leaf_key = chain[0].public_key()
    alg = jws_algorithm_for(leaf_key)
    header = {
        "alg": alg,
        "typ": JWS_TYPE,
        "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in chain],
    }
    header_json = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("ascii")
    signing_input = _b64url_encode(header_json) + "." + _b64url_encode(payload)
    raw = sign(signing_input.encode("ascii"))
    if isinstance(leaf_key, ec.EllipticCurvePublicKey):
        raw = _der_to_jose(raw, _ec_params(leaf_key)[2])
    try:
        _verify_signature(leaf_key, alg, raw, signing_input.encode("ascii"))
    except DomainError as exc:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, "the signature does not verify with the certificate's key (wrong key?)"
        ) from exc
    token = signing_input + "." + _b64url_encode(raw)
    if len(token) > MAX_TOKEN_BYTES:
        raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"the JWS exceeds {MAX_TOKEN_BYTES} bytes")
    return token


def verify_jws(token: str) -> JwsParts:
    """Check the token's form and its signature with ``x5c[0]``'s key. No trust decision is made.

    ``DomainError(PAYLOAD_TOO_LARGE)`` for an oversized token, ``DomainError(BAD_SIGNATURE)`` for
    anything else that is wrong or malformed.
    """
    if not isinstance(token, str):
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the JWS must be a string")
    if len(token) > MAX_TOKEN_BYTES:
        raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"the JWS exceeds {MAX_TOKEN_BYTES} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "a compact JWS has exactly three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts
    header = _parse_header(_b64url_decode(header_b64, "header"))
    payload = _b64url_decode(payload_b64, "payload")
    signature = _b64url_decode(signature_b64, "signature")
    chain = _parse_x5c(header["x5c"])
    leaf_key = chain[0].public_key()
    expected_alg = jws_algorithm_for(leaf_key)
    if header["alg"] != expected_alg:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE,
            f"alg {header['alg']!r} does not match the x5c key type (expected {expected_alg})",
        )
    _verify_signature(leaf_key, expected_alg, signature, f"{header_b64}.{payload_b64}".encode("ascii"))
    return JwsParts(header=header, payload=payload, chain=chain)


def loads_strict_json(data: bytes, what: str) -> Any:
    """Parse JSON refusing duplicate names and NaN/Infinity (``DomainError(BAD_REQUEST)``)."""
    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"the {what} is not valid JSON: {exc}") from exc


# -- helpers --------------------------------------------------------------------------------------
def _ec_params(public_key: ec.EllipticCurvePublicKey) -> tuple[str, hashes.HashAlgorithm, int]:
    params = _EC_CURVES.get(public_key.curve.name)
    if params is None:
        raise DomainError(ErrorKind.BAD_SIGNATURE, f"unsupported EC curve {public_key.curve.name}")
    return params


def _parse_header(raw: bytes) -> dict[str, Any]:
    try:
        header = loads_strict_json(raw, "JWS header")
    except DomainError as exc:
        raise DomainError(ErrorKind.BAD_SIGNATURE, exc.detail) from exc
    if not isinstance(header, dict):
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the JWS header is not a JSON object")
    unexpected = sorted(set(header) - _ALLOWED_HEADER_NAMES)
    if unexpected:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"JWS header parameters not accepted: {', '.join(unexpected)}"
        )
    if header.get("typ") != JWS_TYPE:
        raise DomainError(ErrorKind.BAD_SIGNATURE, f"JWS typ must be {JWS_TYPE!r}")
    if not isinstance(header.get("alg"), str):
        raise DomainError(ErrorKind.BAD_SIGNATURE, "JWS header has no alg")
    if "x5c" not in header:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "JWS header has no x5c certificate chain")
    return header


def _parse_x5c(x5c: Any) -> list[x509.Certificate]:
    if not isinstance(x5c, list) or not x5c:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "x5c must be a non-empty array")
    if len(x5c) > MAX_CHAIN_LENGTH:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE, f"x5c holds {len(x5c)} certificates, at most {MAX_CHAIN_LENGTH}"
        )
    chain = []
    for index, entry in enumerate(x5c):
        # RFC 7515 §4.1.6: standard base64 (not base64url) of the DER certificate.
        if not isinstance(entry, str) or not _B64STD.fullmatch(entry):
            raise DomainError(ErrorKind.BAD_SIGNATURE, f"x5c[{index}] is not base64")
        try:
            der = base64.b64decode(entry, validate=True)
            # RFC 5280 §4.1.2.2: refuse a non-positive serial ourselves (cryptography still parses one,
            # with a deprecation warning, and will raise in a future release)
            if asn1_x509.Certificate.load(der)["tbs_certificate"]["serial_number"].native <= 0:
                raise DomainError(
                    ErrorKind.BAD_SIGNATURE, f"x5c[{index}] has a serial number that is not positive"
                )
            cert = x509.load_der_x509_certificate(der)
            # cryptography parses these lazily; touch them now so that callers never meet a raw
            # ValueError from a malformed key, name or extension later on.
            cert.public_key()
            _ = cert.subject, cert.issuer, cert.extensions, cert.signature_hash_algorithm
        except (binascii.Error, ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
            raise DomainError(ErrorKind.BAD_SIGNATURE, f"x5c[{index}] is not a usable certificate") from exc
        chain.append(cert)
    return chain


def _verify_signature(public_key: object, alg: str, signature: bytes, signing_input: bytes) -> None:
    try:
        if alg == "RS256" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return
        if alg in ("ES256", "ES384") and isinstance(public_key, ec.EllipticCurvePublicKey):
            _, hash_algorithm, size = _ec_params(public_key)
            if len(signature) != 2 * size:
                raise InvalidSignature
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            public_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hash_algorithm))
            return
    except InvalidSignature as exc:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the JWS signature does not verify") from exc
    raise DomainError(ErrorKind.BAD_SIGNATURE, f"alg {alg!r} is not accepted for this key")


def _der_to_jose(der: bytes, size: int) -> bytes:
    try:
        r, s = decode_dss_signature(der)
    except ValueError as exc:
        raise DomainError(ErrorKind.BAD_SIGNATURE, "the card returned a malformed ECDSA signature") from exc
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str, what: str) -> bytes:
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise DomainError(ErrorKind.BAD_SIGNATURE, f"the JWS {what} is not unpadded base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url_encode(data) != text:
        raise DomainError(ErrorKind.BAD_SIGNATURE, f"the JWS {what} is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate name {name!r}")
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# -- the signed-request envelope ------------------------------------------------------------------------
_REQUEST_ID = re.compile(r"_[A-Za-z0-9-]{8,64}")
_ISSUE_INSTANT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
_PAYLOAD_NAMES = frozenset({"id", "issueInstant", "body"})


def parse_signed_payload(payload: bytes) -> tuple[str, datetime, dict[str, Any]]:
    """(request id, issueInstant, body) of a verified JWS payload; BAD_REQUEST for any other shape."""
    document = loads_strict_json(payload, "signed request")
    if not isinstance(document, dict) or set(document) != _PAYLOAD_NAMES:
        raise DomainError(
            ErrorKind.BAD_REQUEST, "a signed request is an object with exactly id, issueInstant and body"
        )
    request_id, instant, body = document["id"], document["issueInstant"], document["body"]
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise DomainError(ErrorKind.BAD_REQUEST, "the signed request id must be '_' + 8 to 64 [A-Za-z0-9-]")
    if not isinstance(instant, str) or not _ISSUE_INSTANT.fullmatch(instant):
        raise DomainError(ErrorKind.BAD_REQUEST, "issueInstant must be an ISO 8601 UTC time ending in Z")
    try:
        issue_instant = datetime.fromisoformat(instant).astimezone(UTC)
    except ValueError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"issueInstant {instant!r} is not a valid time") from exc
    if not isinstance(body, dict):
        raise DomainError(ErrorKind.BAD_REQUEST, "the signed request body must be a JSON object")
    return request_id, issue_instant, body


def signed_envelope(body: Mapping[str, Any], *, now: datetime) -> bytes:
    """The payload of a signed request: ``{"body", "id": "_<uuid4>", "issueInstant": "...Z"}`` as compact JSON
    with sorted keys. ``id`` lets the server refuse replays; ``issueInstant`` bounds the request's age."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    envelope = {
        "id": "_" + str(uuid.uuid4()),
        "issueInstant": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "body": dict(body),
    }
    try:
        return json.dumps(envelope, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, f"the request body is not JSON-serialisable: {exc}") from exc
