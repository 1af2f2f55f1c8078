"""All models, imported here so that the metadata is complete for migrations."""

from ehealth_certs.storage.models.base import Base, table_of
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
from ehealth_certs.storage.models.etk import EtkRecord
from ehealth_certs.storage.models.operators import OperatorToken
from ehealth_certs.storage.models.registry import (  # noqa: F401  (metadata)
    MailMessage,
    RegistryDocument,
    RegistryEndpoint,
    RegistryService,
    RegistrySubscription,
    RegistryToken,
    RegistryVersion,
)
from ehealth_certs.storage.models.trustlist import TslOperatorService, TslPublication, TslStatusChange

__all__ = [
    "AuditEvent",
    "Base",
    "BlockedKey",
    "Certificate",
    "CertificateRequest",
    "Crl",
    "EtkRecord",
    "Issuer",
    "Mandate",
    "OcspResponse",
    "OperatorToken",
    "Organisation",
    "Professional",
    "Project",
    "TslOperatorService",
    "TslPublication",
    "TslStatusChange",
    "UsedRequestId",
    "table_of",
]
