"""``python -m sms.outbox.worker --config FILE``: only the outbox, dispatcher and SMPP links.

A small daemon for the crash test and the benchmark: it drains the outbox of the
configured database through the configured SMSCs and answers DLRs, with no IVR,
HTTP API or alert jobs. ``hotline run`` is the full daemon.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sms.outbox.worker",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", required=True)
    args = parser.parse_args(argv)

    import sms.config
    from common.startup import Platform, load_or_exit, serve
    from sms.service import make_service
    from storage.db import Database

    config = load_or_exit(args.config, {"sms": sms.config}, only_these_rooms=True)

    def build(reactor) -> Platform:
        top = Platform()
        db = Database(config.database.url, reactor, config.database.threads)
        db.setServiceParent(top)
        make_service(config, reactor, db, {}, None, None).setServiceParent(top)
        return top

    return serve(config, build, "outbox worker")


if __name__ == "__main__":
    sys.exit(main())
