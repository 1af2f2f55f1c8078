"""The real server starts, reports healthy and serves its PKI endpoints."""

from __future__ import annotations

import httpx
from cryptography import x509


def test_live_server_health_and_ca_certificates(live_server) -> None:
    health = httpx.get(f"{live_server.url}/healthz").json()
    assert health["status"] == "ok", health
    for env in ("acceptance", "production"):
        der = httpx.get(f"{live_server.url}/pki/{env}/issuing.crt").content
        cert = x509.load_der_x509_certificate(der)
        assert env.capitalize() in cert.subject.rfc4514_string()
        crl = httpx.get(f"{live_server.url}/pki/{env}/crl")
        assert crl.status_code == 200 and crl.headers["content-type"] == "application/pkix-crl"
        issuing_crl = x509.load_der_x509_crl(crl.content)
        assert issuing_crl.issuer == cert.subject
        root_crl = x509.load_der_x509_crl(httpx.get(f"{live_server.url}/pki/{env}/root.crl").content)
        assert root_crl.issuer == cert.issuer and len(root_crl) == 0
        # the CDP of the issuing CA certificate names the URL just fetched
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert cdp[0].full_name[0].value == f"{live_server.url}/pki/{env}/root.crl"
    metrics = httpx.get(f"{live_server.url}/metrics").text
    assert "ehcerts_crl_age_seconds" in metrics
    # no Debian weak-key list in this data directory: monitoring can see it
    assert "\nehcerts_debian_weak_keys 0.0\n" in metrics
