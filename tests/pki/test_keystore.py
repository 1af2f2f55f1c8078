"""The eHealth keystore: reading the four real fixtures, writing a store that Java keytool and OpenSSL
open, two key generations, atomic save and password change."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12 as crypto_pkcs12

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import keystore as ks_mod
from ehealth_certs.pki.keystore import (
    Keystore,
    change_password,
    dump_keystore,
    keystore_filename,
    load_keystore,
    pkcs12_kdf,
    rc2_cbc,
    save_keystore,
)
from tests.pki.etee_pki import (
    KEYTOOL,
    NOW,
    OPENSSL,
    PASSWORD,
    encryption_ku,
    fixture_bytes,
    fixture_keystore,
    issue,
    rsa_key,
)

# alias of the auth key, encryption aliases, number of certificates in the auth chain
FIXTURE_STORES = {
    "bob/bobs_private_key_store.p12": ("authentication", {"825373489"}, 2),
    "alice/alices_private_key_store.p12": ("Authentication", {"1204544406096826217265"}, 2),
    "bob/old_bobs_private_key_store.p12": ("Authentication", {"232784750872845143225881750226911779648"}, 3),
    "alice/old_alices_private_key_store.p12": (
        "Authentication",
        {"171067099608080442151819076243110023590"},
        3,
    ),
}


# RFC 2268 section 5 test vectors: (key, effective bits, plaintext, ciphertext)
RC2_VECTORS = [
    ("0000000000000000", 63, "0000000000000000", "ebb773f993278eff"),
    ("ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"),
    ("3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"),
    ("88", 64, "0000000000000000", "61a8a244adacccf0"),
    ("88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"),
    ("88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"),
    ("88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"),
    (
        "88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e",
        129,
        "0000000000000000",
        "5b78d3a43dfff1f1",
    ),
]


@pytest.mark.parametrize(("key", "bits", "plain", "cipher"), RC2_VECTORS)
def test_rc2_matches_rfc2268_vectors(key: str, bits: int, plain: str, cipher: str) -> None:
    iv = bytes(8)  # one CBC block with a zero IV is the raw block cipher
    out = rc2_cbc(bytes.fromhex(key), bits, iv, bytes.fromhex(plain), encrypt=True)
    assert out.hex() == cipher
    assert rc2_cbc(bytes.fromhex(key), bits, iv, out, encrypt=False).hex() == plain


def test_pkcs12_kdf_is_deterministic_and_purpose_separated() -> None:
    pwd = "test".encode("utf-16-be") + b"\0\0"
    salt = bytes(range(20))
    k1 = pkcs12_kdf(pwd, salt, 1, 1024, 24)
    assert len(k1) == 24 and k1 == pkcs12_kdf(pwd, salt, 1, 1024, 24)
    assert k1[:8] != pkcs12_kdf(pwd, salt, 2, 1024, 8)
    assert pkcs12_kdf(pwd, salt, 1, 1024, 40)[:24] == k1  # longer output extends, never changes, the prefix


@pytest.mark.parametrize("rel", sorted(FIXTURE_STORES))
def test_reads_every_fixture_keystore_with_both_keys(rel: str) -> None:
    auth_alias, enc_aliases, chain_len = FIXTURE_STORES[rel]
    store = load_keystore(fixture_bytes(rel), PASSWORD)
    assert set(store.keys) == {auth_alias, *enc_aliases}
    auth = store.authentication()
    assert auth.alias == auth_alias  # found case-insensitively
    assert len(auth.chain) == chain_len
    assert auth.private_key.public_key().public_numbers() == auth.certificate.public_key().public_numbers()
    assert set(store.decryption_keys()) == enc_aliases
    for alias in enc_aliases:
        entry = store.keys[alias]
        assert str(entry.certificate.serial_number) == alias
        assert entry.chain == [entry.certificate]


@pytest.mark.filterwarnings("ignore:PKCS#12 bundle could not be parsed as DER")
def test_fixture_keys_agree_with_pyca_for_the_one_key_it_returns() -> None:
    data = fixture_bytes("bob/bobs_private_key_store.p12")
    theirs = crypto_pkcs12.load_pkcs12(data, PASSWORD.encode())
    ours = load_keystore(data, PASSWORD)
    assert theirs.key is not None
    numbers = {e.private_key.private_numbers() for e in ours.keys.values()}
    assert theirs.key.private_numbers() in numbers  # type: ignore[union-attr]


def test_trusted_certificates_are_named_by_dn() -> None:
    store = fixture_keystore("bob/bobs_private_key_store.p12")
    assert "CN=eH CA,OU=eHealth-platform Belgium,O=Federal Government,C=BE" in store.trusted


def test_wrong_password_is_unauthenticated() -> None:
    with pytest.raises(DomainError) as err:
        load_keystore(fixture_bytes("bob/bobs_private_key_store.p12"), "nope")
    assert err.value.kind is ErrorKind.UNAUTHENTICATED


@pytest.mark.parametrize("data", [b"", b"not a keystore", b"\x30\x03\x02\x01\x03"])
def test_garbage_is_bad_request(data: bytes) -> None:
    with pytest.raises(DomainError) as err:
        load_keystore(data, PASSWORD)
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_missing_authentication_alias_is_not_found() -> None:
    with pytest.raises(DomainError) as err:
        Keystore().authentication()
    assert err.value.kind is ErrorKind.NOT_FOUND


def _two_generation_store() -> Keystore:
    """Bob's real store plus a second (new) encryption key generation."""
    bob = load_keystore(fixture_bytes("bob/bobs_private_key_store.p12"), PASSWORD)
    new_key = rsa_key("bob-enc-2")
    auth_cert = bob.authentication().certificate
    # Self-issued by name (the proxy style), signed here by the key itself: enough for a store test.
    cert = issue(
        auth_cert.subject,
        new_key.public_key(),
        None,
        new_key,
        ca=False,
        ku=encryption_ku,
        serial=0x1234567890ABCDEF1234567890ABCDEF,
    )
    bob.add_encryption_key(new_key, cert)
    return bob


