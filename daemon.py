"""The hotline daemon and its command line: one Twisted reactor, one service tree.

``hotline run --config FILE`` builds a MultiService of the enabled parts
(database, scheduler, core clients, HTTP API, AMI/IVR, SMPP gateway) and runs
it until SIGTERM or SIGINT, which stops it gracefully within the configured
shutdown timeout. Every other subcommand is a room's own tool.
"""
from __future__ import annotations

import argparse
import sys

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from common.config import Config, ConfigError, load

log = Logger(namespace="hotline.daemon")

EXIT_CONFIG = 2


def build_service(config: Config, reactor) -> MultiService:
    """The daemon's service tree; nothing runs until ``startService``."""
    from common.scheduler import SchedulerService
    from common.web import make_http_service
    from core_client.codes import VerificationCodes
    from core_client.directory import build_cores
    from storage.db import Database

    top = Platform()
    db = Database(config.database.url, reactor, config.database.threads)
    db.setServiceParent(top)
    scheduler = SchedulerService(reactor)
    scheduler.setServiceParent(top)
    cores = build_cores(config, db, reactor)
    CorePreparation(cores).setServiceParent(top)
    codes = VerificationCodes(db, cores, config.codes, reactor)

    resources: dict[bytes, object] = {}
    notifier = None
    if config.sms.enabled and config.sms.smscs:
        from sms.service import make_service as make_sms

        sms = make_sms(config, reactor, db, cores, codes, scheduler)
        sms.setServiceParent(top)
        resources.update(sms.http_resources())
        notifier = sms.notify_balance
    if config.ivr.ami.enabled:
        from ivr.service import make_service as make_ivr

        make_ivr(config, reactor, db, cores, notifier=notifier).setServiceParent(top)
    if config.http.enabled:
        make_http_service(config, reactor, resources).setServiceParent(top)
    return top


class Platform(MultiService):
    """The daemon's tree. Parts stop one after another, newest first, so the database
    (the first part) outlives every part that still writes to it while it stops."""

    def stopService(self) -> Deferred:
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stop_in_order())

    async def _stop_in_order(self) -> None:
        for service in reversed(list(self)):
            await maybeDeferred(service.stopService)


class CorePreparation(Service):
    """Opens (and on first start generates) the embedded demo cores before calls arrive."""

    name = "core-preparation"

    def __init__(self, cores):
        self.cores = cores

    def startService(self) -> None:
        super().startService()
        from core_client.directory import prepare_cores

        d = prepare_cores(self.cores)
        d.addCallbacks(lambda _: log.info("core systems ready"),
                       lambda f: log.failure("a core system could not be prepared", f))


def _prepare_storage(config: Config) -> None:
    """Bring the schema up to date before the reactor starts (blocking is fine here)."""
    from storage.migrate import upgrade

    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.database.url)


def cmd_run(args) -> int:
    config = load_or_exit(args.config)
    from twisted.internet import reactor

    from common import heap
    from common.logs import start_logging

    start_logging(config.daemon.log_format, config.daemon.log_file, config.daemon.log_level)
    _prepare_storage(config)
    service = build_service(config, reactor)
    exit_code = [0]

    def graceful_stop():
        log.info("stopping: no new work, finishing in-flight work")
        d = service.stopService()
        d.addTimeout(config.daemon.shutdown_timeout - 0.5, reactor)

        def timed_out(failure):
            log.warn("graceful stop did not finish in time: {why}", why=failure.getErrorMessage())
            exit_code[0] = 1

        d.addErrback(timed_out)
        return d

    reactor.callWhenRunning(service.startService)
    reactor.callWhenRunning(log.info, "hotline {instance} started", instance=config.daemon.instance)
    reactor.addSystemEventTrigger("before", "shutdown", graceful_stop)
    heap.settle()
    reactor.run()
    log.info("hotline stopped")
    return exit_code[0]


def load_or_exit(path: str) -> Config:
    """Load the configuration, or print the one-line error and exit with code 2."""
    try:
        return load(path)
    except ConfigError as e:
        print(f"hotline: {e}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args) -> int:
    config = load_or_exit(args.config)
    print(f"{config.path}: ok ({len(config.centers)} centers)")
    return 0


def cmd_db(args) -> int:
    from storage import migrate

    config = load_or_exit(args.config)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    if args.db_command == "upgrade":
        migrate.upgrade(config.database.url, args.revision)
    else:
        migrate.current(config.database.url)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the daemon")
    p.add_argument("--config", "-c", required=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("--config", "-c", required=True)
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("db", help="database migrations")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply migrations (every room's branch)")
    up.add_argument("--config", "-c", required=True)
    up.add_argument("revision", nargs="?", default="heads")
    cur = dbsub.add_parser("current", help="show applied revisions")
    cur.add_argument("--config", "-c", required=True)
    p.set_defaults(func=cmd_db)

    from sandbox.demo import register as register_demo

    register_demo(sub)
    for room in _room_clis():
        room.register(sub)
    from benchmarks.cli import register as register_benches

    register_benches(sub)
    return parser


def _room_clis():
    import core_client.cli
    import ivr.cli
    import prompts.cli
    import sms.cli
    import sms.door.cli

    return (core_client.cli, ivr.cli, sms.cli, sms.door.cli, prompts.cli)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
