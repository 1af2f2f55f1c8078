"""Belgian identifiers: SSIN (national and BIS numbers), CBE enterprise numbers, NIHII numbers.

The identifier-type table is the ETK depot's (ehealth-reference §6.3): every value is a string of digits,
left-padded with ``0`` to the type's length. Check digits are verified only where we *build* an identity
(``validate_*``): the legacy test fixtures carry numbers such as ``00000000202`` that are not valid SSINs,
and a depot lookup must still be able to name them (``pad_identifier``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from ehealth_certs.errors import DomainError, ErrorKind

IdentifierKind = Literal["ssin", "cbe", "nihii", "other"]


@dataclass(frozen=True)
class IdentifierTypeInfo:
    """One row of the identifier-type table: the type string, its padded length and its check rule."""

    name: str
    length: int
    kind: str  # "ssin" | "cbe" | "nihii" | "other"


def _table() -> Mapping[str, IdentifierTypeInfo]:
    rows: list[tuple[str, int, IdentifierKind]] = [
        ("SSIN", 11, "ssin"),
        ("CBE", 10, "cbe"),
        ("CBE-TREAT_CENTER", 10, "cbe"),
        ("CBE-CONSORTIUM", 10, "cbe"),
        ("NIHII", 8, "nihii"),
        ("NIHII11", 11, "nihii"),
        ("NIHII-PHARMACY", 8, "nihii"),
        ("NIHII-LABO", 8, "nihii"),
        ("NIHII-RETIREMENT", 8, "nihii"),
        ("NIHII-OTD_PHARMACY", 8, "nihii"),
        ("NIHII-HOSPITAL", 8, "nihii"),
        ("NIHII-GROUP", 8, "nihii"),
        ("NIHII-PALLIATIVE_CARE", 8, "nihii"),
        ("NIHII-OFFICE_DENTISTS", 8, "nihii"),
        ("NIHII-MEDICAL_HOUSE", 8, "nihii"),
        ("NIHII-OFFICE_DOCTORS", 8, "nihii"),
        ("NIHII-GROUP_DOCTORS", 8, "nihii"),
        ("NIHII-OF_BAND", 8, "nihii"),
        ("NIHII-PSYCH_HOUSE", 8, "nihii"),
        ("NIHII-PROT_ACC", 8, "nihii"),
        ("NIHII-HOME_SERVICES", 8, "nihii"),
        ("NIHII-OF_PHYSIOS", 8, "nihii"),
        ("NIHII-GUARD_POST", 8, "nihii"),
        ("NIHII-BELRAI", 8, "nihii"),
        ("NIHII-BELRAI_SCREEN", 8, "nihii"),
        ("NIHII-GROUP_MIDWIVES", 8, "nihii"),
        ("NIHII-SORTING_CENTER", 8, "nihii"),
        # Numbers the platform or other registries assign: no public check-digit rule.
        ("EHP", 10, "other"),
        ("HUB", 10, "other"),  # deprecated alias of EHP
        ("EHP-CTRL_ORGANISM", 10, "other"),
        ("SITE", 4, "other"),
        ("SITESMUR", 10, "other"),
        ("SITEPIT", 10, "other"),
    ]
    return MappingProxyType({name: IdentifierTypeInfo(name, length, kind) for name, length, kind in rows})


IDENTIFIER_TYPES: Final[Mapping[str, IdentifierTypeInfo]] = _table()

# Separators people type inside numbers ("85.07.30-033 28", "0809.394.427").
_SEPARATORS = re.compile(r"[\s.\-/]")
_DIGITS = re.compile(r"[0-9]+")


def _bad(detail: str) -> DomainError:
    return DomainError(ErrorKind.BAD_IDENTIFIER, detail)


def _digits(label: str, value: str, *, separators: bool = True) -> str:
    if not isinstance(value, str):
        raise _bad(f"{label} must be a string of digits")
    compact = _SEPARATORS.sub("", value) if separators else value
    # ASCII only: str.isdigit() would also accept other scripts' digits.
    if not _DIGITS.fullmatch(compact):
        raise _bad(f"{label} {value!r}: digits only")
    return compact


# ---------------------------------------------------------------------------------------------------
# SSIN
# ---------------------------------------------------------------------------------------------------


def _ssin_checksum_ok(ssin: str) -> bool:
    base, check = int(ssin[:9]), int(ssin[9:])
    # Born before 2000, or from 2000 on (a "2" is prefixed). The century is not in the number, so
    # accept either form, as the connector's INSZUtils does.
    return check == 97 - (base % 97) or check == 97 - ((2_000_000_000 + base) % 97)


def validate_ssin(value: str) -> str:
    """Return the 11-digit SSIN (national number or BIS number) or raise ``BAD_IDENTIFIER``."""
    ssin = _digits("SSIN", value)
    if len(ssin) != 11:
        raise _bad(f"SSIN {ssin}: must have 11 digits")
    month, day = int(ssin[2:4]), int(ssin[4:6])
    # Month + 20 / + 40 marks a BIS number; 0 means unknown.
    if not (month <= 12 or 20 <= month <= 32 or 40 <= month <= 52):
        raise _bad(f"SSIN {ssin}: invalid birth month {month:02d}")
    if day > 31:
        raise _bad(f"SSIN {ssin}: invalid birth day {day:02d}")
    if not _ssin_checksum_ok(ssin):
        raise _bad(f"SSIN {ssin}: wrong check digits")
    return ssin


def is_bis(ssin: str) -> bool:
    """True when ``ssin`` is a valid BIS number (birth month + 20 or + 40)."""
    return int(validate_ssin(ssin)[2:4]) >= 20


# ---------------------------------------------------------------------------------------------------
# CBE
# ---------------------------------------------------------------------------------------------------


def validate_cbe(value: str) -> str:
    """Return the 10-digit CBE enterprise number or raise ``BAD_IDENTIFIER``.

    A 9-digit number (the pre-2005 form) is padded with a leading ``0``; a ``BE`` VAT prefix is allowed.
    """
    raw = value.strip() if isinstance(value, str) else value
    if isinstance(raw, str) and raw[:2].upper() == "BE":
        raw = raw[2:]
    cbe = _digits("CBE", raw)
    if len(cbe) == 9:
        cbe = "0" + cbe
    if len(cbe) != 10:
        raise _bad(f"CBE {cbe}: must have 10 digits")
    if cbe[0] not in "01":
        raise _bad(f"CBE {cbe}: must start with 0 or 1")
    if int(cbe[8:]) != 97 - (int(cbe[:8]) % 97):
        raise _bad(f"CBE {cbe}: wrong check digits")
    return cbe


# ---------------------------------------------------------------------------------------------------
# NIHII
# ---------------------------------------------------------------------------------------------------


def validate_nihii(value: str, length: int = 11) -> str:
    """Return a NIHII number of ``length`` digits (11: care provider, 8: institution) or raise.

    The layout is ``NNNNNN CC [QQQ]`` with ``CC = 97 - (NNNNNN % 97)``; the 8-digit institution rule
    is inferred (ehealth-reference §12.3, unverified on a real institution number).
    """
    if length not in (8, 11):
        raise _bad(f"NIHII length {length}: must be 8 or 11")
    nihii = _digits("NIHII", value)
    if len(nihii) != length:
        raise _bad(f"NIHII {nihii}: must have {length} digits")
    if int(nihii[6:8]) != 97 - (int(nihii[:6]) % 97):
        raise _bad(f"NIHII {nihii}: wrong check digits")
    return nihii


# ---------------------------------------------------------------------------------------------------
# dispatch by type
# ---------------------------------------------------------------------------------------------------


def _type_info(id_type: str) -> IdentifierTypeInfo:
    info = IDENTIFIER_TYPES.get(id_type) if isinstance(id_type, str) else None
    if info is None:
        raise _bad(f"unknown identifier type {id_type!r}")
    return info


def pad_identifier(id_type: str, value: str) -> str:
    """Left-pad ``value`` with ``0`` to the length of ``id_type`` (no check digits: depot lookups)."""
    info = _type_info(id_type)
    # Typed-in separators are accepted by validate_ssin/cbe only: a protocol value is bare digits.
    digits = _digits(f"{info.name} value", value, separators=False)
    if len(digits) > info.length:
        raise _bad(f"{info.name} {digits}: longer than {info.length} digits")
    return digits.rjust(info.length, "0")


def validate_identifier(id_type: str, value: str) -> str:
    """Pad ``value`` to the type's length and verify its check digits; return the padded value."""
    info = _type_info(id_type)
    padded = pad_identifier(id_type, value)
    try:
        if info.kind == "ssin":
            validate_ssin(padded)
        elif info.kind == "cbe":
            validate_cbe(padded)
        elif info.kind == "nihii":
            validate_nihii(padded, info.length)
    except DomainError as exc:
        if info.kind == "cbe" and info.name != "CBE":
            raise _bad(exc.detail.replace("CBE", info.name, 1)) from None
        if info.kind == "nihii" and info.name != "NIHII":
            raise _bad(exc.detail.replace("NIHII", info.name, 1)) from None
        raise
    return padded
