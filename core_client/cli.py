"""``hotline core ...`` and ``hotline bench core``: demo core tools and the lookup benchmark."""
from __future__ import annotations

import argparse
import json
import os
import sys

from core_client import demo_data


def register(subparsers) -> None:
    core = subparsers.add_parser("core", help="demo core database tools")
    sub = core.add_subparsers(dest="core_command", required=True)
    gen = sub.add_parser("generate", help="generate a demo core database (deterministic)")
    gen.add_argument("--persons", type=int, default=demo_data.DEFAULT_PERSONS)
    gen.add_argument("--out", required=True, help="the SQLite file to write (replaced)")
    gen.add_argument("--seed", type=int, default=demo_data.DEFAULT_SEED)
    gen.set_defaults(func=cmd_generate)
    ids = sub.add_parser("demo-identities", help="print the documented demo identities")
    ids.add_argument("--seed", type=int, default=demo_data.DEFAULT_SEED)
    ids.add_argument("--json", action="store_true", help="JSON instead of a Markdown table")
    ids.set_defaults(func=cmd_identities)
    srv = sub.add_parser("serve", help="serve a demo core database over the HTTP API "
                                       "(core_client/openapi.yaml), for trying core = http")
    srv.add_argument("--db", required=True, help="a demo core database (generated if missing)")
    srv.add_argument("--key-env", default="HOTLINE_CORE_KEY",
                     help="environment variable holding the signing key")
    srv.add_argument("--listen", default="tcp:port=8340:interface=127.0.0.1",
                     help="Twisted endpoint; port=0 picks a free port")
    srv.add_argument("--center", default="demo")
    srv.set_defaults(func=cmd_serve)


def cmd_generate(args) -> int:
    counts = demo_data.generate(args.out, args.persons, args.seed)
    print(f"{args.out}: {counts['persons']} persons, {counts['details']} details, "
          f"{counts['loans']} loans, {counts['events']} events in {counts['seconds']} s")
    return 0


def identities_markdown(seed: int = demo_data.DEFAULT_SEED) -> str:
    """The identities as the Markdown table kept in DEMO_IDENTITIES.md."""
    lines = ["| what it shows | account no. (GRZH) | ID number (ZJHM) | name | mobile | "
             "password |", "|---|---|---|---|---|---|"]
    for i in demo_data.demo_identities(seed):
        lines.append(f"| {i.label} | {i.account_no} | {i.id_number} | {i.name} | {i.mobile} | "
                     f"{i.password} |")
    return "\n".join(lines) + "\n"


def cmd_identities(args) -> int:
    if args.json:
        print(json.dumps([i.__dict__ for i in demo_data.demo_identities(args.seed)],
                         ensure_ascii=False, indent=2))
    else:
        print(identities_markdown(args.seed), end="")
    return 0


def cmd_serve(args) -> int:
    """Run the test core server over the real reactor until SIGTERM or SIGINT."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.web.server import Site

    from core_client.embedded import EmbeddedCore
    from core_client.testing import CoreServer

    key = os.environ.get(args.key_env)
    if not key:
        print(f"hotline: environment variable {args.key_env} (the signing key) is not set",
              file=sys.stderr)
        return 2
    server = CoreServer(EmbeddedCore(args.center, args.db, reactor), key, reactor)

    def listening(port) -> None:
        print(f"core {args.center} listening on port {port.getHost().port}", flush=True)

    exit_code = [0]

    def failed(failure) -> None:
        print(f"hotline: cannot listen: {failure.getErrorMessage()}", file=sys.stderr)
        exit_code[0] = 1
        reactor.stop()

    d = serverFromString(reactor, args.listen).listen(Site(server))
    d.addCallbacks(listening, failed)
    reactor.run()
    return exit_code[0]


def main(argv: list[str] | None = None) -> int:
    """Run the core tools without the daemon's parser (``python -m core_client.cli``)."""
    parser = argparse.ArgumentParser(prog="hotline")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
