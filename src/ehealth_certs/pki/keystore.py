"""The eHealth keystore: a multi-key PKCS#12 file (reference §9).

Layout: a private-key entry ``authentication`` with its chain, one private-key entry per ETK encryption key
named by the decimal serial of the ETK encryption certificate (chain = that certificate only), and the CA
certificates as trusted-certificate entries named by their RFC 2253 DN. One password protects the store
(the MAC) and every key.

Written profile (chosen so that Java 17 ``keytool -list -storetype PKCS12`` and OpenSSL 3 ``openssl pkcs12``
both open the file without ``-legacy``):

* shrouded key bags ``pbeWithSHA1And3-KeyTripleDES-CBC``, 2048 iterations;
* certificate bags in one EncryptedData, ``pbeWithSHA1And3-KeyTripleDES-CBC`` by default (OpenSSL 3 reads
  RC2-40 only with ``-legacy``); ``cert_cipher="rc2-40"`` writes the historical BouncyCastle profile;
* MAC HMAC-SHA1, 20-byte salt, 2048 iterations;
* trusted certificates carry Java's ``trustedKeyUsage`` attribute (anyExtendedKeyUsage): without it Java
  lists no ``trustedCertEntry``.

pyca/cryptography returns only one key per PKCS#12 file and cannot decrypt RC2-40 bags through its public
API, so the PBE (RFC 7292 appendix B key derivation, 3DES-CBC and RC2-CBC with 40 effective key bits) is
done here. The reader is asn1crypto based and accepts BER (indefinite lengths, chunked OCTET STRINGs).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from asn1crypto import algos, cms, keys, pkcs12
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.cms import certificate_signature_valid

AUTHENTICATION_ALIAS = "authentication"
DEFAULT_ITERATIONS = 2048
CertCipher = Literal["3des", "rc2-40"]

_TRUSTED_ANY_EKU = "2.5.29.37.0"


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------


@dataclass
class KeyEntry:
    alias: str
    private_key: rsa.RSAPrivateKey
    chain: list[x509.Certificate]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


@dataclass
class Keystore:
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    trusted: dict[str, x509.Certificate] = field(default_factory=dict)

    def key(self, alias: str) -> KeyEntry:
        """The key entry named ``alias``, compared case-insensitively (the fixtures spell it both ways)."""
        wanted = alias.casefold()
        for name, entry in self.keys.items():
            if name.casefold() == wanted:
                return entry
        raise DomainError(ErrorKind.NOT_FOUND, f"the keystore has no key entry named {alias!r}")

    def authentication(self) -> KeyEntry:
        return self.key(AUTHENTICATION_ALIAS)

    def decryption_keys(self) -> dict[str, KeyEntry]:
        """Every key entry whose certificate allows keyEncipherment and dataEncipherment (§9.2)."""
        return {alias: entry for alias, entry in self.keys.items() if _is_encryption_cert(entry.certificate)}

    def add_encryption_key(self, private_key: rsa.RSAPrivateKey, certificate: x509.Certificate) -> KeyEntry:
        """Store a new ETK encryption key under the decimal serial of its certificate; old ones stay."""
        entry = KeyEntry(str(certificate.serial_number), private_key, [certificate])
        self.keys[entry.alias] = entry
        return entry

    def add_trusted(self, certificate: x509.Certificate) -> str:
        alias = certificate.subject.rfc4514_string()
        self.trusted[alias] = certificate
        return alias


def _is_encryption_cert(cert: x509.Certificate) -> bool:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(ku.key_encipherment and ku.data_encipherment)


# ---------------------------------------------------------------------------------------------------
# PKCS#12 PBE (RFC 7292 appendix B, SHA-1)
# ---------------------------------------------------------------------------------------------------

_ID_KEY, _ID_IV, _ID_MAC = 1, 2, 3


def _bmp_password(password: str) -> bytes:
    return password.encode("utf-16-be") + b"\x00\x00"


def pkcs12_kdf(password: bytes, salt: bytes, purpose: int, iterations: int, length: int) -> bytes:
    """RFC 7292 B.2 with SHA-1 (u = 20, v = 64); ``password`` is the BMPString bytes with the terminator."""
    u, v = 20, 64

    def stretch(data: bytes) -> bytes:
        if not data:
            return b""
        n = v * ((len(data) + v - 1) // v)
        return (data * (n // len(data) + 1))[:n]

    d = bytes([purpose]) * v
    i_block = bytearray(stretch(salt) + stretch(password))
    out = b""
    while len(out) < length:
        a = hashlib.sha1(d + bytes(i_block), usedforsecurity=False).digest()
        for _ in range(iterations - 1):
            a = hashlib.sha1(a, usedforsecurity=False).digest()
        out += a
        if len(out) >= length:
            break
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        for j in range(0, len(i_block), v):
            chunk = (int.from_bytes(i_block[j : j + v], "big") + b + 1) % (1 << (8 * v))
            i_block[j : j + v] = chunk.to_bytes(v, "big")
    return out[:length]


# RFC 2268 section 2: the PITABLE permutation (public constant of the RC2 specification).
_PITABLE = bytes.fromhex(
    "d978f9c419ddb5ed28e9fd794aa0d89dc67e37832b76538e624c6488448bfba2179a59f587b34f1361456d8d09817d32"
    "bd8f40eb86b77b0bf09521225c6b4e8254d66593ce60b21c7356c014a78cf1dc1275ca1f3bbee4d1423dd430a33cb626"
    "6fbf0eda4669075727f21d9bbc944303f811c7f690ef3ee706c3d52fc8661ed708e8eade8052eef784aa72ac354d6a2a"
    "961ad2715a1549744b9fd05e0418a4ecc2e0416e0f51cbcc2491af50a1f47039997c3a8523b8b47afc02365b25559731"
    "2d5dfa98e38a92ae05df2910676cbac9d300e6cfe19ea82c6316013f58e289a90d38341bab33ffb0bb480c5fb9b1cd2e"
    "c5f3db47e5a59c770aa62068fe7fc1ad"
)


def _rc2_expand(key: bytes, effective_bits: int) -> list[int]:
    t = len(key)
    l_buf = bytearray(key) + bytearray(128 - t)
    for i in range(t, 128):
        l_buf[i] = _PITABLE[(l_buf[i - 1] + l_buf[i - t]) & 0xFF]
    t8 = (effective_bits + 7) // 8
    tm = 0xFF % (1 << (8 + effective_bits - 8 * t8))
    l_buf[128 - t8] = _PITABLE[l_buf[128 - t8] & tm]
    for i in range(127 - t8, -1, -1):
        l_buf[i] = _PITABLE[l_buf[i + 1] ^ l_buf[i + t8]]
    return [l_buf[2 * i] | (l_buf[2 * i + 1] << 8) for i in range(64)]


_RC2_SHIFTS = (1, 2, 3, 5)
_M16 = 0xFFFF


def _rc2_encrypt_block(k: list[int], block: bytes) -> bytes:
    r = [int.from_bytes(block[2 * i : 2 * i + 2], "little") for i in range(4)]
    j = 0
    for rnd in range(16):
        for i in range(4):
            r[i] = (r[i] + k[j] + (r[i - 1] & r[i - 2]) + (~r[i - 1] & r[i - 3])) & _M16
            j += 1
            s = _RC2_SHIFTS[i]
            r[i] = ((r[i] << s) | (r[i] >> (16 - s))) & _M16
        if rnd in (4, 10):
            for i in range(4):
                r[i] = (r[i] + k[r[i - 1] & 63]) & _M16
    return b"".join(x.to_bytes(2, "little") for x in r)


def _rc2_decrypt_block(k: list[int], block: bytes) -> bytes:
    r = [int.from_bytes(block[2 * i : 2 * i + 2], "little") for i in range(4)]
    j = 63
    for rnd in range(16):
        for i in (3, 2, 1, 0):
            s = _RC2_SHIFTS[i]
            r[i] = ((r[i] >> s) | (r[i] << (16 - s))) & _M16
            r[i] = (r[i] - k[j] - (r[i - 1] & r[i - 2]) - (~r[i - 1] & r[i - 3])) & _M16
            j -= 1
        if rnd in (4, 10):
            for i in (3, 2, 1, 0):
                r[i] = (r[i] - k[r[i - 1] & 63]) & _M16
    return b"".join(x.to_bytes(2, "little") for x in r)


def rc2_cbc(key: bytes, effective_bits: int, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    """RC2-CBC without padding (RFC 2268); pyca/cryptography supports only 128-bit RC2 keys."""
    if len(data) % 8:
        raise DomainError(ErrorKind.BAD_REQUEST, "RC2 data is not a multiple of the block size")
    k = _rc2_expand(key, effective_bits)
    out = bytearray()
    prev = iv
    for off in range(0, len(data), 8):
        block = data[off : off + 8]
        if encrypt:
            prev = _rc2_encrypt_block(k, bytes(a ^ b for a, b in zip(block, prev, strict=True)))
            out += prev
        else:
            out += bytes(a ^ b for a, b in zip(_rc2_decrypt_block(k, block), prev, strict=True))
            prev = block
    return bytes(out)


_PBE_3DES = "pkcs12_sha1_tripledes_3key"
_PBE_RC2_40 = "pkcs12_sha1_rc2_40"
_PBE_SHAPES: dict[str, tuple[int, int]] = {_PBE_3DES: (24, 8), _PBE_RC2_40: (5, 8)}


def _pbe_crypt(algorithm: Any, password: str, data: bytes, *, encrypt: bool) -> bytes:
    name = algorithm["algorithm"].native
    if name not in _PBE_SHAPES:
        raise DomainError(ErrorKind.BAD_REQUEST, f"unsupported PKCS#12 encryption algorithm {name}")
    params = algorithm["parameters"]
    salt, iterations = params["salt"].native, params["iterations"].native
    key_len, iv_len = _PBE_SHAPES[name]
    pwd = _bmp_password(password)
    key = pkcs12_kdf(pwd, salt, _ID_KEY, iterations, key_len)
    iv = pkcs12_kdf(pwd, salt, _ID_IV, iterations, iv_len)
    if encrypt:
        padder = padding.PKCS7(64).padder()
        data = padder.update(data) + padder.finalize()
    if name == _PBE_RC2_40:
        out = rc2_cbc(key, 40, iv, data, encrypt=encrypt)
    else:
        ctx = Cipher(TripleDES(key), modes.CBC(iv))
        op = ctx.encryptor() if encrypt else ctx.decryptor()
        if len(data) % 8:
            raise DomainError(ErrorKind.UNAUTHENTICATED, "keystore content cannot be decrypted")
        out = op.update(data) + op.finalize()
    if encrypt:
        return out
    try:
        unpadder = padding.PKCS7(64).unpadder()
        return unpadder.update(out) + unpadder.finalize()
    except ValueError as exc:
        raise DomainError(
            ErrorKind.UNAUTHENTICATED, "keystore content cannot be decrypted: wrong password?"
        ) from exc


def _pbe_algorithm(name: str, iterations: int) -> Any:
    return algos.EncryptionAlgorithm(
        {"algorithm": name, "parameters": {"salt": secrets.token_bytes(20), "iterations": iterations}}
    )


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


def _octets(value: Any) -> bytes:
    """Content of a (possibly chunked, BER) OCTET STRING."""
    native = value.native
    if isinstance(native, bytes):
        return native
    parsed = value.parsed
    return bytes(parsed.dump())


def _attrs(bag: Any) -> tuple[str | None, bytes | None, bool]:
    friendly: str | None = None
    local_id: bytes | None = None
    trusted = False
    attributes = bag["bag_attributes"]
    if attributes.native is None:
        return None, None, False
    for attr in attributes:
        kind = attr["type"].native
        values = attr["values"]
        if not len(values):
            continue
        if kind == "friendly_name":
            friendly = values[0].native
        elif kind == "local_key_id":
            local_id = values[0].native
        elif kind == "trusted_key_usage":
            trusted = True
    return friendly, local_id, trusted


def _malformed(detail: str) -> DomainError:
    return DomainError(ErrorKind.BAD_REQUEST, f"not a readable PKCS#12 keystore: {detail}")


def _verify_mac(pfx: Any, password: str, auth_safe_octets: bytes) -> None:
    mac_data = pfx["mac_data"]
    if mac_data.native is None:
        raise _malformed("no MAC (an eHealth keystore is password-integrity protected)")
    digest_name = mac_data["mac"]["digest_algorithm"]["algorithm"].native
    hash_by_name = {"sha1": (hashlib.sha1, 20), "sha256": (hashlib.sha256, 32)}
    if digest_name not in hash_by_name:
        raise _malformed(f"unsupported MAC digest {digest_name}")
    digestmod, size = hash_by_name[digest_name]
    if digest_name != "sha1":
        raise _malformed("only HMAC-SHA1 MACs (RFC 7292 KDF with SHA-1) are supported")
    key = pkcs12_kdf(
        _bmp_password(password), mac_data["mac_salt"].native, _ID_MAC, mac_data["iterations"].native, size
    )
    expected = hmac.new(key, auth_safe_octets, digestmod).digest()
    if not hmac.compare_digest(expected, mac_data["mac"]["digest"].native):
        raise DomainError(ErrorKind.UNAUTHENTICATED, "keystore password is wrong (MAC check failed)")


def _load_cert(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        # BER-encoded certificate (seen in old BouncyCastle stores): re-encode the parsed structure.
        try:
            return x509.load_der_x509_certificate(asn1_x509.Certificate.load(der).untag().dump(force=True))
        except ValueError as exc:
            raise _malformed("a certificate bag does not hold an X.509 certificate") from exc


def _load_key(der: bytes) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_der_private_key(der, None)
    except ValueError:
        try:
            key = serialization.load_der_private_key(keys.PrivateKeyInfo.load(der).dump(force=True), None)
        except ValueError as exc:
            raise _malformed("a key bag does not hold a PKCS#8 private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _malformed("only RSA keys are supported in an eHealth keystore")
    return key


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer.public_bytes() != issuer.subject.public_bytes():
        return False
    # verify_directly_issued_by refuses the SHA-1 signatures of the fixtures' older chains.
    return certificate_signature_valid(cert, issuer.public_key())


def _build_chain(leaf: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    chain = [leaf]
    current = leaf
    while current.issuer.public_bytes() != current.subject.public_bytes() and len(chain) < 10:
        nxt = next((c for c in pool if c not in chain and _issued_by(current, c)), None)
        if nxt is None:
            break
        chain.append(nxt)
        current = nxt
    return chain


def load_keystore(data: bytes, password: str) -> Keystore:
    """Read an eHealth PKCS#12 keystore with all its key entries. Wrong password -> UNAUTHENTICATED."""
    try:
        pfx = pkcs12.Pfx.load(data)
        auth_safe = pfx["auth_safe"]
        if auth_safe["content_type"].native != "data":
            raise _malformed("public-key integrity mode is not supported")
        auth_octets = _octets(auth_safe["content"])
        _verify_mac(pfx, password, auth_octets)
        safe_bags: list[Any] = []
        for content_info in pkcs12.AuthenticatedSafe.load(auth_octets):
            ctype = content_info["content_type"].native
            if ctype == "data":
                safe_bags.extend(pkcs12.SafeContents.load(_octets(content_info["content"])))
            elif ctype == "encrypted_data":
                eci = content_info["content"]["encrypted_content_info"]
                plain = _pbe_crypt(
                    eci["content_encryption_algorithm"],
                    password,
                    _octets(eci["encrypted_content"]),
                    encrypt=False,
                )
                safe_bags.extend(pkcs12.SafeContents.load(plain))
            else:
                raise _malformed(f"unsupported safe content type {ctype}")
        return _entries_from_bags(safe_bags, password)
    except DomainError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise _malformed(type(exc).__name__) from exc


