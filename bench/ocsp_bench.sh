#!/usr/bin/env bash
# OCSP responder throughput: a live `ehcerts serve`, one issued certificate, then the agreed side-by-side
# script ../shared/bench/ocsp-vs-cfssl.sh (wrk, alternating rounds against `cfssl ocspserve`).
#
#   bench/ocsp_bench.sh [SECONDS_PER_ROUND] [ROUNDS] [CONNECTIONS]      (run from the project root)
#
# Goal: >= 5,000 responses/s, p99 < 10 ms, faster than cfssl. Prints the shared script's table and summary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
shared="${EHCERTS_SHARED:-$root/../shared}"
[ -x "$shared/bench/ocsp-vs-cfssl.sh" ] || shared=/work/shared
work=$(mktemp -d)
trap 'kill "${server_pid:-}" 2>/dev/null || true; wait "${server_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export EHCERTS_DATA_DIR="$work/data" EHCERTS_CA_PASSPHRASE="bench-only ca passphrase 7c1e" EHCERTS_PORT="$port"
export EHCERTS_PUBLIC_BASE_URL="http://127.0.0.1:$port"
mkdir -p "$EHCERTS_DATA_DIR"

# one certificate: PKI, test Citizen CA, an organisation with a mandated signer, one issuance (in process)
"$py" - "$work" <<'PY'
import base64, sys
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ehealth_certs.client.eid import FileEid, signed_request
from ehealth_certs.clock import SystemClock
from ehealth_certs.config import Settings
from ehealth_certs.environment import Environment
from ehealth_certs.pki.eid_dev import create_citizen_ca, create_test_eid
from ehealth_certs.platform import Platform
from ehealth_certs.ra.sources import add_mandate, import_organisations

work = Path(sys.argv[1])
p = Platform.start(Settings(), create_pki=True)
now = SystemClock().now()
ca = create_citizen_ca(now=now)
p.trust.add("bench-citizen-ca", ca[0].public_bytes(serialization.Encoding.PEM))
import_organisations(p.rt, b"type,number,name\nCBE,0809394427,EHEALTH-PLATFORM\n", operator="bench")
add_mandate(p.rt, ssin="79121430944", id_type="CBE", number="0809394427", operator="bench")
eid = create_test_eid(ssin="79121430944", first_name="Jan", last_name="Janssens", ca=ca, now=now)
FileEid.write(work / "signer.eid", eid, "1234")
card = FileEid.open(work / "signer.eid", "1234")
signer = {"ssin": "79121430944", "firstName": "Jan", "lastName": "Janssens"}
contract = p.certra.generate_contract(Environment.PRODUCTION, {
    "signer": signer, "certificateIdentifier": {"type": "CBE", "value": "0809394427", "applicationId": "OCSPBENCH"}})
key = rsa.generate_private_key(65537, 2048)
csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name.from_rfc4514_string(contract["dn"]))
       .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
body = {"csr": base64.b64encode(csr).decode(), "contract": contract, "contactData": {"emailPrivate": "b@example.be"}}
answer = p.certra.generate_certificate(Environment.PRODUCTION, signed_request(card, "signature", body, now=now))
chain = p.certra.get_certificate(Environment.PRODUCTION, answer["publicKeyIdentifier"])
(work / "cert.pem").write_bytes(x509.load_der_x509_certificate(chain[0]).public_bytes(serialization.Encoding.PEM))
(work / "issuing.pem").write_bytes(x509.load_der_x509_certificate(chain[1]).public_bytes(serialization.Encoding.PEM))
p.close()
PY

"$py" -m ehealth_certs serve >"$work/server.log" 2>&1 & server_pid=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.2
done
ocsp_url=$(openssl x509 -in "$work/cert.pem" -noout -ocsp_uri)
echo "server: $(nproc) cores, ehcerts serve ${EHCERTS_WORKERS:+(workers $EHCERTS_WORKERS)}; OCSP URL $ocsp_url"
"$shared/bench/ocsp-vs-cfssl.sh" "$ocsp_url" "$work/issuing.pem" "$work/cert.pem" "${1:-8}" "${2:-3}" "${3:-32}"
