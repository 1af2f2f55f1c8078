"""Consuming: each checklist step rejects with a precise kind, and the truststore updater is fail-closed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.pki import tsl
from ehealth_certs.trustlist import consume
from ehealth_certs.trustlist.consume import installed_state, update_truststore, verify_trusted_list
from ehealth_certs.trustlist.publish import STATUS_GRANTED, TrustService, sha2_digest_file
from tests.trustlist.tl_helpers import (
    ISSUE,
    NEXT,
    NOW,
    Pki,
    SignerPair,
    publish,
    replace_once,
    services_for,
)

URL = "https://tsl-acpt.ehealth.example/tsl-ehealth.xml"
SHA2_URL = "https://tsl-acpt.ehealth.example/tsl-ehealth.sha2"
PASSWORD = b"truststore-pass"


def _kind(xml: bytes, pins: list[x509.Certificate], now: datetime = NOW, **kw: object) -> DomainError:
    with pytest.raises(DomainError) as err:
        verify_trusted_list(xml, pinned_signers=pins, now=now, **kw)  # type: ignore[arg-type]
    return err.value


# -- verify_trusted_list: one test per checklist step ---------------------------------------------
def test_size_limit_is_checked_before_parsing(signed_list: bytes, rsa_signer: SignerPair) -> None:
    err = _kind(signed_list, [rsa_signer.certificate], max_bytes=len(signed_list) - 1)
    assert err.kind is ErrorKind.PAYLOAD_TOO_LARGE


def test_dtd_and_entities_are_refused(rsa_signer: SignerPair) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b'<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#">&b;</TrustServiceStatusList>'
    )
    err = _kind(bomb, [rsa_signer.certificate])
    assert err.kind is ErrorKind.MALFORMED_MESSAGE and "DOCTYPE" in err.detail
    external = (
        b'<?xml version="1.0"?><!DOCTYPE t SYSTEM "http://127.0.0.1:9/x.dtd">'
        b'<TrustServiceStatusList xmlns="http://uri.etsi.org/02231/v2#"/>'
    )
    assert _kind(external, [rsa_signer.certificate]).kind is ErrorKind.MALFORMED_MESSAGE


def test_not_xml_and_wrong_root_are_malformed(rsa_signer: SignerPair) -> None:
    assert _kind(b"\x00\x01garbage", [rsa_signer.certificate]).kind is ErrorKind.MALFORMED_MESSAGE
    err = _kind(b"<a xmlns='urn:x'/>", [rsa_signer.certificate])
    assert err.kind is ErrorKind.MALFORMED_MESSAGE and "TrustServiceStatusList" in err.detail


def test_schema_violation_is_malformed(signed_list: bytes, rsa_signer: SignerPair) -> None:
    broken = replace_once(signed_list, b"<TSLSequenceNumber>7<", b"<TSLSequenceNumber>0<")
    err = _kind(broken, [rsa_signer.certificate])
    assert err.kind is ErrorKind.MALFORMED_MESSAGE and "schema" in err.detail


def test_unpinned_signer_is_untrusted(signed_list: bytes, other_signer: SignerPair) -> None:
    err = _kind(signed_list, [other_signer.certificate])
    assert err.kind is ErrorKind.UNTRUSTED_SIGNER and "not pinned" in err.detail
    assert _kind(signed_list, []).kind is ErrorKind.UNTRUSTED_SIGNER


def test_signer_rotation_accepts_any_member_of_the_pinned_set(
    signed_list: bytes, rsa_signer: SignerPair, other_signer: SignerPair
) -> None:
    verified = verify_trusted_list(
        signed_list, pinned_signers=[other_signer.certificate, rsa_signer.certificate], now=NOW
    )
    assert verified.signer == rsa_signer.certificate


def test_a_list_signed_by_an_attacker_with_his_own_certificate_is_untrusted(
    pki: Pki, other_signer: SignerPair, rsa_signer: SignerPair
) -> None:
    forged = publish(pki, other_signer)  # a perfectly valid signature, by the wrong key
    assert _kind(forged, [rsa_signer.certificate]).kind is ErrorKind.UNTRUSTED_SIGNER


@pytest.mark.parametrize(
    ("now", "needle"),
    [
        (NEXT, "NextUpdate"),
        (ISSUE - timedelta(seconds=1), "SigningTime"),
        (datetime(2029, 1, 2, tzinfo=UTC), "signer certificate"),
    ],
)
def test_time_checks(signed_list: bytes, rsa_signer: SignerPair, now: datetime, needle: str) -> None:
    err = _kind(signed_list, [rsa_signer.certificate], now=now)
    assert needle in err.detail
    assert err.kind in (ErrorKind.EXPIRED, ErrorKind.BAD_SIGNATURE)


def test_issue_time_in_the_future_is_refused(pki: Pki, rsa_signer: SignerPair) -> None:
    # SigningTime before ListIssueDateTime: only the issue-date check can catch it.
    root = tsl_build(pki, issue=ISSUE + timedelta(days=1))
    from tests.trustlist.tl_helpers import sign_trusted_list

    xml = sign_trusted_list(
        root, signer=rsa_signer.signer, signer_certificate=rsa_signer.certificate, signing_time=ISSUE
    )
    err = _kind(xml, [rsa_signer.certificate])
    assert err.kind is ErrorKind.EXPIRED and "ListIssueDateTime" in err.detail


def tsl_build(pki: Pki, *, issue: datetime, sequence: int = 7) -> etree._Element:
    from ehealth_certs.trustlist.publish import build_trusted_list
    from tests.trustlist.tl_helpers import SCHEME

    return build_trusted_list(
        scheme=SCHEME,
        services=services_for(pki),
        sequence_number=sequence,
        issue_time=issue,
        next_update=issue + timedelta(days=30),
    )


def test_sequence_must_rise_above_the_installed_one(signed_list: bytes, rsa_signer: SignerPair) -> None:
    pins = [rsa_signer.certificate]
    assert _kind(signed_list, pins, installed_sequence=7).kind is ErrorKind.REPLAY
    assert _kind(signed_list, pins, installed_sequence=9).kind is ErrorKind.REPLAY
    assert verify_trusted_list(signed_list, pinned_signers=pins, now=NOW, installed_sequence=6).warnings == []
    jumped = verify_trusted_list(signed_list, pinned_signers=pins, now=NOW, installed_sequence=2)
    assert jumped.warnings and "jumped" in jumped.warnings[0]


def test_territory_is_checked(signed_list: bytes, rsa_signer: SignerPair) -> None:
    err = _kind(signed_list, [rsa_signer.certificate], expected_territory="NL")
    assert err.kind is ErrorKind.MALFORMED_MESSAGE and "SchemeTerritory" in err.detail


def _signature(xml: bytes) -> tuple[etree._Element, etree._Element]:
    root = etree.fromstring(xml)
    return root, root[-1]


def test_two_signatures_are_refused(signed_list: bytes, rsa_signer: SignerPair) -> None:
    root, sig = _signature(signed_list)
    # A second copy hidden in a (schema-valid, lax) scheme extension must not be ignored.
    extensions = etree.SubElement(
        root.find(tsl.q(tsl.TSL_NS, "SchemeInformation")), tsl.q(tsl.TSL_NS, "SchemeExtensions")
    )
    extension = etree.SubElement(extensions, tsl.q(tsl.TSL_NS, "Extension"), Critical="false")
    copy = etree.fromstring(etree.tostring(sig))
    for node in copy.iter():
        if node.get("Id"):
            node.set("Id", "copy-" + node.get("Id"))  # duplicate Ids are already a schema error
    extension.append(copy)
    err = _kind(etree.tostring(root), [rsa_signer.certificate])
    assert err.kind is ErrorKind.BAD_SIGNATURE and "exactly one ds:Signature, found 2" in err.detail


def test_reference_not_covering_the_root_is_refused(signed_list: bytes, rsa_signer: SignerPair) -> None:
    root_id = etree.fromstring(signed_list).get("Id").encode()
    moved = replace_once(signed_list, b'URI="#' + root_id + b'"', b'URI="#elsewhere"')
    err = _kind(moved, [rsa_signer.certificate])
    assert err.kind is ErrorKind.BAD_SIGNATURE and "does not designate the list root" in err.detail


def test_missing_enveloped_transform_is_refused(signed_list: bytes, rsa_signer: SignerPair) -> None:
    stripped = replace_once(
        signed_list, b'<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>', b""
    )
    err = _kind(stripped, [rsa_signer.certificate])
    assert err.kind is ErrorKind.BAD_SIGNATURE and "transforms" in err.detail


def test_signature_value_change_is_refused(signed_list: bytes, rsa_signer: SignerPair) -> None:
    root, sig = _signature(signed_list)
    value = sig.find(tsl.q(tsl.DS_NS, "SignatureValue"))
    value.text = ("B" if value.text[0] != "B" else "C") + value.text[1:]
    err = _kind(etree.tostring(root), [rsa_signer.certificate])
    assert err.kind is ErrorKind.BAD_SIGNATURE and "SignatureValue" in err.detail


def test_ecdsa_lists_verify_too(pki: Pki, ec_signer: SignerPair) -> None:
    xml = publish(pki, ec_signer, sequence=11)
    assert verify_trusted_list(xml, pinned_signers=[ec_signer.certificate], now=NOW).sequence_number == 11


# -- update_truststore ----------------------------------------------------------------------------
class Publisher:
    """A fake web server: serves tl.xml and tl.sha2, counts requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []

    def put(self, xml: bytes, *, sha2: bool = True) -> None:
        self.files[URL] = xml
        if sha2:
            self.files[SHA2_URL] = sha2_digest_file(xml)
        else:
            self.files.pop(SHA2_URL, None)

    def __call__(self, url: str) -> bytes:
        self.requests.append(url)
        if url not in self.files:
            raise FileNotFoundError(url)
        return self.files[url]


