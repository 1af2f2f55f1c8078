"""Belgian identifiers: the vectors of ehealth-reference §12 and the padding rules of §6.3."""

from __future__ import annotations

import pytest

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identifiers import (
    IDENTIFIER_TYPES,
    IdentifierTypeInfo,
    is_bis,
    pad_identifier,
    validate_cbe,
    validate_identifier,
    validate_nihii,
    validate_ssin,
)

VALID_SSINS = [
    "85073003328",  # pre-2000
    "17073003384",  # post-2000 (prefix 2)
    "98472899765",  # BIS, month 47, pre-2000
    "01490700185",  # BIS, month 49, post-2000
    "79121430944",
    "69022608813",
    "64032764903",
    "74010414733",
    "76020727360",
    "82051234978",
    "79021802145",
    "76120902527",
]
INVALID_SSINS = ["85073003329", "12345678901", "00000000202", "00000000101"]

VALID_CBES = ["0809394427", "0406798006", "0403019261", "0428759497", "0635769870"]
INVALID_CBES = ["0431150351", "0809394428"]

VALID_NIHII11 = ["11478761004", "19006951001", "84450277111"]
INVALID_NIHII11 = ["12345678111"]


def _bad(fn: object, *args: object) -> DomainError:
    with pytest.raises(DomainError) as info:
        fn(*args)  # type: ignore[operator]
    assert info.value.kind is ErrorKind.BAD_IDENTIFIER
    return info.value


# --- SSIN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ssin", VALID_SSINS)
def test_valid_ssins(ssin: str) -> None:
    assert validate_ssin(ssin) == ssin
    assert validate_identifier("SSIN", ssin) == ssin


@pytest.mark.parametrize("ssin", INVALID_SSINS)
def test_invalid_ssins(ssin: str) -> None:
    err = _bad(validate_ssin, ssin)
    assert ssin in err.detail
    _bad(validate_identifier, "SSIN", ssin)


def test_ssin_error_names_the_number_and_the_reason() -> None:
    err = _bad(validate_ssin, "85073003329")
    assert err.detail == "SSIN 85073003329: wrong check digits"


def test_ssin_month_34_is_refused_for_the_month() -> None:
    assert "month" in _bad(validate_ssin, "12345678901").detail


def test_ssin_separators_are_removed() -> None:
    assert validate_ssin("85.07.30-033 28") == "85073003328"


@pytest.mark.parametrize("value", ["8507300332", "850730033288", "8507300332x", "", "８５０７３００３３２８"])
def test_ssin_shape(value: str) -> None:
    _bad(validate_ssin, value)


def test_bis() -> None:
    assert is_bis("98472899765")
    assert is_bis("01490700185")
    assert not is_bis("85073003328")
    assert not is_bis("17073003384")
    _bad(is_bis, "85073003329")


def test_bis_month_plus_20_with_fresh_check_digits() -> None:
    # A BIS number for someone of unknown sex born in July 1985: month 27.
    base = 852730033
    number = f"{base:09d}{97 - base % 97:02d}"
    assert validate_ssin(number) == number
    assert is_bis(number)


def test_post_2000_check_digits_only_valid_with_the_2000_prefix() -> None:
    base = 170730033
    pre_2000 = f"{base:09d}{97 - base % 97:02d}"
    post_2000 = f"{base:09d}{97 - (2_000_000_000 + base) % 97:02d}"
    assert pre_2000 != post_2000
    assert validate_ssin(post_2000) == "17073003384"
    assert validate_ssin(pre_2000) == pre_2000


def test_ssin_is_padded_by_type() -> None:
    # Born in 2001: the leading 0 is easily lost by spreadsheets.
    assert validate_identifier("SSIN", "1490700185") == "01490700185"


# --- CBE -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cbe", VALID_CBES)
def test_valid_cbes(cbe: str) -> None:
    assert validate_cbe(cbe) == cbe
    assert validate_identifier("CBE", cbe) == cbe


@pytest.mark.parametrize("cbe", INVALID_CBES)
def test_invalid_cbes(cbe: str) -> None:
    assert cbe in _bad(validate_cbe, cbe).detail
    _bad(validate_identifier, "CBE", cbe)
    _bad(validate_identifier, "CBE-CONSORTIUM", cbe)


def test_cbe_nine_digits_and_formatting() -> None:
    assert validate_cbe("809394427") == "0809394427"
    assert validate_cbe("0809.394.427") == "0809394427"
    assert validate_cbe("BE0809394427") == "0809394427"
    assert validate_identifier("CBE", "809394427") == "0809394427"


