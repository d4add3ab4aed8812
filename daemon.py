"""The hotline daemon and its command line: one Twisted reactor, one service tree.

``hotline run --config FILE`` builds a MultiService of the enabled parts
(database, scheduler, core clients, HTTP API, AMI/IVR, SMPP gateway) and runs
it until SIGTERM or SIGINT, which stops it gracefully within the configured
shutdown timeout. Every other subcommand is a room's own tool.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from twisted.application.service import MultiService, Service
from twisted.logger import Logger

import console.cli
import console.config
import core_client.cli
import ivr.cli
import ivr.config
from ivr.prompt_ids import referenced_prompts
import operations.cli
import prompts.cli
import prompts.config
import sms.cli
import sms.config
import sms.door.cli
from common import startup
from common.config import Config
from common.startup import Platform

if TYPE_CHECKING:
    from twisted.web.resource import Resource

log = Logger(namespace="hotline.daemon")

# The rooms of this daemon: Config field -> the room's config module.
ROOMS = {"ivr": ivr.config, "sms": sms.config, "prompts": prompts.config,
         "console": console.config}
# The configuration with those rooms' sections, as load_config returns it.
HotlineConfig = Config[ivr.config.IvrConfig, sms.config.SmsConfig, prompts.config.PromptsConfig]


def build_service(config: HotlineConfig, reactor) -> MultiService:
    """The daemon's service tree; nothing runs until ``startService``."""
    from common.metrics import Metrics, Status, resources as monitoring_resources
    from common.retention import schedule_retention
    from common.scheduler import SchedulerService
    from common.web import make_http_service
    from core_client import retention as core_retention
    from core_client.codes import VerificationCodes
    from core_client.directory import build_cores
    from sms import retention as sms_retention
    from storage.cluster import Membership
    from storage.db import Database

    top = Platform()
    db = Database(config.database.url, reactor, config.database.threads)
    db.setServiceParent(top)
    cluster = Membership(db, reactor, config.daemon.instance, config.daemon.lease_ttl)
    cluster.setServiceParent(top)
    scheduler = SchedulerService(reactor, cluster=cluster)
    scheduler.setServiceParent(top)
    schedule_retention(scheduler.scheduler, db, reactor, config.database.retention_days,
                       [sms_retention.purge, core_retention.purge],
                       once=scheduler.once_in_cluster)
    cores = build_cores(config, db, reactor)
    CorePreparation(cores).setServiceParent(top)
    codes = VerificationCodes(db, cores, config.codes, reactor)

    from console.figures import monitoring

    metrics = Metrics(Status(db), monitoring, reactor)
    resources: dict[bytes, Resource] = {}
    body_caps: dict[bytes, int] = {}
    notifier = templates = None
    if config.sms.enabled and config.sms.smscs:
        from sms.service import make_service as make_sms

        sms = make_sms(config, reactor, db, cores, codes, scheduler, cluster)
        sms.setServiceParent(top)
        cluster.report("sms", lambda: {name: {"connections": count} for name, count
                                       in sms.router.connections().items()})
        resources.update(sms.http_resources())
        body_caps.update(sms.http_body_caps())
        notifier, metrics.status.router, templates = (sms.notify_balance, sms.router,
                                                       sms.templates)
    if config.ivr.ami.enabled:
        from console.menus import MenuBook, SwitchReader
        from console.rollup import CallRollup, zones
        from ivr.service import make_service as make_ivr

        ivr_service = make_ivr(config, reactor, db, cores, notifier=notifier,
                               switches=SwitchReader(db, MenuBook(config), reactor),
                               on_call_closed=CallRollup(zones(config)), cluster=cluster,
                               on_reply=metrics.ivr_reply.observe)
        ivr_service.setServiceParent(top)
        cluster.report("ivr", ivr_service.status)
        metrics.status.ami_links = {node.name: node.link for node in ivr_service.nodes}
    resources.update(monitoring_resources(metrics))
    if config.http.enabled:
        make_http_service(config, reactor, resources, body_caps,
                          metrics.http_counter(http_door)).setServiceParent(top)
    if config.console.enabled:
        from console.service import make_service as make_console

        make_console(config, reactor, db, metrics.status, metrics,
                     templates).setServiceParent(top)
    return top


def http_door(path: bytes) -> str:
    """Which door of the HTTP listener a path belongs to, for the response counters: the
    SMS door's REST API, or the HTTP API (codes, monitoring) with everything else."""
    return "door" if path == b"/v1/messages" or path.startswith(b"/v1/messages/") else "api"


class CorePreparation(Service):
    """Opens (and on first start generates) the embedded demo cores before calls arrive."""

    # Twisted's Service leaves name = None unannotated; IService says "str or None".
    name: str | None = "core-preparation"  # type: ignore[assignment]

    def __init__(self, cores):
        self.cores = cores

    def startService(self) -> None:
        super().startService()
        from core_client.directory import prepare_cores

        d = prepare_cores(self.cores)
        d.addCallbacks(lambda _: log.info("core systems ready"),
                       lambda f: log.failure("a core system could not be prepared", f))


def load_config(path: str, *, secrets: bool = False, database: bool = True) -> HotlineConfig:
    """The configuration for a tool: secrets only when it uses them (the daemon and the
    checks do; statistics and the prompt library do not), and with ``database`` a
    database that is there and migrated, or the one line saying what to run."""
    config = startup.load_or_exit(path, ROOMS, secrets=secrets)
    if database:
        startup.database_ready_or_exit(config)
    return config


def cmd_run(args) -> int:
    config = load_config(args.config, secrets=True, database=False)
    return startup.serve(config, lambda reactor: build_service(config, reactor), "hotline")


def cmd_check_config(args) -> int:
    config = load_config(args.config, secrets=True, database=False)
    print(f"{config.path}: ok ({len(config.centers)} centers)")
    return 0


def cmd_db(args) -> int:
    from storage import migrate

    config = load_config(args.config, database=False)
    if args.db_command == "upgrade":
        config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
        startup.database_ready_or_exit(config, migrate_to=args.revision)
    else:
        startup.database_ready_or_exit(config)
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
    operations.cli.register(sub, ROOMS)
    core_client.cli.register(sub)
    for room in (ivr.cli, sms.cli, sms.door.cli, console.cli):
        room.register(sub, load_config)
    prompts.cli.register(sub, load_config, referenced_prompts)
    from benchmarks.cli import register as register_benches

    register_benches(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
