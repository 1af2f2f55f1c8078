"""CRL build + sign time for 10k / 100k / 1M entries, with ``openssl crl`` parse time beside it as the peer.

Run: ``.venv/bin/python bench/crl_bench.py [--sizes 10000,100000,1000000]``
Targets (2-core runner): 100,000 entries < 10 s, 1,000,000 entries < 90 s, RSA-4096 issuing CA.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from ehealth_certs.environment import Environment
from ehealth_certs.pki import ceremony, issuer

REASONS = [
    x509.ReasonFlags.key_compromise,
    x509.ReasonFlags.superseded,
    x509.ReasonFlags.cessation_of_operation,
    x509.ReasonFlags.affiliation_changed,
    None,
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    pki = ceremony.create_environment_pki(Environment.PRODUCTION, now=now, base_url="http://pki.example.be")
    print(f"{'entries':>10} {'build+sign s':>13} {'DER MB':>8} {'openssl crl parse s':>20}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            entries = [
                issuer.RevokedEntry(
                    issuer.random_serial(), now - timedelta(seconds=i % 86_400), REASONS[i % 5]
                )
                for i in range(n)
            ]
            started = time.perf_counter()
            crl = issuer.sign_crl(
                pki.issuing, number=n, this_update=now, next_update=now + timedelta(days=7), entries=entries
            )
            ours = time.perf_counter() - started
            path = Path(tmp) / f"crl-{n}.der"
            path.write_bytes(crl)
            started = time.perf_counter()
            subprocess.run(
                ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-crlnumber"],
                check=True,
                capture_output=True,
            )
            peer = time.perf_counter() - started
            print(f"{n:>10} {ours:>13.2f} {len(crl) / 1e6:>8.1f} {peer:>20.2f}")


if __name__ == "__main__":
    main()
