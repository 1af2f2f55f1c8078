"""Authentic sources: CSV imports are all-or-nothing with line numbers; GetActorQualities answers from them."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ehealth_certs.cli.common import EXIT_CODES
from ehealth_certs.cli.main import app
from ehealth_certs.client.eid import signed_request
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.ra.sources import add_mandate, import_organisations, import_professionals
from ehealth_certs.storage.models import Organisation, Professional

pytestmark = pytest.mark.usefixtures("trust_citizen_ca")

GOOD = "79121430944"


def _count(platform, model) -> int:
    with platform.rt.db.read() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_file_with_one_bad_row_imports_nothing_and_names_the_lines(platform) -> None:
    csv = (
        "ssin,first_name,last_name,quality,nihii\n"
        f"{GOOD},Jan,Janssens,doctor,11478761004\n"
        "85073003329,Bad,Checksum,nurse,\n"  # line 3: wrong check digits
        "69022608813,,Empty,pharmacist,\n"  # line 4: empty first name
        "64032764903,Ok,Person,dentist,12345678111\n"  # line 5: bad NIHII
    ).encode()
    with pytest.raises(DomainError) as err:
        import_professionals(platform.rt, csv, operator="op")
    assert err.value.kind is ErrorKind.BAD_REQUEST
    detail = err.value.detail
    assert "nothing imported" in detail
    assert "line 3" in detail and "85073003329" in detail
    assert "line 4" in detail and "line 5" in detail and "line 2" not in detail
    assert _count(platform, Professional) == 0


def test_header_and_reimport(platform) -> None:
    with pytest.raises(DomainError, match="line 1"):
        import_professionals(platform.rt, b"ssin,name\n1,2\n", operator="op")
    csv = f"ssin,first_name,last_name,quality,nihii\n{GOOD},Jan,Janssens,doctor,\n".encode()
    assert import_professionals(platform.rt, csv, operator="op") == 1
    assert import_professionals(platform.rt, csv, operator="op") == 1  # idempotent: updates, no duplicate
    assert _count(platform, Professional) == 1


def test_organisations_and_mandates(platform) -> None:
    with pytest.raises(DomainError) as err:
        import_organisations(
            platform.rt, b"type,number,name\nCBE,0809394428,BAD\nXYZ,1,UNKNOWN\n", operator="op"
        )
    assert "line 2" in err.value.detail and "line 3" in err.value.detail
    assert _count(platform, Organisation) == 0
    import_organisations(platform.rt, b"type,number,name\nCBE,809394427,eHealth-platform\n", operator="op")
    with platform.rt.db.read() as s:
        assert s.execute(select(Organisation.number)).scalar_one() == "0809394427"  # zero-padded
    with pytest.raises(DomainError) as missing:
        add_mandate(platform.rt, ssin=GOOD, id_type="CBE", number="0406798006", operator="op")
    assert missing.value.kind is ErrorKind.NOT_FOUND
    add_mandate(platform.rt, ssin=GOOD, id_type="CBE", number="0809394427", operator="op")


def test_actor_qualities_answer_from_the_authentic_source(
    platform, clock, eid_factory, tmp_path: Path
) -> None:
    person = eid_factory(GOOD, tmp=tmp_path)
    csv = f"ssin,first_name,last_name,quality,nihii\n{GOOD},Jan,Janssens,doctor,11478761004\n".encode()
    import_professionals(platform.rt, csv, operator="op")
    import_organisations(platform.rt, b"type,number,name\nCBE,0809394427,EHEALTH-PLATFORM\n", operator="op")
    add_mandate(platform.rt, ssin=GOOD, id_type="CBE", number="0809394427", operator="op")
    token = signed_request(person.card, "authentication", {"ssin": GOOD}, now=clock.now())
    answer = platform.certra.actor_qualities(Environment.PRODUCTION, token)
    assert answer["naturalPersonAuthorization"] is True
    assert answer["qualities"] == [{"quality": "doctor", "nihii": "11478761004"}]
    assert answer["organizationAuthorization"] == [
        {"name": "EHEALTH-PLATFORM", "identifier": {"type": "CBE", "value": "0809394427"}}
    ]
    # the Signature key is the wrong key for GetActorQualities; someone else's SSIN is refused
    with pytest.raises(DomainError) as wrong_key:
        platform.certra.actor_qualities(
            Environment.PRODUCTION, signed_request(person.card, "signature", {"ssin": GOOD}, now=clock.now())
        )
    assert wrong_key.value.kind is ErrorKind.FORBIDDEN
    with pytest.raises(DomainError) as other:
        platform.certra.actor_qualities(
            Environment.PRODUCTION,
            signed_request(person.card, "authentication", {"ssin": "69022608813"}, now=clock.now()),
        )
    assert other.value.kind is ErrorKind.NOT_ENTITLED


def test_cli_import_reports_line_numbers_with_a_bad_input_exit_code(
    settings, platform, tmp_path: Path
) -> None:
    bad = tmp_path / "pros.csv"
    bad.write_text(
        f"ssin,first_name,last_name,quality,nihii\n{GOOD},Jan,Janssens,doctor,\n12345678901,X,Y,nurse,\n"
    )
    env = {
        "EHCERTS_DATA_DIR": str(settings.data_dir),
        "EHCERTS_DATABASE_URL": settings.resolved_database_url,
        "EHCERTS_CA_PASSPHRASE": settings.ca_passphrase.get_secret_value(),
    }
    result = CliRunner().invoke(app, ["admin", "import", "professionals", str(bad)], env=env)
    assert result.exit_code == EXIT_CODES[ErrorKind.BAD_REQUEST], result.output
    assert "line 3" in result.output and result.output.count("\n") == 1
    assert _count(platform, Professional) == 0
