"""Consuming side: verify a trusted list and install its anchors as a truststore, fail-closed.

Directory layout written by ``update_truststore`` (``current`` is swapped atomically, by symlink rename):

    <directory>/current   -> releases/seq-<n>-<sha8>-<x>/  tl.xml tl.sha2 truststore.pem/.p12 state.json
    <directory>/previous  -> the release that ``current`` replaced (the previous list is kept)

Point Java at ``<directory>/current/truststore.p12`` (PKCS#12, trusted-certificate entries) and PEM users at
``<directory>/current/truststore.pem``. On any failure nothing under ``current`` changes and a
``DomainError`` says why; the installed sequence number never goes down.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki.tsl import (
    DEFAULT_MAX_BYTES,
    VerifiedList,
    fingerprint,
    format_time,
    parse_sha2_file,
    parse_time,
    pointer_signers,
    verify_trusted_list,
)

__all__ = [
    "InstalledState",
    "UpdateResult",
    "VerifiedList",
    "fetch_url",
    "installed_state",
    "pointer_signers",
    "sha2_url_for",
    "update_truststore",
    "verify_trusted_list",
]

Fetch = Callable[[str], bytes]
MAX_SHA2_BYTES = 1024
_CURRENT, _PREVIOUS, _RELEASES = "current", "previous", "releases"
_UNSAFE_ALIAS = re.compile(r"[^a-z0-9._-]+")


@dataclass
class UpdateResult:
    changed: bool
    sequence_number: int
    added: list[str]  # "<subject RFC 4514> sha256:<fingerprint>" of anchors new in this list
    removed: list[str]
    message: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InstalledState:
    sequence_number: int
    list_id: str | None
    issue_time: datetime
    next_update: datetime
    sha256: str
    anchors: dict[str, str]  # fingerprint -> subject
    path: Path


# -- fetching ---------------------------------------------------------------------------------------
def sha2_url_for(url: str) -> str:
    """``…/tl.xml`` → ``…/tl.sha2`` (the eHealth and DSS convention)."""
    return url[:-4] + ".sha2" if url.endswith(".xml") else url + ".sha2"


def fetch_url(url: str, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 30.0) -> bytes:
    """GET an ``https:``/``http:`` URL or read a ``file:`` URL / plain path, refusing more than ``max_bytes``.

    A missing resource raises NOT_FOUND (so a missing ``.sha2`` can be told apart from an outage).
    """
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        path = Path(unquote(parts.path) if parts.scheme else url)
        try:
            with path.open("rb") as fh:
                data = fh.read(max_bytes + 1)
        except FileNotFoundError as exc:
            raise DomainError(ErrorKind.NOT_FOUND, f"{url} does not exist") from exc
        except OSError as exc:
            raise DomainError(ErrorKind.UNAVAILABLE, f"cannot read {url}: {exc.strerror}") from exc
    elif parts.scheme in ("http", "https"):
        import httpx

        try:
            with httpx.stream("GET", url, timeout=timeout, follow_redirects=False) as response:
                if response.status_code == 404:
                    raise DomainError(ErrorKind.NOT_FOUND, f"{url} answered 404")
                if response.status_code != 200:
                    raise DomainError(ErrorKind.UNAVAILABLE, f"{url} answered HTTP {response.status_code}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        break
                    chunks.append(chunk)
                data = b"".join(chunks) if size <= max_bytes else b"\0" * (max_bytes + 1)
        except httpx.HTTPError as exc:
            raise DomainError(ErrorKind.UNAVAILABLE, f"cannot fetch {url}: {type(exc).__name__}") from exc
    else:
        raise DomainError(ErrorKind.CONFIGURATION, f"unsupported trusted-list URL scheme {parts.scheme!r}")
    if len(data) > max_bytes:
        raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"{url} is larger than {max_bytes} bytes")
    return data


def _call_fetch(fetch: Fetch, url: str) -> bytes:
    try:
        return fetch(url)
    except DomainError:
        raise
    except FileNotFoundError as exc:
        raise DomainError(ErrorKind.NOT_FOUND, f"{url} does not exist") from exc
    except Exception as exc:  # a caller-supplied fetcher may raise anything; fail closed with the reason
        raise DomainError(ErrorKind.UNAVAILABLE, f"cannot fetch {url}: {type(exc).__name__}: {exc}") from exc


# -- installed state --------------------------------------------------------------------------------
def installed_state(directory: Path) -> InstalledState | None:
    """What ``current`` holds, or None before the first install."""
    current = directory / _CURRENT
    state_file = current / "state.json"
    if not state_file.exists():
        return None
    try:
        raw = json.loads(state_file.read_text("utf-8"))
        return InstalledState(
            sequence_number=int(raw["sequence_number"]),
            list_id=raw.get("list_id"),
            issue_time=parse_time(raw["issue_time"], "installed issue time"),
            next_update=parse_time(raw["next_update"], "installed NextUpdate"),
            sha256=str(raw["sha256"]),
            anchors=dict(raw["anchors"]),
            path=current.resolve(),
        )
    except (KeyError, ValueError, TypeError, OSError) as exc:
        # Never treat a damaged state as "nothing installed": that would allow a rollback.
        raise DomainError(
            ErrorKind.CONFIGURATION, f"installed truststore state {state_file} is unreadable"
        ) from exc


def _label(certificate: x509.Certificate) -> str:
    return f"{certificate.subject.rfc4514_string()} sha256:{fingerprint(certificate)}"


def _alias(certificate: x509.Certificate, used: set[str]) -> str:
    cns = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    base = _UNSAFE_ALIAS.sub("-", str(cns[0].value).lower() if cns else "anchor").strip("-")[:48] or "anchor"
    alias = f"{base}-{fingerprint(certificate)[:8]}"  # keytool lower-cases aliases; keep them unique anyway
    while alias in used:
        alias += "x"
    used.add(alias)
    return alias


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _swap_link(directory: Path, name: str, target: str) -> None:
    tmp = directory / f".{name}.{uuid.uuid4().hex}"
    os.symlink(target, tmp)
    os.replace(tmp, directory / name)  # rename(2) is atomic: readers see the old or the new release


def _build_release(
    release: Path,
    *,
    xml: bytes,
    verified: VerifiedList,
    anchors: list[x509.Certificate],
    password: bytes | None,
    now: datetime,
) -> None:
    release.mkdir(parents=True)
    _write(release / "tl.xml", xml)
    _write(release / "tl.sha2", verified.sha256.encode("ascii") + b"\n")
    _write(release / "truststore.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in anchors))
    used: set[str] = set()
    entries = [pkcs12.PKCS12Certificate(c, _alias(c, used).encode()) for c in anchors]
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    _write(release / "truststore.p12", pkcs12.serialize_java_truststore(entries, encryption))
    state = {
        "sequence_number": verified.sequence_number,
        "list_id": verified.list_id,
        "issue_time": format_time(verified.issue_time),
        "next_update": format_time(verified.next_update),
        "sha256": verified.sha256,
        "signer": fingerprint(verified.signer),
        "installed_at": format_time(now),
        "anchors": {fingerprint(c): c.subject.rfc4514_string() for c in anchors},
    }
    # state.json last: a release without it is incomplete and is never linked.
    _write(release / "state.json", json.dumps(state, indent=2, sort_keys=True).encode())
    _fsync_dir(release)


def _prune(directory: Path) -> None:
    keep = {(directory / name).resolve() for name in (_CURRENT, _PREVIOUS) if (directory / name).exists()}
    releases = directory / _RELEASES
    for entry in releases.iterdir():
        if entry.resolve() not in keep:
            shutil.rmtree(entry, ignore_errors=True)


# -- the updater ------------------------------------------------------------------------------------
def update_truststore(
    *,
    url: str,
    pinned_signers: Sequence[x509.Certificate],
    directory: Path,
    now: datetime,
    fetch: Fetch | None = None,
    truststore_password: bytes | None = None,
    service_types: Sequence[str] | None = None,
    expected_territory: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> UpdateResult:
    """Fetch, verify and install the list at ``url`` into ``directory`` (guide §8 checklist).

    The ``.sha2`` next to the list is fetched first; when it matches the installed list (still before its
    NextUpdate) the list itself is not downloaded. ``service_types`` limits the anchors (default: every
    service whose status grants trust). Raises ``DomainError`` and leaves the installed truststore alone on
    any failure; a list whose sequence number is not above the installed one is refused (REPLAY).
    """
    directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(directory):
        return _update_locked(
            url=url,
            pinned_signers=pinned_signers,
            directory=directory,
            now=now,
            fetcher=fetch or (lambda u: fetch_url(u, max_bytes=max_bytes)),
            sha2_fetcher=fetch or (lambda u: fetch_url(u, max_bytes=MAX_SHA2_BYTES)),
            truststore_password=truststore_password,
            service_types=service_types,
            expected_territory=expected_territory,
            max_bytes=max_bytes,
        )


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """One updater at a time per directory (two cron runs must not interleave their link swaps)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DomainError(
                ErrorKind.CONFLICT, f"another truststore update is running in {directory}"
            ) from exc
        yield
    finally:
        os.close(fd)