def test_round_trip_with_two_key_generations() -> None:
    store = _two_generation_store()
    data = dump_keystore(store, "n3w-pass")
    again = load_keystore(data, "n3w-pass")
    assert set(again.decryption_keys()) == {"825373489", str(0x1234567890ABCDEF1234567890ABCDEF)}
    assert set(again.trusted) == set(store.trusted)
    for alias, entry in store.keys.items():
        assert again.keys[alias].private_key.private_numbers() == entry.private_key.private_numbers()
        assert again.keys[alias].chain == entry.chain


def test_rc2_profile_round_trips() -> None:
    store = fixture_keystore("bob/bobs_private_key_store.p12")
    again = load_keystore(dump_keystore(store, "x", cert_cipher="rc2-40"), "x")
    assert set(again.keys) == set(store.keys)


def test_duplicate_alias_case_insensitive_is_refused() -> None:
    store = fixture_keystore("bob/bobs_private_key_store.p12")
    bad = Keystore(keys={**store.keys, "AUTHENTICATION": store.keys["authentication"]}, trusted={})
    with pytest.raises(DomainError) as err:
        dump_keystore(bad, "x")
    assert err.value.kind is ErrorKind.BAD_REQUEST


def _env(password: str) -> dict[str, str]:
    return {**os.environ, "KS_PASS": password}


