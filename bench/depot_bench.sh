#!/usr/bin/env bash
# ETK depot throughput on loopback: wrk against the REST lookup and the SOAP GetEtk of a live server.
#
#   bench/depot_bench.sh                 # starts a throw-away server, registers one ETK, measures
#   DURATION=20s CONNECTIONS=64 bench/depot_bench.sh
#
# Prints one table: endpoint, requests/s, p99 latency, non-2xx answers. Needs wrk and the project venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PORT=${PORT:-$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
WORK=$(mktemp -d)
SERVER_PID=""
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

export EHCERTS_DATA_DIR="$WORK/data" EHCERTS_PORT="$PORT" EHCERTS_PUBLIC_BASE_URL="http://127.0.0.1:$PORT"
export EHCERTS_CA_PASSPHRASE="bench-only passphrase $(date +%s%N)" EHCERTS_EID_PIN=1234 EHCERTS_KEYSTORE_PASSWORD=bench-pw
SSIN=79121430944
URL="http://127.0.0.1:$PORT"

$PY -m ehealth_certs serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
curl -fs "$URL/healthz" >/dev/null

# one holder with a certificate and an ETK, through the real CLI
$PY -m ehealth_certs dev make-eid --ssin $SSIN --first-name Jan --last-name Janssens --out "$WORK/jan.eid" >/dev/null
printf 'ssin,first_name,last_name,quality,nihii\n%s,Jan,Janssens,doctor,\n' $SSIN >"$WORK/pros.csv"
$PY -m ehealth_certs admin import professionals "$WORK/pros.csv" >/dev/null
$PY -m ehealth_certs cert request --server "$URL" --eid "$WORK/jan.eid" --email jan@example.be \
  --accept-contract --keystore-dir "$WORK/ks" >/dev/null 2>&1
curl -fs "$URL/api/production/etkdepot/etks?type=SSIN&value=$SSIN" | grep -q '"etk"'

cat >"$WORK/soap.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml; charset=utf-8"
wrk.body = [[<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:d="urn:be:fgov:ehealth:etkdepot:1_0:protocol"><soapenv:Body><d:GetEtkRequest><d:SearchCriteria><d:Identifier><d:Type>SSIN</d:Type><d:Value>$SSIN</d:Value></d:Identifier></d:SearchCriteria></d:GetEtkRequest></soapenv:Body></soapenv:Envelope>]]
LUA
cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("RESULT %.0f %.2f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(99) / 1000, non2xx, summary.requests))
end
LUA
cat "$WORK/soap.lua" "$WORK/report.lua" >"$WORK/soap_report.lua"

run() { # name url [script]
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "${3:-$WORK/report.lua}" "$2" | grep '^RESULT')
  read -r _ rps p99 errs total <<<"$out"
  printf '%-34s %10s %10s %8s %10s\n' "$1" "$rps" "$p99" "$errs" "$total"
}

echo "ETK depot on $URL  (wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(nproc) CPUs)"
printf '%-34s %10s %10s %8s %10s\n' endpoint "req/s" "p99 ms" non-2xx requests
run "REST GET /api/production/etkdepot" "$URL/api/production/etkdepot/etks?type=SSIN&value=$SSIN"
run "REST GET (not found)" "$URL/api/production/etkdepot/etks?type=SSIN&value=69022608813"
run "SOAP POST /EtkDepot/v1" "$URL/EtkDepot/v1" "$WORK/soap_report.lua"