def test_cbe_first_digit() -> None:
    # 2809394427 would pass mod 97 for some values; the first digit must be 0 or 1.
    first8 = 28093944
    number = f"{first8:08d}{97 - first8 % 97:02d}"
    assert "start with 0 or 1" in _bad(validate_cbe, number).detail


# --- NIHII ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("nihii", VALID_NIHII11)
def test_valid_nihii11(nihii: str) -> None:
    assert validate_nihii(nihii) == nihii
    assert validate_identifier("NIHII11", nihii) == nihii


@pytest.mark.parametrize("nihii", INVALID_NIHII11)
def test_invalid_nihii11(nihii: str) -> None:
    assert nihii in _bad(validate_nihii, nihii).detail
    _bad(validate_identifier, "NIHII11", nihii)


def test_nihii_institution_eight_digits() -> None:
    assert validate_nihii("11478761", 8) == "11478761"
    assert validate_identifier("NIHII-HOSPITAL", "11478761") == "11478761"
    err = _bad(validate_identifier, "NIHII-HOSPITAL", "11478762")
    assert "NIHII-HOSPITAL 11478762" in err.detail
    _bad(validate_nihii, "11478761004", 8)
    _bad(validate_nihii, "11478761", 9)


# --- table and padding ---------------------------------------------------------------------------


def test_table_is_complete() -> None:
    expected = {
        "CBE": 10, "CBE-TREAT_CENTER": 10, "SSIN": 11, "NIHII": 8, "NIHII11": 11, "NIHII-PHARMACY": 8,
        "NIHII-LABO": 8, "NIHII-RETIREMENT": 8, "NIHII-OTD_PHARMACY": 8, "NIHII-HOSPITAL": 8,
        "NIHII-GROUP": 8, "EHP": 10, "NIHII-PALLIATIVE_CARE": 8, "NIHII-OFFICE_DENTISTS": 8,
        "NIHII-MEDICAL_HOUSE": 8, "NIHII-OFFICE_DOCTORS": 8, "NIHII-GROUP_DOCTORS": 8, "NIHII-OF_BAND": 8,
        "NIHII-PSYCH_HOUSE": 8, "NIHII-PROT_ACC": 8, "NIHII-HOME_SERVICES": 8, "NIHII-OF_PHYSIOS": 8,
        "SITE": 4, "SITESMUR": 10, "SITEPIT": 10, "CBE-CONSORTIUM": 10, "NIHII-GUARD_POST": 8,
        "EHP-CTRL_ORGANISM": 10, "NIHII-BELRAI": 8, "NIHII-BELRAI_SCREEN": 8, "NIHII-GROUP_MIDWIVES": 8,
        "NIHII-SORTING_CENTER": 8, "HUB": 10,
    }  # fmt: skip
    assert {name: info.length for name, info in IDENTIFIER_TYPES.items()} == expected
    for name, info in IDENTIFIER_TYPES.items():
        assert isinstance(info, IdentifierTypeInfo)
        assert info.name == name
        assert info.kind in {"ssin", "cbe", "nihii", "other"}
    assert IDENTIFIER_TYPES["SSIN"].kind == "ssin"
    assert IDENTIFIER_TYPES["CBE-TREAT_CENTER"].kind == "cbe"
    assert IDENTIFIER_TYPES["NIHII-PHARMACY"].kind == "nihii"
    assert IDENTIFIER_TYPES["HUB"] == IdentifierTypeInfo("HUB", 10, "other")
    with pytest.raises(TypeError):
        IDENTIFIER_TYPES["NEW"] = IdentifierTypeInfo("NEW", 1, "other")  # type: ignore[index]


def test_padding_examples() -> None:
    assert pad_identifier("CBE", "809394427") == "0809394427"
    assert pad_identifier("SITE", "12") == "0012"
    assert validate_identifier("SITE", "12") == "0012"
    assert validate_identifier("EHP", "42") == "0000000042"


def test_padding_does_not_check_digits() -> None:
    # Fixture numbers: not valid SSINs, but a depot lookup must still find them.
    assert pad_identifier("SSIN", "202") == "00000000202"
    assert pad_identifier("NIHII11", "00000000202") == "00000000202"
    _bad(validate_identifier, "NIHII11", "202")


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("SITE", "12345"),
        ("CBE", "08093944270"),
        ("SITE", "1a"),
        ("SITE", "-12"),
        ("UNKNOWN", "1"),
        ("cbe", "1"),
    ],
)
def test_padding_refusals(id_type: str, value: str) -> None:
    _bad(pad_identifier, id_type, value)
    _bad(validate_identifier, id_type, value)


def test_unknown_type_is_named() -> None:
    assert "'FOO'" in _bad(validate_identifier, "FOO", "1").detail
