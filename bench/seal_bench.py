"""Sealed-message throughput: seal + unseal of 1 KiB and 1 MiB for 1 and 10 recipients, beside
``openssl cms`` doing the same triple wrap (sign PSS / encrypt AES-128-CBC / sign PSS) and its reverse
(verify / decrypt / verify) on the same content in the same run.

Run: ``.venv/bin/python bench/seal_bench.py [--iterations 20]`` (1 MiB cases run a quarter as often).
OpenSSL figures include process start-up (three processes per direction), as a shell integration pays it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ehealth_certs.pki.keystore import Keystore
from ehealth_certs.pki.seal import seal, unseal

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *,
    ca: bool,
    enc: bool,
) -> x509.Certificate:
    issuer_name, issuer_key = issuer if issuer else (_name(subject), key)
    ku = x509.KeyUsage(not enc, not enc, enc, enc, False, ca, ca, False, False)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .public_key(key.public_key())
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(ku, critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(obj: x509.Certificate | rsa.RSAPrivateKey) -> bytes:
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _rate(fn: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - started)


def _openssl(tmp: Path, *args: str) -> None:
    subprocess.run(["openssl", "cms", *args], cwd=tmp, check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()

    gen = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
    root_key, sender_key = gen(), gen()
    root = _cert("Bench Root", root_key, None, ca=True, enc=False)
    sender = _cert("Sender", sender_key, (root.subject, root_key), ca=False, enc=False)
    recipients = [
        (k, _cert(f"Recipient {i}", k, None, ca=False, enc=True))
        for i, k in enumerate(gen() for i in range(10))
    ]

    header = (
        f"{'size':>6} {'rcpt':>4} | {'ours seal msg/s':>15} {'MB/s':>7} {'unseal msg/s':>12} {'MB/s':>7} | "
        f"{'openssl seal msg/s':>18} {'MB/s':>7} {'unseal msg/s':>12} {'MB/s':>7}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "sender.pem").write_bytes(_pem(sender))
        (tmp / "sender.key").write_bytes(_pem(sender_key))
        (tmp / "root.pem").write_bytes(_pem(root))
        for i, (key, cert) in enumerate(recipients):
            (tmp / f"r{i}.pem").write_bytes(_pem(cert))
            (tmp / f"r{i}.key").write_bytes(_pem(key))
        for size in (1024, 1024 * 1024):
            content = os.urandom(size)
            (tmp / "content.bin").write_bytes(content)
            n = args.iterations if size <= 1024 else max(1, args.iterations // 4)
            for count in (1, 10):
                chosen = recipients[:count]
                last_key, last_cert = chosen[-1]
                # The reader holds only the last recipient's key: the worst case for the recipient search.
                store = Keystore()
                store.add_encryption_key(last_key, last_cert)
                certs = [c for _, c in chosen]
                message = seal(content, sender_key, [sender, root], certs, NOW)

                def do_seal(certs: list[x509.Certificate] = certs, content: bytes = content) -> bytes:
                    return seal(content, sender_key, [sender, root], certs, NOW)

                def do_unseal(
                    message: bytes = message, store: Keystore = store, content: bytes = content
                ) -> object:
                    result = unseal(message, [store], trusted_cas=[root], now=NOW)
                    assert result.content == content
                    return result

                ours_seal, ours_unseal = _rate(do_seal, n), _rate(do_unseal, n)

                pss = ["-md", "sha256", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:32"]
                rcpts = [f"r{i}.pem" for i in range(count)]

                def ossl_seal(rcpts: list[str] = rcpts, pss: list[str] = pss) -> None:
                    _openssl(
                        tmp,
                        "-sign",
                        "-binary",
                        "-nodetach",
                        "-nocerts",
                        "-signer",
                        "sender.pem",
                        "-inkey",
                        "sender.key",
                        *pss,
                        "-in",
                        "content.bin",
                        "-outform",
                        "DER",
                        "-out",
                        "inner.der",
                    )
                    _openssl(
                        tmp,
                        "-encrypt",
                        "-binary",
                        "-aes128",
                        "-in",
                        "inner.der",
                        "-outform",
                        "DER",
                        "-out",
                        "middle.der",
                        *rcpts,
                    )
                    _openssl(
                        tmp,
                        "-sign",
                        "-binary",
                        "-nodetach",
                        "-signer",
                        "sender.pem",
                        "-inkey",
                        "sender.key",
                        "-certfile",
                        "root.pem",
                        *pss,
                        "-in",
                        "middle.der",
                        "-outform",
                        "DER",
                        "-out",
                        "outer.der",
                    )

                def ossl_unseal(count: int = count) -> None:  # verify -> decrypt -> verify
                    _openssl(
                        tmp,
                        "-verify",
                        "-binary",
                        "-inform",
                        "DER",
                        "-in",
                        "outer.der",
                        "-CAfile",
                        "root.pem",
                        "-purpose",
                        "any",
                        "-out",
                        "m.der",
                    )
                    _openssl(
                        tmp,
                        "-decrypt",
                        "-binary",
                        "-inform",
                        "DER",
                        "-in",
                        "m.der",
                        "-recip",
                        f"r{count - 1}.pem",
                        "-inkey",
                        f"r{count - 1}.key",
                        "-out",
                        "i.der",
                    )
                    _openssl(
                        tmp,
                        "-verify",
                        "-binary",
                        "-inform",
                        "DER",
                        "-in",
                        "i.der",
                        "-noverify",
                        "-certfile",
                        "sender.pem",
                        "-out",
                        "c.bin",
                    )

                ossl_s = _rate(ossl_seal, n)
                ossl_u = _rate(ossl_unseal, n)
                assert (tmp / "c.bin").read_bytes() == content
                mb = size / 1e6
                label = "1KiB" if size == 1024 else "1MiB"
                print(
                    f"{label:>6} {count:>4} | {ours_seal:>15.1f} {ours_seal * mb:>7.2f} {ours_unseal:>12.1f} "
                    f"{ours_unseal * mb:>7.2f} | {ossl_s:>18.1f} {ossl_s * mb:>7.2f} {ossl_u:>12.1f} "
                    f"{ossl_u * mb:>7.2f}"
                )


if __name__ == "__main__":
    main()