def _entries_from_bags(safe_bags: list[Any], password: str) -> Keystore:
    key_bags: list[tuple[str | None, bytes | None, rsa.RSAPrivateKey]] = []
    certs: list[tuple[str | None, bytes | None, bool, x509.Certificate]] = []
    for bag in safe_bags:
        bag_id = bag["bag_id"].native
        friendly, local_id, trusted = _attrs(bag)
        if bag_id == "pkcs8_shrouded_key_bag":
            epki = bag["bag_value"]
            plain = _pbe_crypt(
                epki["encryption_algorithm"], password, epki["encrypted_data"].native, encrypt=False
            )
            key_bags.append((friendly, local_id, _load_key(plain)))
        elif bag_id == "key_bag":
            key_bags.append((friendly, local_id, _load_key(bag["bag_value"].dump())))
        elif bag_id == "cert_bag" and bag["bag_value"]["cert_id"].native == "x509":
            cert_der = bag["bag_value"]["cert_value"].parsed.dump()
            certs.append((friendly, local_id, trusted, _load_cert(cert_der)))
    pool = [c for *_, c in certs]
    store = Keystore()
    for friendly, local_id, key in key_bags:
        leaf = _leaf_for_key(key, local_id, certs)
        alias = friendly or (
            str(leaf.serial_number) if _is_encryption_cert(leaf) else leaf.subject.rfc4514_string()
        )
        store.keys[alias] = KeyEntry(alias, key, _build_chain(leaf, pool))
    for friendly, local_id, trusted, cert in certs:
        # Java marks trusted entries with trustedKeyUsage; BouncyCastle writes a friendly name and no key id.
        if local_id is None and (friendly is not None or trusted):
            store.trusted[friendly or cert.subject.rfc4514_string()] = cert
    return store


