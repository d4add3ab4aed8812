"""A throwaway PostgreSQL server on loopback, from Debian's postgresql package.

``python -m sandbox.postgres start --dir D`` initialises a cluster in D (owned by
the ``postgres`` system user, since initdb refuses root), starts it on a free
port, creates database ``hotline`` and prints its URL; ``stop --dir D`` stops it.
The pytest fixtures in ``sandbox.pytest_postgres`` use the same code.
"""
from __future__ import annotations

import argparse
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sandbox.ports import free_port, wait_for_port


class PostgresUnavailable(Exception):
    """The PostgreSQL server binaries are not installed."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


# Throwaway servers trade durability for speed; a replicated pair must not.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
STANDBY_NAME = "standby1"


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(path, pg.pw_uid, pg.pw_gid)


@dataclass
class PostgresServer:
    datadir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "hotline") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def is_standby(self) -> bool:
        return (self.datadir / "standby.signal").exists()

    @classmethod
    def start(cls, datadir: Path | None = None, port: int | None = None,
              settings: str = FAST) -> PostgresServer:
        """Initialise (unless ``datadir`` already holds a cluster, e.g. a base backup)
        and start; ``settings`` are extra ``-c`` options for this server."""
        bindir = _bindir()
        datadir = Path(datadir or tempfile.mkdtemp(prefix="hotline-pg-"))
        datadir.mkdir(parents=True, exist_ok=True)
        _own(datadir)
        port = port or free_port()
        if not (datadir / "PG_VERSION").exists():
            _as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={datadir}"
                f" -c max_connections=200 {settings}")
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts,
                      "-l", str(datadir / "server.log"), "-w", "start"])
        if not wait_for_port("127.0.0.1", port, 20):
            raise RuntimeError(f"PostgreSQL did not listen on {port}; see {datadir}/server.log")
        server = cls(datadir, port)
        if not server.is_standby:
            server.create_database("hotline")
        return server

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            exists = conn.execute(sa.text("select 1 from pg_database where datname=:n"),
                                  {"n": name}).scalar()
            if not exists:
                conn.execute(sa.text(f'create database "{name}"'))
        engine.dispose()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        engine.dispose()

    def stop(self, remove: bool = False) -> None:
        if self.running:
            _as_postgres([str(_bindir() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                          "-w", "stop"])
        if remove:
            shutil.rmtree(self.datadir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return (self.datadir / "postmaster.pid").exists()

    def kill(self) -> None:
        """kill -9 the postmaster, as a lost machine: no shutdown checkpoint. Its
        orphaned backends are killed too, so that nothing answers on its port."""
        pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        for p in [pid] + [int(c) for c in children.stdout.split()]:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        (self.datadir / "postmaster.pid").unlink(missing_ok=True)

    def promote(self) -> None:
        """Turn a standby into a primary (``pg_ctl promote``), waiting until it accepts writes."""
        _as_postgres([str(_bindir() / "pg_ctl"), "-D", str(self.datadir), "-w", "promote"])


@dataclass
class ReplicatedPostgres:
    """A primary with one synchronous streaming standby on loopback.

    The primary waits for the standby before a commit returns
    (``synchronous_standby_names``, ``synchronous_commit=on``), so whatever a
    daemon acknowledged is on both. Daemons use ``url``, a libpq multi-host URL
    with ``target_session_attrs=read-write``: whichever of the two accepts
    writes is the one they reach. The promotion procedure, by hand or in a test:
    kill (or lose) the primary, ``pg_ctl promote -D STANDBY`` (``promote()``), and
    the daemons find the new primary on their next connection. The promoted
    server runs alone, without a synchronous standby (it would otherwise wait
    for ever); build a new standby from it with ``pg_basebackup`` before the
    next failover.
    """

    primary: PostgresServer
    standby: PostgresServer

    def url(self, database: str = "hotline") -> str:
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port},"
                f"127.0.0.1:{self.standby.port}/{database}?target_session_attrs=read-write")

    @classmethod
    def start(cls, base: Path | None = None) -> ReplicatedPostgres:
        base = Path(base or tempfile.mkdtemp(prefix="hotline-pgpair-"))
        base.mkdir(parents=True, exist_ok=True)
        _own(base)
        primary = PostgresServer.start(
            base / "primary",
            settings="-c wal_level=replica -c max_wal_senders=5 -c synchronous_commit=on")
        standby_dir = base / "standby"
        if not (standby_dir / "PG_VERSION").exists():
            _as_postgres([str(_bindir() / "pg_basebackup"), "-D", str(standby_dir), "-R",
                          "-X", "stream", "-c", "fast", "-h", "127.0.0.1",
                          "-p", str(primary.port), "-U", "postgres"])
        # The walreceiver's application_name defaults to cluster_name: the name the
        # primary's synchronous_standby_names waits for.
        standby = PostgresServer.start(standby_dir,
                                       settings=f"-c cluster_name={STANDBY_NAME} -c hot_standby=on")
        pair = cls(primary, standby)
        # Only now: with no standby yet, every commit (create database too) would wait.
        pair._primary_sql(f"alter system set synchronous_standby_names = '{STANDBY_NAME}'",
                          "select pg_reload_conf()")
        pair.wait_synchronous()
        return pair

    def _primary_sql(self, *statements: str) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.primary.admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
        engine.dispose()

    def wait_synchronous(self, timeout: float = 20.0) -> None:
        """Return once the primary reports its standby as synchronous."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.primary.admin_url)
        deadline = time.monotonic() + timeout
        try:
            while True:
                with engine.connect() as conn:
                    state = conn.execute(sa.text(
                        "select sync_state from pg_stat_replication where application_name=:n"),
                        {"n": STANDBY_NAME}).scalar()
                if state == "sync":
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"standby not synchronous (state {state!r})")
                time.sleep(0.2)
        finally:
            engine.dispose()

    def stop(self, remove: bool = False) -> None:
        for server in (self.standby, self.primary):
            server.stop()
        if remove:
            shutil.rmtree(self.primary.datadir.parent, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.postgres")
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int)
    parser.add_argument("--durable", action="store_true",
                        help="PostgreSQL's own durable defaults (fsync, synchronous_commit and "
                             "full_page_writes on), as in production; else the tests' fast ones")
    args = parser.parse_args(argv)
    if args.action == "start":
        server = PostgresServer.start(args.dir, args.port, settings="" if args.durable else FAST)
        (args.dir / "hotline.url").write_text(server.url())
        print(server.url())
    else:
        url = (args.dir / "hotline.url").read_text()
        PostgresServer(args.dir, int(url.rsplit(":", 1)[1].split("/")[0])).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