@pytest.mark.interop
def test_keytool_lists_our_keystore(tmp_path: Path) -> None:
    path = tmp_path / "store.p12"
    save_keystore(path, _two_generation_store(), "keytool-pass")
    out = subprocess.run(
        [KEYTOOL, "-list", "-storetype", "PKCS12", "-keystore", str(path), "-storepass:env", "KS_PASS"],
        env=_env("keytool-pass"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    # "alias, Nov 30, 2026, PrivateKeyEntry, " -- DN aliases contain commas, the date does too
    entries = {line.rsplit(", ", 4)[0]: line for line in out.splitlines() if "Entry, " in line}
    assert "PrivateKeyEntry" in entries["authentication"]
    assert "PrivateKeyEntry" in entries["825373489"]
    assert "PrivateKeyEntry" in entries[str(0x1234567890ABCDEF1234567890ABCDEF)]
    # keytool lower-cases aliases
    assert "trustedCertEntry" in entries["cn=eh ca,ou=ehealth-platform belgium,o=federal government,c=be"]
    assert "Your keystore contains 5 entries" in out


@pytest.mark.interop
def test_keytool_refuses_wrong_password(tmp_path: Path) -> None:
    path = tmp_path / "store.p12"
    save_keystore(path, fixture_keystore("bob/bobs_private_key_store.p12"), "right")
    proc = subprocess.run(
        [KEYTOOL, "-list", "-storetype", "PKCS12", "-keystore", str(path), "-storepass:env", "KS_PASS"],
        env=_env("wrong"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0


@pytest.mark.interop
def test_openssl_reads_our_keystore_without_legacy(tmp_path: Path) -> None:
    path = tmp_path / "store.p12"
    save_keystore(path, _two_generation_store(), "ossl-pass")
    proc = subprocess.run(
        [OPENSSL, "pkcs12", "-info", "-in", str(path), "-passin", "env:KS_PASS", "-nodes"],
        env=_env("ossl-pass"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    text = proc.stdout + proc.stderr
    assert "MAC: sha1, Iteration 2048" in text
    assert text.count("Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC") == 3
    assert "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC" in text
    assert proc.stdout.count("BEGIN PRIVATE KEY") == 3
    assert "friendlyName: 825373489" in proc.stdout


@pytest.mark.interop
def test_openssl_reads_rc2_profile_with_legacy(tmp_path: Path) -> None:
    path = tmp_path / "store.p12"
    path.write_bytes(
        dump_keystore(fixture_keystore("bob/bobs_private_key_store.p12"), "p", cert_cipher="rc2-40")
    )
    proc = subprocess.run(
        [OPENSSL, "pkcs12", "-legacy", "-info", "-in", str(path), "-passin", "env:KS_PASS", "-nokeys"],
        env=_env("p"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "pbeWithSHA1And40BitRC2-CBC" in proc.stdout + proc.stderr


def test_save_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / keystore_filename("SSIN=79121430944", datetime(2020, 1, 1, 12, 0, tzinfo=UTC))
    save_keystore(path, fixture_keystore("bob/bobs_private_key_store.p12"), "a")
    assert path.name == "SSIN=79121430944 20200101-120000.p12"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert set(load_keystore(path.read_bytes(), "a").keys) == {"authentication", "825373489"}


def test_change_password(tmp_path: Path) -> None:
    path = tmp_path / "ks.p12"
    save_keystore(path, fixture_keystore("bob/bobs_private_key_store.p12"), "old")
    change_password(path, "old", "new")
    assert set(load_keystore(path.read_bytes(), "new").keys) == {"authentication", "825373489"}
    with pytest.raises(DomainError) as err:
        load_keystore(path.read_bytes(), "old")
    assert err.value.kind is ErrorKind.UNAUTHENTICATED


def test_change_password_with_wrong_old_password_leaves_file(tmp_path: Path) -> None:
    path = tmp_path / "ks.p12"
    save_keystore(path, fixture_keystore("bob/bobs_private_key_store.p12"), "old")
    before = path.read_bytes()
    with pytest.raises(DomainError) as err:
        change_password(path, "guess", "new")
    assert err.value.kind is ErrorKind.UNAUTHENTICATED
    assert path.read_bytes() == before


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_change_password_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    path = tmp_path / "ks.p12"
    save_keystore(path, fixture_keystore("bob/bobs_private_key_store.p12"), "old")
    before = path.read_bytes()

    def boom(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ks_mod.os, failing, boom)
    with pytest.raises(OSError, match="No space left"):
        change_password(path, "old", "new")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_keystore(path.read_bytes(), "old").authentication().alias == "authentication"
    assert [p.name for p in tmp_path.iterdir()] == ["ks.p12"]  # no temp file left behind


@pytest.mark.parametrize("stem", ["", "../x", "a/b", ".."])
def test_keystore_filename_refuses_paths(stem: str) -> None:
    with pytest.raises(DomainError) as err:
        keystore_filename(stem, NOW)
    assert err.value.kind is ErrorKind.BAD_REQUEST


def test_decryption_keys_rule_uses_key_usage_not_alias() -> None:
    store = fixture_keystore("alice/alices_private_key_store.p12")
    enc = store.decryption_keys()
    assert all(isinstance(e.certificate, x509.Certificate) for e in enc.values())
    assert "Authentication" not in enc