def _leaf_for_key(
    key: rsa.RSAPrivateKey,
    local_id: bytes | None,
    certs: list[tuple[str | None, bytes | None, bool, x509.Certificate]],
) -> x509.Certificate:
    public = key.public_key().public_numbers()

    def matches(cert: x509.Certificate) -> bool:
        pub = cert.public_key()
        return isinstance(pub, rsa.RSAPublicKey) and pub.public_numbers() == public

    if local_id is not None:
        for _, cert_id, _, cert in certs:
            if cert_id == local_id and matches(cert):
                return cert
    for *_, cert in certs:
        if matches(cert):
            return cert
    raise _malformed("a private key has no matching certificate")


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


def _attributes(friendly: str | None, local_id: bytes | None, trusted: bool) -> Any:
    attrs: list[dict[str, Any]] = []
    if friendly is not None:
        attrs.append({"type": "friendly_name", "values": [friendly]})
    if local_id is not None:
        attrs.append({"type": "local_key_id", "values": [local_id]})
    if trusted:
        attrs.append({"type": "trusted_key_usage", "values": [_TRUSTED_ANY_EKU]})
    return pkcs12.Attributes(attrs)


def _cert_bag(cert: x509.Certificate, friendly: str | None, local_id: bytes | None, trusted: bool) -> Any:
    bag_value = pkcs12.CertBag(
        {
            "cert_id": "x509",
            "cert_value": asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        }
    )
    bag: dict[str, Any] = {"bag_id": "cert_bag", "bag_value": bag_value}
    if friendly is not None or local_id is not None or trusted:
        bag["bag_attributes"] = _attributes(friendly, local_id, trusted)
    return pkcs12.SafeBag(bag)


