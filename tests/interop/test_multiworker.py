"""`ehcerts serve` with two worker processes (the default on two cores): each listens on a socket of its own
(SO_REUSEPORT), a worker that dies is replaced, one maintenance leader, and every worker answers OCSP
authoritatively for a certificate issued by the other one."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ehealth_certs.client.eid import FileEid
from ehealth_certs.client.http import PlatformClient
from ehealth_certs.client.manager import CertificateManager
from ehealth_certs.clock import SystemClock
from ehealth_certs.environment import Environment
from ehealth_certs.errors import DomainError, ErrorKind
from ehealth_certs.web.workers import check_port_free, run_workers
from tests.conftest import start_live_server, stop_live_server

SSIN = "82051234978"


def _listening_workers(parent: int, port: int) -> dict[int, int]:
    """{child pid: listening sockets it holds on ``port``}, read from /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    out: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            links = [os.readlink(fd) for fd in (stat.parent / "fd").iterdir()]
        except (OSError, ValueError):
            continue  # the process went away meanwhile
        held = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in inodes)
        if held:
            out[int(stat.parent.name)] = held
    return out


def _wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # waiting for processes to start, not for domain time


@pytest.mark.interop
def test_each_worker_listens_on_its_own_socket_and_a_dead_worker_is_replaced(
    live_data_dir: Path, live_port: int
) -> None:
    server = start_live_server(live_data_dir, port=live_port, extra_env={"EHCERTS_WORKERS": "2"})
    try:
        parent = server.process.pid
        _wait_for(lambda: len(_listening_workers(parent, live_port)) == 2, "two listening workers")
        listening = _listening_workers(parent, live_port)
        assert sorted(listening.values()) == [1, 1]  # one socket each: the kernel spreads connections
        # no Debian weak-key list in this data directory: the operator is told at start
        log = (live_data_dir / "server.log").read_text()
        assert "no Debian weak-key list is loaded" in log and "trust/debian-weak-keys" in log

        victim = min(listening)
        os.kill(victim, signal.SIGKILL)
        _wait_for(
            lambda: (
                len(_listening_workers(parent, live_port)) == 2
                and victim not in _listening_workers(parent, live_port)
            ),
            "a replacement worker",
        )
        assert server.process.poll() is None
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200

        # SIGHUP replaces every worker, one by one
        before = set(_listening_workers(parent, live_port))
        os.kill(parent, signal.SIGHUP)
        _wait_for(
            lambda: len(now := _listening_workers(parent, live_port)) == 2 and not set(now) & before,
            "two new workers after SIGHUP",
        )
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        stop_live_server(server)
    assert server.process.returncode == 0  # SIGTERM: a requested stop


@pytest.mark.interop
def test_workers_do_not_outlive_a_killed_supervisor(live_data_dir: Path, live_port: int) -> None:
    server = start_live_server(live_data_dir, port=live_port, extra_env={"EHCERTS_WORKERS": "2"})
    parent = server.process.pid
    try:
        _wait_for(lambda: len(_listening_workers(parent, live_port)) == 2, "two listening workers")
        workers = set(_listening_workers(parent, live_port))
        os.kill(parent, signal.SIGKILL)
        server.process.wait(timeout=10)

        def gone(pid: int) -> bool:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                return True
            return state == "Z"  # exited, waiting to be reaped by init

        _wait_for(lambda: all(gone(pid) for pid in workers), "the orphaned workers to exit")
        with socket.socket() as probe:  # the port is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", live_port))
    finally:
        stop_live_server(server)


def test_workers_that_keep_dying_at_start_stop_the_server_with_an_error(unused_port: int) -> None:
    # an event loop uvicorn does not know: every worker exits at once
    options = {"host": "127.0.0.1", "port": unused_port, "loop": "no-such-loop", "log_level": "critical"}
    assert run_workers(2, options) == 1


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_port_already_taken_is_refused_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DomainError) as err:
            check_port_free("127.0.0.1", port)
    assert err.value.kind is ErrorKind.CONFIGURATION
    assert f"127.0.0.1:{port}" in str(err.value)


@pytest.mark.interop
def test_two_workers_share_the_work(live_data_dir: Path, live_port: int, tmp_path: Path) -> None:
    server = start_live_server(live_data_dir, port=live_port, extra_env={"EHCERTS_WORKERS": "2"})
    try:
        # exactly one worker holds the maintenance lock
        fd = os.open(live_data_dir / "maintenance.lock", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)

        eid_file = tmp_path / "anna.eid"
        pin = {"EHCERTS_EID_PIN": "2468"}
        server.cli("dev", "make-eid", "--ssin", SSIN, "--first-name", "Anna", "--last-name", "Peeters",
                   "--out", str(eid_file), extra_env=pin)  # fmt: skip
        pros = tmp_path / "pros.csv"
        pros.write_text(f"ssin,first_name,last_name,quality,nihii\n{SSIN},Anna,Peeters,nurse,\n")
        server.cli("admin", "import", "professionals", str(pros))

        card = FileEid.open(eid_file, "2468")
        manager = CertificateManager(
            client=PlatformClient(server.url, Environment.PRODUCTION),
            clock=SystemClock(),
            confirm=lambda _c: True,
        )
        outcome = manager.request(
            card, keystore_dir=tmp_path, password="pw-2468", contact={"emailPrivate": "anna@example.be"}
        )
        assert outcome.delivered and outcome.certificate is not None
        cert = outcome.certificate
        issuing = x509.load_der_x509_certificate(
            httpx.get(f"{server.url}/pki/production/issuing.crt").content
        )
        sha1 = hashes.SHA1()  # noqa: S303 - RFC 5019 CertIDs use SHA-1
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuing, sha1).build()
        body = request.public_bytes(serialization.Encoding.DER)
        # fresh connections are spread over both workers; the one that did not issue reads the stored answer
        statuses = set()
        for _ in range(24):
            with httpx.Client() as fresh:
                answer = fresh.post(
                    f"{server.url}/pki/production/ocsp", content=body,
                    headers={"Content-Type": "application/ocsp-request"},
                )  # fmt: skip
            response = ocsp.load_der_ocsp_response(answer.content)
            statuses.add(response.certificate_status)
        assert statuses == {ocsp.OCSPCertStatus.GOOD}
    finally:
        stop_live_server(server)
