"""Several worker processes on one port, each listening on a socket of its own (``SO_REUSEPORT``).

uvicorn's own multi-worker mode binds one socket in the parent and shares it: on a new connection the event
loop wakes one waiting process, most often the same one, so a client that opens a few keep-alive
connections at once lands on a single worker (measured with ``bench/issuance_bench.py``: all 16 connections
on one of two workers, the other idle). With one listening socket per worker in a ``SO_REUSEPORT`` group,
the kernel spreads connections over the workers by their address hash.

The parent only supervises: it restarts a worker that dies, replaces them all one by one on SIGHUP (new
settings, certificates or code), and stops them on SIGINT or SIGTERM; workers exit with it even when it is
killed.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

from ehealth_certs.errors import DomainError, ErrorKind

log = logging.getLogger(__name__)

APP = "ehealth_certs.web.app:worker_app"
_RESTART_WINDOW = 30.0  # a worker that dies sooner than this after its start counts as a failed start
_MAX_FAILED_STARTS = 5
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port_free(host: str, port: int) -> None:
    """Refuse to start beside anything already bound to the port, another ehcerts included: the probe
    binds without ``SO_REUSEPORT``, which every existing socket on the port refuses."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise DomainError(
                ErrorKind.CONFIGURATION, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """One worker's socket in the port's ``SO_REUSEPORT`` group."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _exit_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM when the supervisor dies, even by SIGKILL, so that no orphaned worker keeps
    the port (prctl PR_SET_PDEATHSIG; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the supervisor died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(options: dict[str, Any], listening: Any, parent: int) -> None:
    """Entry point of a worker process (spawned: a fresh interpreter). ``listening`` is set once its socket
    is in the port's group: from then on the kernel may queue connections to it."""
    import uvicorn

    _exit_with_parent(parent)
    config = uvicorn.Config(APP, factory=True, **options)
    sock = listening_socket(config.host, config.port, config.backlog)
    listening.set()
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(count: int, options: dict[str, Any]) -> int:
    """Run ``count`` workers until SIGINT/SIGTERM; returns the exit status (0 after a requested stop)."""
    check_port_free(options["host"], options["port"])
    ctx = multiprocessing.get_context("spawn")
    stop = threading.Event()
    reload = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, lambda *_: reload.set())

    def start() -> tuple[BaseProcess, float, Any]:
        listening = ctx.Event()
        process = ctx.Process(
            target=_worker_main, args=(options, listening, os.getpid()), name="ehcerts-worker"
        )
        process.start()
        return process, time.monotonic(), listening

    workers = [start() for _ in range(count)]
    failed_starts = 0
    status = 0
    try:
        while not stop.wait(0.5):
            if reload.is_set():
                reload.clear()
                log.info("SIGHUP: replacing the workers one by one")
                for i, (old, _, _) in enumerate(workers):
                    workers[i] = start()
                    # the old worker leaves the port's group only once the new one is in it: a listening
                    # socket that closes drops the connections queued to it
                    workers[i][2].wait(60)
                    old.terminate()
                    old.join(30)
            for i, (process, started, _) in enumerate(workers):
                if process.is_alive():
                    continue
                quick = time.monotonic() - started < _RESTART_WINDOW
                failed_starts = failed_starts + 1 if quick else 0
                log.error("worker %s exited with %s; starting a new one", process.pid, process.exitcode)
                if failed_starts >= _MAX_FAILED_STARTS:
                    log.error("workers keep dying at start-up; stopping (see the log above)")
                    status = 1
                    stop.set()
                    break
                workers[i] = start()
    finally:
        for process, _, _ in workers:
            if process.is_alive():
                process.terminate()  # uvicorn finishes the requests in flight, then exits
        deadline = time.monotonic() + 30
        for process, _, _ in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