def dump_keystore(
    ks: Keystore, password: str, *, iterations: int = DEFAULT_ITERATIONS, cert_cipher: CertCipher = "3des"
) -> bytes:
    """Encode ``ks`` with the legacy eHealth profile described in the module docstring."""
    if iterations < 1024:
        raise DomainError(ErrorKind.BAD_REQUEST, "keystore PBE iterations must be at least 1024")
    seen: set[str] = set()
    for alias in [*ks.keys, *ks.trusted]:
        folded = alias.casefold()
        if not alias or folded in seen:
            raise DomainError(ErrorKind.BAD_REQUEST, f"duplicate or empty keystore alias {alias!r}")
        seen.add(folded)

    key_bags: list[Any] = []
    cert_bags: list[Any] = []
    written: set[bytes] = set()
    trusted_ders = {c.public_bytes(serialization.Encoding.DER) for c in ks.trusted.values()}
    for index, (alias, entry) in enumerate(ks.keys.items(), start=1):
        if not entry.chain:
            raise DomainError(ErrorKind.BAD_REQUEST, f"key entry {alias!r} has no certificate")
        if not _same_key(entry.private_key, entry.chain[0]):
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"key entry {alias!r}: certificate does not match the key"
            )
        local_id = hashlib.sha1(  # Java and OpenSSL only compare it; SHA-1 of the leaf is the usual choice
            entry.chain[0].public_bytes(serialization.Encoding.DER) + index.to_bytes(2, "big"),
            usedforsecurity=False,
        ).digest()
        pkcs8 = entry.private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        algo = _pbe_algorithm(_PBE_3DES, iterations)
        epki = keys.EncryptedPrivateKeyInfo(
            {"encryption_algorithm": algo, "encrypted_data": _pbe_crypt(algo, password, pkcs8, encrypt=True)}
        )
        key_bags.append(
            pkcs12.SafeBag(
                {
                    "bag_id": "pkcs8_shrouded_key_bag",
                    "bag_value": epki,
                    "bag_attributes": _attributes(alias, local_id, False),
                }
            )
        )
        cert_bags.append(_cert_bag(entry.chain[0], alias, local_id, False))
        for ca in entry.chain[1:]:
            der = ca.public_bytes(serialization.Encoding.DER)
            if der not in written and der not in trusted_ders:
                written.add(der)
                cert_bags.append(_cert_bag(ca, None, None, False))
    for alias, cert in ks.trusted.items():
        cert_bags.append(_cert_bag(cert, alias, None, True))

    cert_algo = _pbe_algorithm(_PBE_3DES if cert_cipher == "3des" else _PBE_RC2_40, iterations)
    cert_plain = pkcs12.SafeContents(cert_bags).dump()
    encrypted_certs = cms.ContentInfo(
        {
            "content_type": "encrypted_data",
            "content": cms.EncryptedData(
                {
                    "version": "v0",
                    "encrypted_content_info": {
                        "content_type": "data",
                        "content_encryption_algorithm": cert_algo,
                        "encrypted_content": _pbe_crypt(cert_algo, password, cert_plain, encrypt=True),
                    },
                }
            ),
        }
    )
    keys_info = cms.ContentInfo({"content_type": "data", "content": pkcs12.SafeContents(key_bags).dump()})
    auth_octets = pkcs12.AuthenticatedSafe([keys_info, encrypted_certs]).dump()
    mac_salt = secrets.token_bytes(20)
    mac_key = pkcs12_kdf(_bmp_password(password), mac_salt, _ID_MAC, iterations, 20)
    pfx = pkcs12.Pfx(
        {
            "version": "v3",
            "auth_safe": {"content_type": "data", "content": auth_octets},
            "mac_data": {
                "mac": {
                    "digest_algorithm": {"algorithm": "sha1"},
                    "digest": hmac.new(mac_key, auth_octets, hashlib.sha1).digest(),
                },
                "mac_salt": mac_salt,
                "iterations": iterations,
            },
        }
    )
    return bytes(pfx.dump())


