"""Prometheus metrics (exposed at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ehcerts_http_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ehcerts_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )  # fmt: skip
        self.issuances = Counter(
            "ehcerts_certificates_issued_total", "Certificates issued", registry=self.registry
        )
        self.revocations = Counter(
            "ehcerts_certificates_revoked_total", "Certificates revoked", registry=self.registry
        )
        self.ocsp = Counter("ehcerts_ocsp_responses_total", "OCSP responses served", registry=self.registry)
        self.crl_age = Gauge(
            "ehcerts_crl_age_seconds", "Age of the newest CRL", ["environment"], registry=self.registry
        )
        self.debian_weak_keys = Gauge(
            "ehcerts_debian_weak_keys",
            "Debian weak-key fingerprints loaded (0: CVE-2008-0166 keys are not refused)",
            registry=self.registry,
        )
