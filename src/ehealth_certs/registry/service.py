"""The service registry: a catalogue of web services, their versions, endpoints and interface documents,
and the e-mail subscribers told about every change.

Every change and the mails announcing it are written in ONE transaction (the outbox), so a change is
never announced without happening, nor happens without being announced. Link tokens are split into a
public selector (finds the row) and a secret verifier, of which only the SHA-256 is stored and which is
compared in constant time.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.notify.outbox import Outbox
from ehealth_certs.registry.builtin import ServiceSpec, platform_services
from ehealth_certs.registry.states import SUBSCRIPTIONS, SubscriptionStatus, VersionStatus, transition
from ehealth_certs.runtime import Runtime
from ehealth_certs.storage.models.registry import (
    RegistryDocument,
    RegistryEndpoint,
    RegistrySubscription,
    RegistryToken,
    RegistryVersion,
)
from ehealth_certs.storage.models.registry import (
    RegistryService as ServiceRow,
)

CONFIRM_VALIDITY = timedelta(hours=48)
# One confirmation mail per address per window: the public subscribe endpoint cannot be used to
# flood somebody's mailbox.
CONFIRM_RESEND_AFTER = timedelta(minutes=15)
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024
BINDINGS = ("rest", "soap", "http")
PLATFORM_OWNER = "platform"
TOPIC_CHANGE = "registry.change"
TOPIC_CONFIRM = "registry.confirm"

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$")
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_MEDIA_TYPES = {
    "wsdl": "application/xml",
    "xsd": "application/xml",
    "xml": "application/xml",
    "json": "application/json",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "pdf": "application/pdf",
}
_XML_TYPES = {"wsdl", "xsd", "xml"}
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True)
class Document:
    path: str
    media_type: str
    content: bytes
    sha256: str


@dataclass
class Change:
    """What one operation changed on one service version; becomes one mail per confirmed subscriber."""

    service: str
    title: str
    version: str
    summary: str
    lines: list[str] = field(default_factory=list)


# validation ------------------------------------------------------------------------------------
def _name(value: str) -> str:
    if not _NAME.match(value):
        raise DomainError(ErrorKind.BAD_REQUEST, f"service name {value!r}: use 2-64 of a-z, 0-9 and '-'")
    return value


def _version(value: str) -> str:
    if not _VERSION.match(value):
        raise DomainError(ErrorKind.BAD_REQUEST, f"version {value!r}: use up to 32 of A-Z a-z 0-9 . _ -")
    return value


def _binding(value: str) -> str:
    if value not in BINDINGS:
        raise DomainError(ErrorKind.BAD_REQUEST, f"binding {value!r}: one of {', '.join(BINDINGS)}")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(value) > 500
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"URL {value!r}: an absolute http(s) URL of at most 500 characters"
        )
    return value


def _document_path(value: str) -> str:
    segments = value.split("/")
    if len(value) > 300 or not all(_SEGMENT.match(s) and s not in (".", "..") for s in segments):
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"document path {value!r}: relative, segments of A-Z a-z 0-9 . _ -"
        )
    return value


def _media_type(path: str, content: bytes) -> str:
    ext = path.rpartition(".")[2].lower()
    if ext not in _MEDIA_TYPES:
        raise DomainError(
            ErrorKind.BAD_REQUEST,
            f"document {path!r}: type .{ext} not accepted ({', '.join(sorted(_MEDIA_TYPES))})",
        )
    if len(content) > MAX_DOCUMENT_BYTES:
        raise DomainError(
            ErrorKind.PAYLOAD_TOO_LARGE, f"document {path!r} is larger than {MAX_DOCUMENT_BYTES} bytes"
        )
    if ext in _XML_TYPES:
        from lxml import etree

        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            etree.fromstring(content, parser)
        except etree.XMLSyntaxError as exc:
            raise DomainError(
                ErrorKind.BAD_REQUEST, f"document {path!r} is not well-formed XML: {exc}"
            ) from exc
    return _MEDIA_TYPES[ext]


def normalise_email(value: str) -> str:
    value = value.strip()
    if len(value) > 254 or not _EMAIL.match(value):
        raise DomainError(ErrorKind.BAD_REQUEST, "not a valid e-mail address")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def _environment(value: Environment | str) -> Environment:
    try:
        return Environment(value)
    except ValueError as exc:
        raise DomainError(
            ErrorKind.BAD_REQUEST, f"unknown environment {value!r} (acceptance or production)"
        ) from exc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RegistryService:
    def __init__(self, rt: Runtime, outbox: Outbox) -> None:
        self._rt = rt
        self._outbox = outbox

    @property
    def _base(self) -> str:
        return self._rt.settings.base_url

    # ------------------------------------------------------------------------------------------
    # the platform's own services
    # ------------------------------------------------------------------------------------------
    def register_platform_services(self) -> list[Change]:
        """Bring the built-in services in line with this process's base URL and bundled documents.

        Idempotent: a second start with the same settings changes (and announces) nothing.
        """
        specs = platform_services(self._base)
        try:
            return self._sync(specs)
        except IntegrityError:
            # another process started at the same moment and inserted first; its rows are ours now
            return self._sync(specs)

    def _sync(self, specs: list[ServiceSpec]) -> list[Change]:
        changes: list[Change] = []
        with self._rt.db.transaction() as s:
            now = self._rt.clock.now()
            for spec in specs:
                svc = s.execute(select(ServiceRow).where(ServiceRow.name == spec.name)).scalar_one_or_none()
                if svc is None:
                    svc = ServiceRow(
                        name=spec.name,
                        title=spec.title,
                        description=spec.description,
                        protocol=spec.protocol,
                        documentation=list(spec.documentation),
                        owner=PLATFORM_OWNER,
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(svc)
                    s.flush()
                ver = self._find_version(s, svc, spec.version)
                if ver is None:
                    ver = self._insert_version(
                        s, svc, spec.version, VersionStatus.ACTIVE, "", spec.endpoints, spec.documents
                    )
                    change = Change(
                        svc.name, svc.title, ver.version, "new version", self._version_lines(s, ver)
                    )
                else:
                    change = Change(svc.name, svc.title, ver.version, "platform configuration changed")
                    for (env, binding), url in spec.endpoints.items():
                        line = self._put_endpoint(s, ver, env, binding, url)
                        if line:
                            change.lines.append(line)
                    for path, content in spec.documents.items():
                        line = self._put_document(s, ver, path, content)
                        if line:
                            change.lines.append(line)
                    if not change.lines:
                        continue
                changes.append(change)
                self._rt.audit.append(
                    s,
                    actor="system",
                    action="registry.synced",
                    obj=f"registry/{svc.name}/{ver.version}",
                    summary=change.summary,
                    changes=change.lines,
                )
                self._announce(s, change)
        return changes

    # ------------------------------------------------------------------------------------------
    # operator writes (CLI)
    # ------------------------------------------------------------------------------------------
    def add_service(
        self,
        *,
        name: str,
        title: str,
        protocol: str,
        description: str = "",
        documentation: list[str] | None = None,
        operator: str,
    ) -> dict[str, Any]:
        name = _name(name)
        if not title.strip():
            raise DomainError(ErrorKind.BAD_REQUEST, "a service needs a title")
        links = [_url(u) for u in documentation or []]
        with self._rt.db.transaction() as s:
            if s.execute(select(ServiceRow.id).where(ServiceRow.name == name)).first():
                raise DomainError(ErrorKind.CONFLICT, f"service {name!r} exists already")
            now = self._rt.clock.now()
            svc = ServiceRow(
                name=name,
                title=title.strip(),
                description=description.strip(),
                protocol=protocol.strip().upper() or "REST",
                documentation=links,
                owner=operator,
                created_at=now,
                updated_at=now,
            )
            s.add(svc)
            s.flush()
            self._rt.audit.append(s, actor=operator, action="registry.service.added", obj=f"registry/{name}")
        # a service without a version has nothing to call yet: subscribers hear of it with its first version
        return self.service(name)

    def add_version(
        self,
        name: str,
        version: str,
        *,
        endpoints: Mapping[tuple[Environment, str], str],
        documents: Mapping[str, bytes] | None = None,
        status: str = VersionStatus.ACTIVE,
        notes: str = "",
        operator: str,
    ) -> dict[str, Any]:
        version = _version(version)
        target = VersionStatus(status) if status in set(VersionStatus) else None
        if target not in (VersionStatus.DRAFT, VersionStatus.ACTIVE):
            raise DomainError(ErrorKind.BAD_REQUEST, "a new version starts as draft or active")
        with self._rt.db.transaction() as s:
            svc = self._get_service(s, name)
            if self._find_version(s, svc, version) is not None:
                raise DomainError(ErrorKind.CONFLICT, f"{name} version {version} exists already")
            ver = self._insert_version(s, svc, version, target, notes, endpoints, documents or {})
            svc.updated_at = self._rt.clock.now()
            change = Change(svc.name, svc.title, version, "new version", self._version_lines(s, ver))
            self._rt.audit.append(
                s,
                actor=operator,
                action="registry.version.added",
                obj=f"registry/{name}/{version}",
                status=target.value,
            )
            self._announce(s, change)
        return self.service(name)

    def set_url(
        self,
        name: str,
        version: str,
        environment: Environment | str,
        url: str,
        *,
        binding: str | None = None,
        operator: str,
    ) -> dict[str, Any]:
        env = _environment(environment)
        url = _url(url)
        with self._rt.db.transaction() as s:
            svc = self._get_service(s, name)
            ver = self._get_version(s, svc, version)
            if binding is None:
                known = sorted({e.binding for e in self._endpoints(s, ver)})
                if len(known) > 1:
                    raise DomainError(
                        ErrorKind.BAD_REQUEST,
                        f"{name} {version} has bindings {', '.join(known)}: say which one (--binding)",
                    )
                binding = known[0] if known else "rest"
            line = self._put_endpoint(s, ver, env, _binding(binding), url)
            if line is None:
                return self.service(name)  # same URL: not a change, nobody is told
            svc.updated_at = self._rt.clock.now()
            change = Change(svc.name, svc.title, ver.version, f"{env.value} URL changed", [line])
            self._rt.audit.append(
                s,
                actor=operator,
                action="registry.url.changed",
                obj=f"registry/{name}/{version}",
                environment=env.value,
                binding=binding,
                url=url,
            )
            self._announce(s, change)
        return self.service(name)

    def set_status(
        self, name: str, version: str, status: VersionStatus, *, operator: str, note: str = ""
    ) -> dict[str, Any]:
        with self._rt.db.transaction() as s:
            svc = self._get_service(s, name)
            ver = self._get_version(s, svc, version)
            old = ver.status
            ver.status = transition(old, status).value
            ver.status_since = svc.updated_at = self._rt.clock.now()
            lines = [f"status: {old} -> {ver.status}"]
            if note.strip():
                lines.append(f"note: {note.strip()}")
            newer = [
                v.version
                for v in self._versions(s, svc)
                if v.status == VersionStatus.ACTIVE and v.id != ver.id
            ]
            if status is VersionStatus.DEPRECATED and newer:
                lines.append(f"active version(s): {', '.join(newer)}")
            change = Change(
                svc.name,
                svc.title,
                ver.version,
                "deprecated" if status is VersionStatus.DEPRECATED else f"status changed to {ver.status}",
                lines,
            )
            self._rt.audit.append(
                s,
                actor=operator,
                action="registry.status.changed",
                obj=f"registry/{name}/{version}",
                old=old,
                new=ver.status,
            )
            self._announce(s, change)
        return self.service(name)

    def deprecate(self, name: str, version: str, *, operator: str, note: str = "") -> dict[str, Any]:
        return self.set_status(name, version, VersionStatus.DEPRECATED, operator=operator, note=note)

    # ------------------------------------------------------------------------------------------
    # public reads (REST, CLI)
    # ------------------------------------------------------------------------------------------
    def list_services(self) -> list[dict[str, Any]]:
        with self._rt.db.read() as s:
            out = []
            for svc in s.scalars(select(ServiceRow).order_by(ServiceRow.name)):
                out.append(
                    {
                        "name": svc.name,
                        "title": svc.title,
                        "protocol": svc.protocol,
                        "description": svc.description,
                        "versions": [
                            {"version": v.version, "status": v.status} for v in self._versions(s, svc)
                        ],
                        "url": self._service_url(svc.name),
                    }
                )
            return out

    def service(self, name: str) -> dict[str, Any]:
        with self._rt.db.read() as s:
            svc = self._get_service(s, name)
            return {
                "name": svc.name,
                "title": svc.title,
                "protocol": svc.protocol,
                "description": svc.description,
                "documentation": list(svc.documentation),
                "owner": svc.owner,
                "createdAt": svc.created_at.isoformat(),
                "updatedAt": svc.updated_at.isoformat(),
                "versions": [self._version_view(s, svc, v) for v in self._versions(s, svc)],
            }

    def document(self, name: str, version: str, path: str) -> Document:
        with self._rt.db.read() as s:
            svc = self._get_service(s, name)
            ver = self._get_version(s, svc, version)
            doc = s.execute(
                select(RegistryDocument).where(
                    RegistryDocument.version_id == ver.id, RegistryDocument.path == path
                )
            ).scalar_one_or_none()
            if doc is None:
                raise DomainError(ErrorKind.NOT_FOUND, f"{name} {version} has no document {path!r}")
            return Document(doc.path, doc.media_type, doc.content, doc.sha256)

    # ------------------------------------------------------------------------------------------
    # subscriptions (public, double opt-in)
    # ------------------------------------------------------------------------------------------
    def subscribe(self, email: str) -> None:
        """Ask for change notices. The answer never tells whether the address was known."""
        email = normalise_email(email)
        # the same address subscribing twice at the same instant: the other request sends the mail
        with contextlib.suppress(IntegrityError):
            self._subscribe(email)

    def _subscribe(self, email: str) -> None:
        with self._rt.db.transaction() as s:
            now = self._rt.clock.now()
            sub = s.execute(
                select(RegistrySubscription).where(RegistrySubscription.email == email)
            ).scalar_one_or_none()
            if sub is None:
                sub = RegistrySubscription(
                    email=email,
                    status=SubscriptionStatus.PENDING.value,
                    created_at=now,
                    confirmation_sent_at=now,
                )
                s.add(sub)
                s.flush()
            elif sub.status == SubscriptionStatus.CONFIRMED or (
                sub.status == SubscriptionStatus.PENDING
                and now - sub.confirmation_sent_at < CONFIRM_RESEND_AFTER
            ):
                return
            else:
                sub.status = SUBSCRIPTIONS.transition(sub.status, SubscriptionStatus.PENDING).value
                sub.confirmation_sent_at = now
                sub.confirmed_at = sub.unsubscribed_at = None
                s.execute(
                    delete(RegistryToken).where(
                        RegistryToken.subscription_id == sub.id, RegistryToken.purpose == "confirm"
                    )
                )
            confirm = self._new_token(s, sub, "confirm", expires_at=now + CONFIRM_VALIDITY)
            unsubscribe = self._new_token(s, sub, "unsubscribe")
            confirm_url = f"{self._base}/api/registry/subscriptions/confirm?token={quote(confirm)}"
            body = (
                "Hello,\n\n"
                f"Somebody (we hope you) asked to receive a mail for every change of the service registry of\n"
                f"{self._base}.\n\n"
                f"To confirm, open this link within {int(CONFIRM_VALIDITY.total_seconds() // 3600)} hours:\n"
                f"  {confirm_url}\n\n"
                "If you did not ask for it, ignore this mail: nothing will be sent to you.\n"
            )
            self._mail(
                s,
                sub.email,
                "[ehealth-certs] confirm your subscription to service registry changes",
                body,
                unsubscribe,
                TOPIC_CONFIRM,
            )

    def confirm(self, token: str) -> dict[str, str]:
        with self._rt.db.transaction() as s:
            tok, sub = self._check_token(s, token, "confirm")
            now = self._rt.clock.now()
            if tok.used_at is not None:
                raise DomainError(ErrorKind.CHALLENGE_INVALID, "this confirmation link was used already")
            if tok.expires_at is not None and now >= tok.expires_at:
                raise DomainError(
                    ErrorKind.CHALLENGE_INVALID, "this confirmation link has expired: subscribe again"
                )
            if sub.status != SubscriptionStatus.PENDING:
                raise DomainError(ErrorKind.CHALLENGE_INVALID, "this confirmation link is no longer valid")
            tok.used_at = now
            sub.status = SUBSCRIPTIONS.transition(sub.status, SubscriptionStatus.CONFIRMED).value
            sub.confirmed_at = now
        return {"status": "confirmed"}

    def unsubscribe(self, token: str) -> dict[str, str]:
        with self._rt.db.transaction() as s:
            _, sub = self._check_token(s, token, "unsubscribe")
            sub.status = SUBSCRIPTIONS.transition(sub.status, SubscriptionStatus.UNSUBSCRIBED).value
            sub.unsubscribed_at = self._rt.clock.now()
            # every link in every mail sent so far dies with the subscription
            s.execute(delete(RegistryToken).where(RegistryToken.subscription_id == sub.id))
        return {"status": "unsubscribed"}

    def subscribers(self) -> list[dict[str, Any]]:
        """Operator view of the subscriptions."""
        with self._rt.db.read() as s:
            return [
                {
                    "email": r.email,
                    "status": r.status,
                    "createdAt": r.created_at.isoformat(),
                    "confirmedAt": r.confirmed_at.isoformat() if r.confirmed_at else None,
                }
                for r in s.scalars(select(RegistrySubscription).order_by(RegistrySubscription.email))
            ]

    # ------------------------------------------------------------------------------------------
    # internals
    # ------------------------------------------------------------------------------------------
    def _new_token(
        self, s: Session, sub: RegistrySubscription, purpose: str, *, expires_at: Any = None
    ) -> str:
        selector = secrets.token_hex(8)
        verifier = secrets.token_urlsafe(32)
        s.add(
            RegistryToken(
                subscription_id=sub.id,
                purpose=purpose,
                selector=selector,
                verifier_sha256=_sha256(verifier.encode()),
                created_at=self._rt.clock.now(),
                expires_at=expires_at,
            )
        )
        return f"{selector}.{verifier}"

    def _check_token(
        self, s: Session, token: str, purpose: str
    ) -> tuple[RegistryToken, RegistrySubscription]:
        invalid = DomainError(
            ErrorKind.CHALLENGE_INVALID, "this link is not valid (mistyped, used or withdrawn)"
        )
        selector, dot, verifier = token.strip().partition(".")
        if not dot or not selector or not verifier or len(token) > 200:
            raise invalid
        tok = s.execute(select(RegistryToken).where(RegistryToken.selector == selector)).scalar_one_or_none()
        # compare even when the selector is unknown, so that both cases take the same time
        matches = hmac.compare_digest(tok.verifier_sha256 if tok else _DUMMY_HASH, _sha256(verifier.encode()))
        if tok is None or not matches or tok.purpose != purpose:
            raise invalid
        sub = s.get(RegistrySubscription, tok.subscription_id)
        assert sub is not None
        return tok, sub

    def _announce(self, s: Session, change: Change) -> None:
        subscribers = s.scalars(
            select(RegistrySubscription).where(
                RegistrySubscription.status == SubscriptionStatus.CONFIRMED.value
            )
        ).all()
        if not subscribers:
            return
        subject = f"[ehealth-certs] {change.service} {change.version}: {change.summary}"
        details = "\n".join(f"            {line}" for line in change.lines)
        body = (
            "Hello,\n\n"
            f"The service registry of {self._base} changed:\n\n"
            f"  Service:  {change.service} ({change.title})\n"
            f"  Version:  {change.version}\n"
            f"  Change:   {change.summary}\n"
            f"{details}\n\n"
            f"Current description: {self._service_url(change.service)}\n"
        )
        for sub in subscribers:
            self._mail(s, sub.email, subject, body, self._new_token(s, sub, "unsubscribe"), TOPIC_CHANGE)

    def _mail(self, s: Session, to: str, subject: str, body: str, unsubscribe_token: str, topic: str) -> None:
        url = f"{self._base}/api/registry/subscriptions/unsubscribe?token={quote(unsubscribe_token)}"
        text = (
            f"{body}\n-- \nYou receive this mail because this address subscribed to registry changes.\n"
            f"Unsubscribe: {url}\n"
        )
        # RFC 8058 one-click: the POST to the same URL unsubscribes without a page to click through
        headers = {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
        self._outbox.enqueue(s, to=to, subject=subject, body=text, topic=topic, headers=headers)

    def _service_url(self, name: str) -> str:
        return f"{self._base}/api/registry/services/{name}"

    def _get_service(self, s: Session, name: str) -> ServiceRow:
        svc = s.execute(select(ServiceRow).where(ServiceRow.name == name)).scalar_one_or_none()
        if svc is None:
            raise DomainError(ErrorKind.NOT_FOUND, f"no service {name!r} in the registry")
        return svc

    def _find_version(self, s: Session, svc: ServiceRow, version: str) -> RegistryVersion | None:
        return s.execute(
            select(RegistryVersion).where(
                RegistryVersion.service_id == svc.id, RegistryVersion.version == version
            )
        ).scalar_one_or_none()

    def _get_version(self, s: Session, svc: ServiceRow, version: str) -> RegistryVersion:
        ver = self._find_version(s, svc, version)
        if ver is None:
            raise DomainError(ErrorKind.NOT_FOUND, f"service {svc.name!r} has no version {version!r}")
        return ver

    def _versions(self, s: Session, svc: ServiceRow) -> list[RegistryVersion]:
        return list(
            s.scalars(
                select(RegistryVersion)
                .where(RegistryVersion.service_id == svc.id)
                .order_by(RegistryVersion.created_at, RegistryVersion.id)
            )
        )

    def _endpoints(self, s: Session, ver: RegistryVersion) -> list[RegistryEndpoint]:
        return list(
            s.scalars(
                select(RegistryEndpoint)
                .where(RegistryEndpoint.version_id == ver.id)
                .order_by(RegistryEndpoint.environment, RegistryEndpoint.binding)
            )
        )

    def _insert_version(
        self,
        s: Session,
        svc: ServiceRow,
        version: str,
        status: VersionStatus,
        notes: str,
        endpoints: Mapping[tuple[Environment, str], str],
        documents: Mapping[str, bytes],
    ) -> RegistryVersion:
        now = self._rt.clock.now()
        ver = RegistryVersion(
            service_id=svc.id,
            version=version,
            status=status.value,
            status_since=now,
            notes=notes.strip(),
            created_at=now,
        )
        s.add(ver)
        s.flush()
        for (env, binding), url in endpoints.items():
            self._put_endpoint(s, ver, _environment(env), _binding(binding), _url(url))
        for path, content in documents.items():
            self._put_document(s, ver, path, content)
        s.flush()
        return ver

    def _put_endpoint(
        self, s: Session, ver: RegistryVersion, env: Environment, binding: str, url: str
    ) -> str | None:
        """Insert or update one endpoint; returns the line describing the change, None if none."""
        ep = s.execute(
            select(RegistryEndpoint).where(
                RegistryEndpoint.version_id == ver.id,
                RegistryEndpoint.environment == env.value,
                RegistryEndpoint.binding == binding,
            )
        ).scalar_one_or_none()
        if ep is None:
            s.add(RegistryEndpoint(version_id=ver.id, environment=env.value, binding=binding, url=url))
            return f"{env.value} {binding} URL: {url} (new)"
        if ep.url == url:
            return None
        old, ep.url = ep.url, url
        return f"{env.value} {binding} URL: {old} -> {url}"

    def _put_document(self, s: Session, ver: RegistryVersion, path: str, content: bytes) -> str | None:
        path = _document_path(path)
        media_type = _media_type(path, content)
        digest = _sha256(content)
        doc = s.execute(
            select(RegistryDocument).where(
                RegistryDocument.version_id == ver.id, RegistryDocument.path == path
            )
        ).scalar_one_or_none()
        if doc is None:
            s.add(
                RegistryDocument(
                    version_id=ver.id, path=path, media_type=media_type, content=content, sha256=digest
                )
            )
            return f"document {path} (new)"
        if doc.sha256 == digest:
            return None
        doc.content, doc.sha256, doc.media_type = content, digest, media_type
        return f"document {path} updated"

    def _version_lines(self, s: Session, ver: RegistryVersion) -> list[str]:
        lines = [f"status: {ver.status}"]
        lines += [f"{e.environment} {e.binding} URL: {e.url}" for e in self._endpoints(s, ver)]
        docs = s.scalars(select(RegistryDocument.path).where(RegistryDocument.version_id == ver.id)).all()
        lines += [f"document {p}" for p in sorted(docs)]
        return lines

    def _version_view(self, s: Session, svc: ServiceRow, ver: RegistryVersion) -> dict[str, Any]:
        endpoints: dict[str, dict[str, str]] = {}
        for e in self._endpoints(s, ver):
            endpoints.setdefault(e.environment, {})[e.binding] = e.url
        docs = s.execute(
            select(RegistryDocument.path, RegistryDocument.media_type, RegistryDocument.sha256)
            .where(RegistryDocument.version_id == ver.id)
            .order_by(RegistryDocument.path)
        ).all()
        base = f"{self._service_url(svc.name)}/versions/{ver.version}/documents/"
        return {
            "version": ver.version,
            "status": ver.status,
            "statusSince": ver.status_since.isoformat(),
            "notes": ver.notes,
            "endpoints": endpoints,
            "documents": [{"path": p, "mediaType": m, "sha256": h, "url": base + p} for p, m, h in docs],
        }
