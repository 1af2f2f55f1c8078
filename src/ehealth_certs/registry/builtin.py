"""The platform's own services, as registered at every start (the sync is idempotent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from ehealth_certs.environment import Environment

# The ETK depot's official interface files, in their published relative layout so that the WSDL's and
# XSDs' relative schemaLocation imports resolve against the registry's document URLs too.
ETK_DEPOT_DOCUMENTS = (
    "wsdl/EtkDepot_v1.wsdl",
    "ehealth-etee/XSD/ehealth-etkdepot-schema-protocol-1_0.xsd",
    "ehealth-commons/XSD/ehealth-commons-schema-protocol-1_0.xsd",
    "ehealth-commons/XSD/ehealth-commons-schema-core-1_0.xsd",
)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    protocol: str
    description: str
    version: str
    endpoints: dict[tuple[Environment, str], str]  # (environment, binding) -> URL
    documentation: list[str] = field(default_factory=list)
    documents: dict[str, bytes] = field(default_factory=dict)


def _xsd(path: str) -> bytes:
    return resources.files("ehealth_certs").joinpath("data", "ehealth-xsd", *path.split("/")).read_bytes()


def platform_services(base_url: str) -> list[ServiceSpec]:
    base = base_url.rstrip("/")
    envs = list(Environment)

    def per_env(binding: str, pattern: str) -> dict[tuple[Environment, str], str]:
        return {(e, binding): base + pattern.format(env=e.value) for e in envs}

    api_docs = [f"{base}/docs"]
    return [
        ServiceSpec(
            name="certra",
            title="CertRA: eHealth certificate registration authority",
            protocol="REST",
            description="Request, renew, look up and revoke eHealth authentication certificates "
            "(CertRA v2 operations: contracts signed with the eID).",
            version="2.0",
            endpoints=per_env("rest", "/api/{env}/certra"),
            documentation=api_docs,
        ),
        ServiceSpec(
            name="etkra",
            title="EtkRA: encryption token registration",
            protocol="REST",
            description="Register and activate encryption tokens (ETK) for an eHealth certificate "
            "(challenge-response proof of possession).",
            version="2.0",
            endpoints=per_env("rest", "/api/{env}/etkra"),
            documentation=api_docs,
        ),
        ServiceSpec(
            name="etkdepot",
            title="ETK depot: directory of encryption tokens",
            protocol="SOAP",
            description="Look up the ETK of an addressee before encrypting a message to it. SOAP "
            "(official EtkDepot v1 WSDL, GetEtk) and a REST equivalent.",
            version="1.0",
            endpoints={
                **{(e, "soap"): f"{base}/EtkDepot/v1" for e in envs},
                **per_env("rest", "/api/{env}/etkdepot"),
            },
            documentation=[f"{base}/EtkDepot/v1?wsdl", *api_docs],
            documents={p: _xsd(p) for p in ETK_DEPOT_DOCUMENTS},
        ),
        ServiceSpec(
            name="ocsp",
            title="OCSP responder",
            protocol="OCSP",
            description="Certificate status of eHealth certificates (RFC 6960; POST and GET).",
            version="1.0",
            endpoints=per_env("http", "/pki/{env}/ocsp"),
            documentation=["https://www.rfc-editor.org/rfc/rfc6960"],
        ),
        ServiceSpec(
            name="crl",
            title="Certificate revocation list",
            protocol="CRL",
            description="The issuing CA's CRL (RFC 5280), republished at least every 7 days and after each revocation.",
            version="1.0",
            endpoints=per_env("http", "/pki/{env}/crl"),
            documentation=["https://www.rfc-editor.org/rfc/rfc5280"],
        ),
        ServiceSpec(
            name="trusted-list",
            title="Trusted list",
            protocol="TSL",
            description="The signed list of the platform's CAs and services (ETSI TS 119 612 XML).",
            version="2.4.1",
            endpoints=per_env("http", "/tsl/{env}.xml"),
            documentation=api_docs,
        ),
    ]
