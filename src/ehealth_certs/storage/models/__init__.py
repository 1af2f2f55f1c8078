"""All models, imported here so that the metadata is complete for migrations."""

from ehealth_certs.storage.models.base import Base
from ehealth_certs.storage.models.core import (
    AuditEvent,
    BlockedKey,
    Certificate,
    CertificateRequest,
    Crl,
    Issuer,
    Mandate,
    OcspResponse,
    Organisation,
    Professional,
    Project,
    UsedRequestId,
)

__all__ = [
    "AuditEvent",
    "Base",
    "BlockedKey",
    "Certificate",
    "CertificateRequest",
    "Crl",
    "Issuer",
    "Mandate",
    "OcspResponse",
    "Organisation",
    "Professional",
    "Project",
    "UsedRequestId",
]