def _update_locked(
    *,
    url: str,
    pinned_signers: Sequence[x509.Certificate],
    directory: Path,
    now: datetime,
    fetcher: Fetch,
    sha2_fetcher: Fetch,
    truststore_password: bytes | None,
    service_types: Sequence[str] | None,
    expected_territory: str | None,
    max_bytes: int,
) -> UpdateResult:
    state = installed_state(directory)

    published_sha: str | None
    try:
        published_sha = parse_sha2_file(_call_fetch(sha2_fetcher, sha2_url_for(url)))
    except DomainError as exc:
        if exc.kind is not ErrorKind.NOT_FOUND:
            raise
        published_sha = None  # no .sha2 published: always download, compare by content
    if state is not None and published_sha == state.sha256:
        if now < state.next_update:
            return UpdateResult(
                False, state.sequence_number, [], [], "unchanged (.sha2 matches the installed list)"
            )
        raise DomainError(
            ErrorKind.EXPIRED,
            f"installed list {state.sequence_number} passed its NextUpdate {format_time(state.next_update)}"
            " and the publisher still serves it; keeping the old truststore",
        )

    xml = _call_fetch(fetcher, url)
    if len(xml) > max_bytes:
        raise DomainError(ErrorKind.PAYLOAD_TOO_LARGE, f"{url} is larger than {max_bytes} bytes")
    actual_sha = hashlib.sha256(xml).hexdigest()
    if published_sha is not None and actual_sha != published_sha:
        raise DomainError(
            ErrorKind.BAD_SIGNATURE,
            f"SHA-256 of the downloaded list ({actual_sha}) differs from its .sha2 ({published_sha})",
        )
    if state is not None and actual_sha == state.sha256 and now < state.next_update:
        return UpdateResult(
            False, state.sequence_number, [], [], "unchanged (same bytes as the installed list)"
        )

    verified = verify_trusted_list(
        xml,
        pinned_signers=pinned_signers,
        now=now,
        max_bytes=max_bytes,
        installed_sequence=state.sequence_number if state else None,
        expected_territory=expected_territory,
    )
    anchors = verified.trust_anchors(service_types)
    if not anchors:
        # An empty truststore would silently break every client (open-eid/SiVa #64): refuse it.
        raise DomainError(ErrorKind.MALFORMED_MESSAGE, "the verified list grants trust to no certificate")

    releases = directory / _RELEASES
    releases.mkdir(exist_ok=True)
    staging = releases / f".staging-{uuid.uuid4().hex}"
    release = releases / f"seq-{verified.sequence_number:06d}-{actual_sha[:8]}-{uuid.uuid4().hex[:6]}"
    try:
        _build_release(
            staging, xml=xml, verified=verified, anchors=anchors, password=truststore_password, now=now
        )
        os.rename(staging, release)
        if state is not None:
            _swap_link(directory, _PREVIOUS, os.path.relpath(state.path, directory))
        _swap_link(directory, _CURRENT, os.path.relpath(release, directory))
    except Exception as exc:  # any failure before the final rename leaves `current` untouched
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(release, ignore_errors=True)
        raise DomainError(
            ErrorKind.UNAVAILABLE,
            f"installing list {verified.sequence_number} failed ({type(exc).__name__}: {exc}); "
            "the old truststore is kept",
        ) from exc
    with contextlib.suppress(OSError):
        _fsync_dir(directory)
        _prune(directory)

    old = state.anchors if state else {}
    new = {fingerprint(c): c for c in anchors}
    added = sorted(_label(c) for fp, c in new.items() if fp not in old)
    removed = sorted(f"{subject} sha256:{fp}" for fp, subject in old.items() if fp not in new)
    before = f" (was {state.sequence_number})" if state else ""
    message = (
        f"installed trusted list {verified.sequence_number}{before}: {len(anchors)} anchors, "
        f"{len(added)} added, {len(removed)} removed; next update {format_time(verified.next_update)}"
    )
    return UpdateResult(True, verified.sequence_number, added, removed, message, list(verified.warnings))
