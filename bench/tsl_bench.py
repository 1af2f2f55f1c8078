"""Trusted list with N services: build + sign + XSD check, and verification, beside ``xmlsec1`` and
python-xmlsec verifying the same bytes in the same run.

Run: ``.venv/bin/python bench/tsl_bench.py [--services 1000] [--rounds 5]``
The signer is RSA-3072 (the TL-signer minimum); listed certificates are P-256 (their type does not matter).
Our verifier does more than the peers (schema, XAdES properties, pinning, profile, dates); xmlsec1 timings
include process start-up, so the python-xmlsec column is the in-process peer.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from ehealth_certs.pki import tsl
from ehealth_certs.pki.issuer import sign_trusted_list
from ehealth_certs.pki.signing import SoftwareSigner
from ehealth_certs.trustlist.publish import SchemeInfo, TrustService, build_trusted_list

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def _certificate(
    subject_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cn: str,
    signing_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    tl_signer: bool = False,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn if tl_signer else "Bench Root CA"))
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=not tl_signer, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False)
    )
    if tl_signer:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        ).add_extension(x509.ExtendedKeyUsage([tsl.OID_TSL_SIGNING]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _timed(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), min(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    signer_cert = _certificate(signer_key, "Bench TL Signer", signer_key, tl_signer=True)
    signer = SoftwareSigner(signer_key)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    listed_key = ec.generate_private_key(ec.SECP256R1())
    services = [
        TrustService(
            _certificate(listed_key, f"Bench CA {i:05d}", ca_key),
            tsl.SERVICE_CA_PKC,
            f"Bench CA {i:05d}",
            tsl.STATUS_GRANTED,
            NOW - timedelta(days=1),
        )
        for i in range(args.services)
    ]
    scheme = SchemeInfo(
        operator_name="Bench operator",
        scheme_name="Bench scheme",
        distribution_uri="https://tsl.bench.example/tl.xml",
        information_uri="https://tsl.bench.example/",
        environment="bench",
    )

    def publish() -> bytes:
        root = build_trusted_list(
            scheme=scheme,
            services=services,
            sequence_number=1,
            issue_time=NOW,
            next_update=NOW + timedelta(days=30),
        )
        return sign_trusted_list(root, signer=signer, signer_certificate=signer_cert, signing_time=NOW)

    xml = publish()
    check = NOW + timedelta(hours=1)

    def ours() -> None:
        verified = tsl.verify_trusted_list(xml, pinned_signers=[signer_cert], now=check)
        assert len(verified.certificates) == args.services

    def schema_only() -> None:
        tsl.validate_schema(etree.fromstring(xml))

    def pyxmlsec() -> None:
        import xmlsec

        root = etree.fromstring(xml)
        xmlsec.tree.add_ids(root, ["Id"])
        ctx = xmlsec.SignatureContext()
        ctx.key = xmlsec.Key.from_memory(
            signer_cert.public_bytes(serialization.Encoding.PEM), xmlsec.constants.KeyDataFormatCertPem
        )
        ctx.verify(xmlsec.tree.find_node(root, xmlsec.constants.NodeSignature))

    with tempfile.TemporaryDirectory() as tmp:
        path, pem = Path(tmp) / "tl.xml", Path(tmp) / "signer.pem"
        path.write_bytes(xml)
        pem.write_bytes(signer_cert.public_bytes(serialization.Encoding.PEM))
        cmd = [
            "xmlsec1", "--verify", "--enabled-key-data", "x509", "--trusted-pem", str(pem),
            "--id-attr:Id", "http://uri.etsi.org/02231/v2#:TrustServiceStatusList",
            "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--verification-time", check.strftime("%Y-%m-%d %H:%M:%S"), str(path),
        ]  # fmt: skip

        def xmlsec1() -> None:
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)

        rows = [
            ("publish: build + sign + XSD (ours)", _timed(publish, args.rounds)),
            ("XSD validation alone (ours, lxml)", _timed(schema_only, args.rounds)),
            ("verify: full checklist (ours)", _timed(ours, args.rounds)),
            ("verify: python-xmlsec (peer)", _timed(pyxmlsec, args.rounds)),
            ("verify: xmlsec1 CLI (peer)", _timed(xmlsec1, args.rounds)),
        ]
    print(
        f"trusted list: {args.services} services, {len(xml) / 1024:.0f} KiB, RSA-3072 signer, "
        f"{args.rounds} rounds"
    )
    print(f"{'operation':<38} {'median ms':>10} {'best ms':>9}")
    for label, (median, best) in rows:
        print(f"{label:<38} {median * 1000:>10.1f} {best * 1000:>9.1f}")


if __name__ == "__main__":
    main()
