"""CertRA contracts: built by the server, shown by the client, sent back unchanged.

A contract is a pure function of its inputs, so the server checks one it receives by building it again
from the fields it names and comparing the two: nothing has to be stored between GenerateContract and
GenerateCertificate, and a single changed character is refused.
"""

from __future__ import annotations

import html
from typing import Any

from ehealth_certs.errors import DomainError, ErrorKind

CONTRACT_VERSION = "2026-1"

_CERT_TEXT = {
    "fr": (
        "<p>Je soussigné(e) {signer} demande un certificat eHealth ({env}) pour <b>{dn}</b>. "
        "Je m'engage à protéger la clé privée et le mot de passe du keystore, à ne les utiliser que pour les "
        "services de la plate-forme eHealth et à révoquer le certificat sans délai en cas de compromission.</p>"
    ),
    "nl": (
        "<p>Ondergetekende {signer} vraagt een eHealth-certificaat ({env}) aan voor <b>{dn}</b>. "
        "Ik verbind mij ertoe de private sleutel en het wachtwoord van de keystore te beschermen, ze enkel voor "
        "de diensten van het eHealth-platform te gebruiken en het certificaat onmiddellijk te laten herroepen "
        "bij compromittering.</p>"
    ),
    "en": (
        "<p>I, the undersigned {signer}, request an eHealth certificate ({env}) for <b>{dn}</b>. "
        "I undertake to protect the private key and the keystore password, to use them only for the services "
        "of the eHealth platform, and to have the certificate revoked without delay if they are compromised.</p>"
    ),
}

_REVOKE_TEXT = {
    "fr": "<p>Je soussigné(e) {signer} demande la révocation du certificat eHealth {pki} de <b>{dn}</b> "
    "(motif : {reason}). La révocation est définitive et révoque aussi ses clés de chiffrement (ETK).</p>",
    "nl": "<p>Ondergetekende {signer} vraagt de herroeping van het eHealth-certificaat {pki} van <b>{dn}</b> "
    "(reden: {reason}). De herroeping is definitief en herroept ook de encryptiesleutels (ETK).</p>",
    "en": "<p>I, the undersigned {signer}, request the revocation of the eHealth certificate {pki} of "
    "<b>{dn}</b> (reason: {reason}). Revocation is final and also revokes its encryption keys (ETK).</p>",
}


def _signer_text(signer: dict[str, str]) -> str:
    return html.escape(f"{signer['firstName']} {signer['lastName']} ({signer['ssin']})")


def certificate_contract(
    *, environment: str, dn: str, signer: dict[str, str], identifier: dict[str, Any]
) -> dict[str, Any]:
    fields = {"signer": _signer_text(signer), "dn": html.escape(dn), "env": environment}
    return {
        "kind": "certificate",
        "version": CONTRACT_VERSION,
        "environment": environment,
        "dn": dn,
        "signer": dict(signer),
        "certificateIdentifier": dict(identifier),
        "text": {lang: tpl.format(**fields) for lang, tpl in _CERT_TEXT.items()},
    }


def revocation_contract(
    *, environment: str, dn: str, signer: dict[str, str], public_key_identifier: str, reason: str
) -> dict[str, Any]:
    fields = {
        "signer": _signer_text(signer),
        "dn": html.escape(dn),
        "pki": public_key_identifier,
        "reason": reason,
    }
    return {
        "kind": "revocation",
        "version": CONTRACT_VERSION,
        "environment": environment,
        "dn": dn,
        "signer": dict(signer),
        "publicKeyIdentifier": public_key_identifier,
        "revocationReason": reason,
        "text": {lang: tpl.format(**fields) for lang, tpl in _REVOKE_TEXT.items()},
    }


def require_unchanged(received: Any, rebuilt: dict[str, Any]) -> None:
    if received != rebuilt:
        raise DomainError(
            ErrorKind.CONTRACT_MISMATCH,
            "the contract was changed or is not one this server issued; request a new contract",
        )
