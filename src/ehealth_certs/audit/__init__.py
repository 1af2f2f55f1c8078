"""Append-only, hash-chained audit log."""

from ehealth_certs.audit.log import AuditLog, ChainBreak, verify_chain

__all__ = ["AuditLog", "ChainBreak", "verify_chain"]
