"""The start-up sequence both composition roots share: ``hotline run`` (daemon.py) and
the outbox worker (``python -m sms.outbox.worker``).

Load the configuration or exit with its one line; set up logging once; bring the
database folder and schema up to date before the reactor starts; start the service
tree; tell systemd when it is ready; stop gracefully on SIGTERM within
``[daemon] shutdown_timeout``. The roots differ only in the rooms they load and the
tree they build.
"""
from __future__ import annotations

import os
import socket
import sys
from types import ModuleType
from typing import Any
from collections.abc import Callable, Mapping

from sqlalchemy.exc import OperationalError
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from common import heap
from common.config import Config, ConfigError, load
from common.logs import start_logging
from storage import migrate as migrations

log = Logger(namespace="hotline.startup")

EXIT_CONFIG = 2
EXIT_NOT_READY = 3


def load_or_exit(path: str, rooms: Mapping[str, ModuleType], *, secrets: bool = True,
                 only_these_rooms: bool = False) -> Config:
    """The configuration, or the one-line error on stderr and exit code 2."""
    try:
        return load(path, rooms, secrets=secrets, only_these_rooms=only_these_rooms)
    except ConfigError as e:
        print(f"hotline: {e}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def database_ready_or_exit(config: Config, *, migrate_to: str | None = None) -> None:
    """Make the database usable for a command, or exit with one line saying what to run:
    the SQLite folder is created when that is safe; ``migrate_to`` (a revision, "heads":
    the daemon and installer steps) applies migrations, other commands only check that
    they were applied."""
    try:
        migrations.ensure_folder(config.database.url)
        if migrate_to:
            migrations.upgrade(config.database.url, migrate_to)
        else:
            migrations.check_current(config.database.url)
    except migrations.NotReady as e:
        print(f"hotline: {e}: run hotline db upgrade -c {config.path}", file=sys.stderr)
        raise SystemExit(EXIT_NOT_READY) from None
    except OperationalError as e:
        print(f"hotline: the database cannot be opened: {str(e.orig).splitlines()[0]}",
              file=sys.stderr)
        raise SystemExit(EXIT_NOT_READY) from None


class Platform(MultiService):
    """A root's tree. Parts stop one after another, newest first, so the database
    (the first part) outlives every part that still writes to it while it stops."""

    def stopService(self) -> Deferred:
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop_in_order())

    async def _stop_in_order(self) -> None:
        for service in reversed(list(self)):
            await maybeDeferred(service.stopService)


def notify_systemd(state: str) -> None:
    """Tell systemd (``Type=notify``) about a state change, e.g. ``READY=1``; nothing
    when not run by systemd (no ``NOTIFY_SOCKET``)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(address)
        s.sendall(state.encode())


def serve(config: Config, build: Callable[[Any], MultiService], name: str) -> int:
    """Run ``build(reactor)``'s tree on the real reactor until SIGTERM or SIGINT; the exit
    code is 1 when the graceful stop did not finish within the shutdown timeout."""
    from twisted.internet import reactor  # installs the global reactor: only the roots run it

    start_logging(config.daemon.log_format, config.daemon.log_file, config.daemon.log_level)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    database_ready_or_exit(config, migrate_to="heads")
    service = build(reactor)
    exit_code = [0]

    def start() -> None:
        service.startService()
        log.info("{name} {instance} started", name=name, instance=config.daemon.instance)
        notify_systemd("READY=1")

    def graceful_stop() -> Deferred:
        log.info("stopping: no new work, finishing in-flight work")
        notify_systemd("STOPPING=1")
        d = service.stopService()
        d.addTimeout(config.daemon.shutdown_timeout - 0.5, reactor)

        def timed_out(failure):
            log.warn("graceful stop did not finish in time: {why}", why=failure.getErrorMessage())
            exit_code[0] = 1

        d.addErrback(timed_out)
        return d

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", graceful_stop)
    heap.settle()
    reactor.run()
    log.info("{name} stopped", name=name)
    return exit_code[0]
