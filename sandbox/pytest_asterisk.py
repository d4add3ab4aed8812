"""pytest fixtures for the real Asterisk: the cached root, started instances, a reactor runner.

The root is built by ``python -m sandbox.asterisk build`` (setup.sh and .ci/run
do it); without it, or without root privileges for chroot and mounts, the e2e
tests are skipped locally and fail under CI. Each ``asterisk`` instance gets free
AMI, SIP and RTP ports, its own folders under the test's tmp_path, and a unique
daemon instance name, so parallel runs on one machine never collide.
"""
from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from collections.abc import Awaitable, Callable

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.selectreactor import SelectReactor

from sandbox.asterisk import AsteriskInstance, is_built, root_path
from sandbox.ports import free_port, free_udp_range

__all__ = ["asterisk_root", "asterisk_factory", "asterisk"]  # the fixtures conftest imports


def _unavailable(reason: str):
    if os.environ.get("CI") or os.environ.get("HOTLINE_REQUIRE_SERVICES"):
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def asterisk_root() -> Path:
    root = root_path()
    if os.geteuid() != 0:
        _unavailable("the Asterisk test bed needs root (chroot, bind mounts)")
    if not is_built(root):
        _unavailable(f"no Asterisk root at {root}: run python -m sandbox.asterisk build")
    return root


@pytest.fixture
def asterisk_factory(asterisk_root, tmp_path):
    """``start(variables=None, bind_mounts=())`` -> a started AsteriskInstance, stopped after the test."""
    started: list[AsteriskInstance] = []

    def start(variables: dict[str, str] | None = None,
              bind_mounts: tuple[str, ...] | list[str] = (), rtp_size: int = 200
              ) -> AsteriskInstance:
        values = {"instance": "t" + secrets.token_hex(4), "office_hours": "*,*,*,*",
                  **(variables or {})}
        inst = AsteriskInstance(asterisk_root, tmp_path / f"asterisk{len(started)}",
                                ami_port=free_port(), sip_port=free_port(kind=socket.SOCK_DGRAM),
                                rtp_range=free_udp_range(rtp_size), bind_mounts=list(bind_mounts),
                                variables=values, owner=os.getpid())
        started.append(inst)
        inst.start()
        return inst

    yield start
    for inst in started:
        inst.stop()


@pytest.fixture
def asterisk(asterisk_factory) -> AsteriskInstance:
    """A started Asterisk with the project's dialplans; ``.variables['instance']`` is its daemon name."""
    return asterisk_factory()


def ami_endpoint(reactor, inst: AsteriskInstance) -> TCP4ClientEndpoint:
    return TCP4ClientEndpoint(reactor, inst.address, inst.ami_port)


def run_reactor(main: Callable[[SelectReactor], Awaitable[object]], timeout: float = 60.0):
    """Run ``await main(reactor)`` on a fresh (non-global) reactor and return its result.

    Each call gets its own reactor, so e2e tests need no global reactor and no plugin.
    """
    reactor = SelectReactor()
    outcome: list = []

    def done(result):
        outcome.append(result)
        reactor.callLater(0, reactor.stop)

    def start():
        d = Deferred.fromCoroutine(main(reactor))
        d.addTimeout(timeout, reactor)
        d.addBoth(done)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    result = outcome[0] if outcome else None
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result
