"""Authentic sources loaded by operators: care professionals, organisations, mandates, acceptance projects.

A CSV file is imported whole or not at all: every bad row is reported with its line number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.identifiers import IDENTIFIER_TYPES, validate_identifier, validate_nihii, validate_ssin
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models import Mandate, Organisation, Professional, Project

PROFESSIONAL_HEADER = ["ssin", "first_name", "last_name", "quality", "nihii"]
ORGANISATION_HEADER = ["type", "number", "name"]
MAX_ROWS = 200_000


def _read_csv(
    data: bytes, header: Sequence[str], parse: Callable[[dict[str, str]], dict[str, Any]]
) -> list[dict[str, Any]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DomainError(ErrorKind.BAD_REQUEST, "the file is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    if not rows or [h.strip().lower() for h in rows[0]] != list(header):
        raise DomainError(ErrorKind.BAD_REQUEST, f"line 1: the header must be {','.join(header)}")
    if len(rows) - 1 > MAX_ROWS:
        raise DomainError(ErrorKind.BAD_REQUEST, f"more than {MAX_ROWS} rows")
    parsed: list[dict[str, Any]] = []
    problems: list[str] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(f"line {lineno}: expected {len(header)} columns, found {len(row)}")
            continue
        try:
            parsed.append(parse({h: c.strip() for h, c in zip(header, row, strict=True)}))
        except DomainError as exc:
            problems.append(f"line {lineno}: {exc.detail}")
    if problems:
        shown = "; ".join(problems[:20]) + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise DomainError(ErrorKind.BAD_REQUEST, f"nothing imported: {shown}", problems=len(problems))
    return parsed


def _professional(row: dict[str, str]) -> dict[str, Any]:
    for field in ("first_name", "last_name", "quality"):
        if not row[field]:
            raise DomainError(ErrorKind.BAD_REQUEST, f"{field} is empty")
    quality = row["quality"].lower()
    if not quality.replace("_", "").isalpha():
        raise DomainError(ErrorKind.BAD_REQUEST, f"quality {row['quality']!r} is not a quality name")
    return {
        "ssin": validate_ssin(row["ssin"]),
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "quality": quality,
        "nihii": validate_nihii(row["nihii"], 11) if row["nihii"] else None,
    }


def _organisation(row: dict[str, str]) -> dict[str, Any]:
    id_type = row["type"].upper()
    if id_type not in IDENTIFIER_TYPES or id_type == "SSIN":
        raise DomainError(ErrorKind.BAD_IDENTIFIER, f"unknown organisation identifier type {row['type']!r}")
    if not row["name"]:
        raise DomainError(ErrorKind.BAD_REQUEST, "name is empty")
    return {"id_type": id_type, "number": validate_identifier(id_type, row["number"]), "name": row["name"]}


def import_professionals(rt: Runtime, data: bytes, *, operator: str) -> int:
    rows = _read_csv(data, PROFESSIONAL_HEADER, _professional)
    with rt.db.transaction() as s:
        for r in rows:
            existing = s.execute(
                select(Professional).where(
                    Professional.ssin == r["ssin"], Professional.quality == r["quality"]
                )
            ).scalar_one_or_none()
            if existing is None:
                s.add(Professional(**r))
            else:
                existing.first_name, existing.last_name, existing.nihii = (
                    r["first_name"],
                    r["last_name"],
                    r["nihii"],
                )
        rt.audit.append(s, actor=operator, action="source.imported", obj="professionals", rows=len(rows))
    return len(rows)


def import_organisations(rt: Runtime, data: bytes, *, operator: str) -> int:
    rows = _read_csv(data, ORGANISATION_HEADER, _organisation)
    with rt.db.transaction() as s:
        for r in rows:
            existing = s.execute(
                select(Organisation).where(
                    Organisation.id_type == r["id_type"], Organisation.number == r["number"]
                )
            ).scalar_one_or_none()
            if existing is None:
                s.add(Organisation(**r))
            else:
                existing.name = r["name"]
        rt.audit.append(s, actor=operator, action="source.imported", obj="organisations", rows=len(rows))
    return len(rows)


def add_mandate(rt: Runtime, *, ssin: str, id_type: str, number: str, operator: str) -> None:
    ssin = validate_ssin(ssin)
    id_type = id_type.upper()
    number = validate_identifier(id_type, number)
    with rt.db.transaction() as s:
        org = s.execute(
            select(Organisation).where(Organisation.id_type == id_type, Organisation.number == number)
        ).scalar_one_or_none()
        if org is None:
            raise DomainError(
                ErrorKind.NOT_FOUND, f"organisation {id_type}={number} is not in the authentic source"
            )
        if s.execute(select(Mandate).where(Mandate.ssin == ssin, Mandate.organisation_id == org.id)).first():
            return
        s.add(Mandate(ssin=ssin, organisation_id=org.id))
        rt.audit.append(s, actor=operator, action="mandate.added", obj=f"{id_type}={number}", ssin=ssin)


def add_project(
    rt: Runtime, *, name: str, ssins: Sequence[str], test_cases: Sequence[str], operator: str
) -> int:
    if not name.strip() or len(name) > 100:
        raise DomainError(ErrorKind.BAD_REQUEST, "a project needs a name of 1 to 100 characters")
    if not ssins:
        raise DomainError(ErrorKind.BAD_REQUEST, "a project needs at least one integrator SSIN")
    clean = sorted({validate_ssin(x) for x in ssins})
    with rt.db.transaction() as s:
        if s.execute(select(Project).where(Project.name == name)).first():
            raise DomainError(ErrorKind.CONFLICT, f"a project named {name!r} exists already")
        project = Project(
            name=name,
            ssins=clean,
            test_cases=list(test_cases),
            created_by=operator,
            created_at=rt.clock.now(),
        )
        s.add(project)
        s.flush()
        rt.audit.append(s, actor=operator, action="project.added", obj=f"project/{name}", ssins=clean)
        return project.id