def _same_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    pub = cert.public_key()
    return isinstance(pub, rsa.RSAPublicKey) and pub.public_numbers() == key.public_key().public_numbers()


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------


def keystore_filename(stem: str, at: datetime) -> str:
    """``<stem> yyyyMMdd-HHmmss.p12`` as eHealth tools name keystores (``SSIN=… 20200101-120000.p12``)."""
    if not stem or any(sep in stem for sep in ("/", "\\", "\x00")) or stem in (".", ".."):
        raise DomainError(ErrorKind.BAD_REQUEST, f"keystore name stem {stem!r} is not a plain file name")
    return f"{stem} {at:%Y%m%d-%H%M%S}.p12"


def _atomic_write(path: Path, data: bytes) -> None:
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # The rename is durable only once the directory entry is on disk.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save_keystore(path: Path, ks: Keystore, password: str) -> None:
    """Write atomically: temp file in the same folder (0600), fsync, rename; the old file survives errors."""
    _atomic_write(path, dump_keystore(ks, password))


def change_password(path: Path, old: str, new: str) -> None:
    """Re-encrypt the keystore under ``new``; a wrong ``old`` or a failed write leaves the file intact."""
    if not new:
        raise DomainError(ErrorKind.BAD_REQUEST, "the new keystore password is empty")
    ks = load_keystore(path.read_bytes(), old)
    save_keystore(path, ks, new)
