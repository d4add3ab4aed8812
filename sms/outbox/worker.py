"""``python -m sms.outbox.worker --config FILE``: only the outbox, dispatcher and SMPP links.

A small daemon for the crash test and the benchmark: it drains the outbox of the
configured database through the configured SMSCs and answers DLRs, with no IVR,
HTTP API or alert jobs. ``hotline run`` is the full daemon.
"""
from __future__ import annotations

import argparse
import sys

from twisted.logger import Logger

log = Logger(namespace="hotline.sms.worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sms.outbox.worker",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", required=True)
    args = parser.parse_args(argv)

    from daemon import load_or_exit

    config = load_or_exit(args.config)
    from twisted.internet import reactor

    from common import heap
    from common.logs import start_logging
    from sms.service import make_service
    from storage.db import Database
    from storage.migrate import upgrade

    start_logging(config.daemon.log_format, config.daemon.log_file, config.daemon.log_level)
    config.daemon.state_dir.mkdir(parents=True, exist_ok=True)
    upgrade(config.database.url)
    db = Database(config.database.url, reactor, config.database.threads)
    service = make_service(config, reactor, db, {}, None, None)
    db.startService()

    def stop():
        d = service.stopService()
        d.addBoth(lambda _: db.stopService())
        return d

    reactor.callWhenRunning(service.startService)
    reactor.callWhenRunning(log.info, "outbox worker {instance} started",
                            instance=config.daemon.instance)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    heap.settle()
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
