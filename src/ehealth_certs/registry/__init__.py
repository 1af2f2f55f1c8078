"""Service registry: catalogue of web services, versions, endpoints, documents, and change subscribers."""

from ehealth_certs.registry.service import Change, Document, RegistryService
from ehealth_certs.registry.states import VersionStatus

__all__ = ["Change", "Document", "RegistryService", "VersionStatus"]
