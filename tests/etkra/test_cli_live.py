"""The real CLI against a real server: cert request (with ETK), etk get, seal, unseal with live OCSP, the
keystore read by keytool and openssl, and the SOAP depot called by a zeep client built from the served WSDL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import zeep

from ehealth_certs.pki.etk import parse_etk

SSIN = "79121430944"
PIN = "1234"
PASSWORD = "keystore-pw-1"


def ehcerts(live, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**live.env, "EHCERTS_EID_PIN": PIN, "EHCERTS_KEYSTORE_PASSWORD": PASSWORD}
    result = subprocess.run(
        [sys.executable, "-m", "ehealth_certs", *args], env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"ehcerts {' '.join(args)} -> {result.returncode}: {result.stderr}")
    return result


def test_certificate_manager_etk_seal_unseal_and_soap_against_a_live_server(
    live_server, tmp_path: Path
) -> None:
    live = live_server
    eid = tmp_path / "jan.eid"
    ehcerts(live, "dev", "make-eid", "--ssin", SSIN, "--first-name", "Jan", "--last-name", "Janssens",
            "--out", str(eid))  # fmt: skip
    csv = tmp_path / "pros.csv"
    csv.write_text(f"ssin,first_name,last_name,quality,nihii\n{SSIN},Jan,Janssens,doctor,\n")
    ehcerts(live, "admin", "import", "professionals", str(csv))
    ks_dir = tmp_path / "ks"
    out = ehcerts(live, "cert", "request", "--server", live.url, "--eid", str(eid), "--email", "jan@example.be",
                  "--accept-contract", "--keystore-dir", str(ks_dir), "--json")  # fmt: skip
    outcome = json.loads(out.stdout)
    assert outcome["delivered"] and outcome["etkStatus"] == "VALID_ACTIVE"
    keystore = Path(outcome["keystore"])

    # the keystore opens in keytool and openssl, with the encryption key under the ETK serial
    listing = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(keystore), "-storepass", PASSWORD],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "authentication, " in listing and f"{outcome['etkSerial']}, " in listing
    subprocess.run(
        ["openssl", "pkcs12", "-in", str(keystore), "-passin", f"pass:{PASSWORD}", "-noout"], check=True
    )

    # cert status shows both statuses
    status = json.loads(
        ehcerts(live, "cert", "status", "--server", live.url, "--eid", str(eid), "--json").stdout
    )
    assert [(c["authenticationCertificateStatus"], c["etkStatus"]) for c in status["certificates"]] == [
        ("VALID_ACTIVE", "VALID_ACTIVE")
    ]

    # etk get writes the depot's ETK
    etk_file = tmp_path / "jan.etk"
    ehcerts(
        live, "etk", "get", "--server", live.url, "--type", "SSIN", "--value", SSIN, "--out", str(etk_file)
    )
    etk = parse_etk(etk_file.read_bytes())
    assert str(etk.encryption_certificate.serial_number) == outcome["etkSerial"]
    # the same ETK over SOAP, from a zeep client built from the served WSDL (address rewritten to this server)
    answer = zeep.Client(f"{live.url}/EtkDepot/v1?wsdl").service.GetEtk(
        SearchCriteria={"Identifier": [{"Type": "SSIN", "Value": SSIN}]}
    )
    assert answer.Status.Code == "200" and etk_file.read_bytes() == answer.ETK

    # seal through the depot, unseal with the keystore: OCSP (AIA) is reachable, so trust is FULL
    clear = tmp_path / "clear.txt"
    clear.write_bytes(b"lab results for Jan")
    sealed = tmp_path / "msg.sealed"
    ehcerts(live, "seal", "--server", live.url, "--to", f"SSIN={SSIN}", "--keystore", str(keystore),
            "--in", str(clear), "--out", str(sealed))  # fmt: skip
    plain = tmp_path / "plain.txt"
    result = ehcerts(
        live, "unseal", "--keystore", str(keystore), "--in", str(sealed), "--out", str(plain), "--report"
    )
    report = json.loads(result.stdout)
    assert report["validation"] == "VALID" and report["trust"] == "FULL", report
    assert plain.read_bytes() == b"lab results for Jan"
    # the holder revokes the certificate: OCSP says so at once, the ETK leaves the depot, strict unseal refuses
    ehcerts(live, "cert", "revoke", "--server", live.url, "--eid", str(eid), "--keystore", str(keystore),
            "--reason", "keyCompromise", "--accept-contract")  # fmt: skip
    gone = ehcerts(live, "etk", "get", "--server", live.url, "--type", "SSIN", "--value", SSIN, check=False)
    assert gone.returncode == 5 and "no active ETK" in gone.stderr
    plain.unlink()
    refused = ehcerts(live, "unseal", "--keystore", str(keystore), "--in", str(sealed), "--out", str(plain),
                      "--report", check=False)  # fmt: skip
    assert refused.returncode == 12 and not plain.exists()
    assert json.loads(refused.stdout)["trust"] == "NONE"


def test_zeep_client_on_the_acceptance_endpoint(live_server) -> None:
    live = live_server
    acc = zeep.Client(f"{live.url}/acceptance/EtkDepot/v1?wsdl")
    service = acc.create_service(
        "{urn:be:fgov:ehealth:etkdepot:1_0:protocol}EtkDepotSoapBinding", f"{live.url}/acceptance/EtkDepot/v1"
    )
    answer = service.GetEtk(
        SearchCriteria={"Identifier": [{"Type": "CBE", "Value": "809394427", "ApplicationID": "KGSS"}]}
    )
    assert answer.Status.Code == "200" and answer.Error[0].Code == "NOT_FOUND"
    assert answer.GivenSearchCriteria.Identifier[0].ApplicationID == "KGSS"
    answer = service.GetEtk(SearchCriteria={"Identifier": [{"Type": "UNKNOWN", "Value": "1"}]})
    assert answer.Status.Code == "400" and answer.Error[0].Code == "BAD_IDENTIFIER"