@pytest.fixture(scope="module")
def lists(pki: Pki, rsa_signer: SignerPair, other_signer: SignerPair) -> dict[str, bytes]:
    spare = TrustService(pki.spare_ca, tsl.SERVICE_CA_PKC, "eHealth Issuing CA 2027", STATUS_GRANTED, ISSUE)
    later = ISSUE + timedelta(days=1)
    return {
        "seq7": publish(pki, rsa_signer, sequence=7),
        "seq8": publish(
            pki,
            rsa_signer,
            sequence=8,
            issue=later,
            next_update=later + timedelta(days=30),
            services=[*services_for(pki)[:6], spare],  # drops the TSA, adds a CA
        ),
        "seq6": publish(pki, rsa_signer, sequence=6),
        "forged9": publish(pki, other_signer, sequence=9),
    }


def _update(
    pub: Publisher, directory: Path, rsa_signer: SignerPair, now: datetime = NOW
) -> consume.UpdateResult:
    return update_truststore(
        url=URL,
        pinned_signers=[rsa_signer.certificate],
        directory=directory,
        now=now,
        fetch=pub,
        truststore_password=PASSWORD,
    )


def _keytool_entries(p12: Path) -> list[str]:
    out = subprocess.run(
        ["keytool", "-list", "-storetype", "PKCS12", "-keystore", str(p12), "-storepass:env", "TS_PASS"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TS_PASS": PASSWORD.decode()},
        check=True,
    ).stdout
    return [line for line in out.splitlines() if "trustedCertEntry" in line]


def _snapshot(directory: Path) -> dict[str, bytes]:
    current = directory / "current"
    return {p.name: p.read_bytes() for p in sorted(current.iterdir())}


@pytest.mark.interop
def test_first_install_writes_pem_and_a_p12_keytool_lists(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair, pki: Pki
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    result = _update(pub, tmp_path, rsa_signer)
    assert result.changed and result.sequence_number == 7 and result.removed == []
    # Granted services only: root, issuing, OCSP, EtkRA, TLS, TSA (the withdrawn CA is not an anchor).
    assert len(result.added) == 6
    assert not any("Issuing CA 2020" in a for a in result.added)
    current = tmp_path / "current"
    assert (current / "tl.xml").read_bytes() == lists["seq7"]
    assert (current / "tl.sha2").read_bytes() == sha2_digest_file(lists["seq7"])
    pem_certs = x509.load_pem_x509_certificates((current / "truststore.pem").read_bytes())
    assert set(pem_certs) == {pki.root, pki.issuing, pki.ocsp, pki.etkra, pki.tls, pki.tsa}
    entries = _keytool_entries(current / "truststore.p12")
    assert len(entries) == 6
    state = installed_state(tmp_path)
    assert state is not None and state.sequence_number == 7 and state.next_update == NEXT
    assert state.sha256 == hashlib.sha256(lists["seq7"]).hexdigest()


def test_unchanged_sha2_means_no_download(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    _update(pub, tmp_path, rsa_signer)
    pub.requests.clear()
    before = _snapshot(tmp_path)
    result = _update(pub, tmp_path, rsa_signer, now=NOW + timedelta(days=1))
    assert not result.changed and result.sequence_number == 7
    assert pub.requests == [SHA2_URL]
    assert _snapshot(tmp_path) == before


def test_higher_sequence_installs_and_reports_the_difference(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    _update(pub, tmp_path, rsa_signer)
    old_release = (tmp_path / "current").resolve()
    pub.put(lists["seq8"])
    result = _update(pub, tmp_path, rsa_signer, now=NOW + timedelta(days=1))
    assert result.changed and result.sequence_number == 8
    assert len(result.added) == 1 and result.added[0].startswith("CN=eHealth Issuing CA 2027,")
    assert len(result.removed) == 1 and result.removed[0].startswith("CN=eHealth TSA,")
    assert "1 added, 1 removed" in result.message
    assert (tmp_path / "previous").resolve() == old_release
    assert (tmp_path / "previous" / "tl.xml").read_bytes() == lists["seq7"]
    assert (tmp_path / "current" / "tl.xml").read_bytes() == lists["seq8"]


@pytest.mark.parametrize("which", ["seq6", "seq7-other-bytes"])
def test_lower_or_equal_sequence_is_refused_and_the_old_truststore_kept(
    which: str, tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair, pki: Pki
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    _update(pub, tmp_path, rsa_signer)
    before = _snapshot(tmp_path)
    # Same sequence number, different (validly signed) content: still a rollback attempt.
    pub.put(lists["seq6"] if which == "seq6" else publish(pki, rsa_signer, sequence=7))
    with pytest.raises(DomainError) as err:
        _update(pub, tmp_path, rsa_signer)
    assert err.value.kind is ErrorKind.REPLAY and "installed one (7)" in err.value.detail
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("scenario", "kind"),
    [
        ("forged", ErrorKind.UNTRUSTED_SIGNER),
        ("tampered", ErrorKind.BAD_SIGNATURE),
        ("sha2-mismatch", ErrorKind.BAD_SIGNATURE),
        ("outage", ErrorKind.UNAVAILABLE),
    ],
)
def test_bad_new_lists_leave_the_old_truststore(
    scenario: str, kind: ErrorKind, tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    _update(pub, tmp_path, rsa_signer)
    before = _snapshot(tmp_path)
    if scenario == "forged":
        pub.put(lists["forged9"])
    elif scenario == "tampered":
        pub.put(replace_once(lists["seq8"], b">eHealth Root CA<", b">Evil Root CA<"))
    elif scenario == "sha2-mismatch":
        pub.put(lists["seq8"])
        pub.files[SHA2_URL] = sha2_digest_file(lists["seq6"])
    else:
        pub.files = {}
        pub.files[SHA2_URL] = sha2_digest_file(lists["seq8"])

        def down(url: str) -> bytes:
            if url == URL:
                raise ConnectionError("connection reset by peer")
            return pub.files[url]

        with pytest.raises(DomainError) as err:
            update_truststore(
                url=URL, pinned_signers=[rsa_signer.certificate], directory=tmp_path, now=NOW, fetch=down
            )
        assert err.value.kind is kind and "connection reset" in err.value.detail
        assert _snapshot(tmp_path) == before
        return
    with pytest.raises(DomainError) as err:
        _update(pub, tmp_path, rsa_signer, now=NOW + timedelta(days=1))
    assert err.value.kind is kind
    assert _snapshot(tmp_path) == before


def test_failure_midway_keeps_the_old_files(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    _update(pub, tmp_path, rsa_signer)
    before = _snapshot(tmp_path)
    pub.put(lists["seq8"])
    real_write = consume._write

    def failing_write(path: Path, data: bytes) -> None:
        if path.name == "truststore.p12":
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(consume, "_write", failing_write)
    with pytest.raises(DomainError) as err:
        _update(pub, tmp_path, rsa_signer, now=NOW + timedelta(days=1))
    assert err.value.kind is ErrorKind.UNAVAILABLE
    assert "No space left on device" in err.value.detail and "old truststore is kept" in err.value.detail
    assert _snapshot(tmp_path) == before
    assert [p.name for p in (tmp_path / "releases").iterdir() if p.name.startswith(".staging")] == []
    monkeypatch.setattr(consume, "_write", real_write)
    assert _update(pub, tmp_path, rsa_signer, now=NOW + timedelta(days=1)).sequence_number == 8


def test_no_sha2_published_still_updates_by_content(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"], sha2=False)
    assert _update(pub, tmp_path, rsa_signer).changed
    again = _update(pub, tmp_path, rsa_signer)
    assert not again.changed and "same bytes" in again.message


def test_expired_installed_list_with_nothing_newer_is_an_alert(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    _update(pub, tmp_path, rsa_signer)
    with pytest.raises(DomainError) as err:
        _update(pub, tmp_path, rsa_signer, now=NEXT + timedelta(seconds=1))
    assert err.value.kind is ErrorKind.EXPIRED and "NextUpdate" in err.value.detail
    assert (tmp_path / "current" / "tl.xml").read_bytes() == lists["seq7"]


def test_default_fetcher_reads_file_urls(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "tl.xml").write_bytes(lists["seq7"])
    (site / "tl.sha2").write_bytes(sha2_digest_file(lists["seq7"]))
    result = update_truststore(
        url=(site / "tl.xml").as_uri(),
        pinned_signers=[rsa_signer.certificate],
        directory=tmp_path / "ts",
        now=NOW,
    )
    assert result.changed and result.sequence_number == 7
    with pytest.raises(DomainError) as err:
        consume.fetch_url((site / "tl.xml").as_uri(), max_bytes=100)
    assert err.value.kind is ErrorKind.PAYLOAD_TOO_LARGE


@pytest.fixture
def http_site(lists: dict[str, bytes]) -> Iterator[tuple[str, list[str], dict[str, bytes]]]:
    served: dict[str, bytes] = {"/tl.xml": lists["seq7"], "/tl.sha2": sha2_digest_file(lists["seq7"])}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            if body is not None:
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits, served
    finally:
        server.shutdown()
        server.server_close()


def test_default_fetcher_over_http_polls_the_sha2_first(
    tmp_path: Path, http_site: tuple[str, list[str], dict[str, bytes]], rsa_signer: SignerPair
) -> None:
    base, hits, served = http_site
    kw = {"url": f"{base}/tl.xml", "pinned_signers": [rsa_signer.certificate], "directory": tmp_path}
    assert update_truststore(now=NOW, **kw).changed  # type: ignore[arg-type]
    assert hits == ["/tl.sha2", "/tl.xml"]
    hits.clear()
    assert not update_truststore(now=NOW, **kw).changed  # type: ignore[arg-type]
    assert hits == ["/tl.sha2"]
    del served["/tl.sha2"]  # a 404 on .sha2 means "not published": download and compare
    hits.clear()
    assert not update_truststore(now=NOW, **kw).changed  # type: ignore[arg-type]
    assert hits == ["/tl.sha2", "/tl.xml"]


def test_concurrent_updates_are_refused(
    tmp_path: Path, lists: dict[str, bytes], rsa_signer: SignerPair
) -> None:
    pub = Publisher()
    pub.put(lists["seq7"])
    with consume._exclusive(tmp_path), pytest.raises(DomainError) as err:
        _update(pub, tmp_path, rsa_signer)
    assert err.value.kind is ErrorKind.CONFLICT and pub.requests == []
    assert _update(pub, tmp_path, rsa_signer).changed  # the lock is released afterwards
