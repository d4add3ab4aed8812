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
import subprocess
import sys
import tempfile
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


@dataclass
class PostgresServer:
    datadir: Path
    port: int

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str = "hotline") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @classmethod
    def start(cls, datadir: Path | None = None, port: int | None = None) -> PostgresServer:
        bindir = _bindir()
        datadir = Path(datadir or tempfile.mkdtemp(prefix="hotline-pg-"))
        datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(datadir, pg.pw_uid, pg.pw_gid)
        port = port or free_port()
        if not (datadir / "PG_VERSION").exists():
            _as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        opts = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={datadir}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                " -c max_connections=200")
        _as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-o", opts,
                      "-l", str(datadir / "server.log"), "-w", "start"])
        if not wait_for_port("127.0.0.1", port, 20):
            raise RuntimeError(f"PostgreSQL did not listen on {port}; see {datadir}/server.log")
        server = cls(datadir, port)
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
        if (self.datadir / "postmaster.pid").exists():
            _as_postgres([str(_bindir() / "pg_ctl"), "-D", str(self.datadir), "-m", "fast",
                          "-w", "stop"])
        if remove:
            shutil.rmtree(self.datadir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.postgres")
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", type=int)
    args = parser.parse_args(argv)
    if args.action == "start":
        server = PostgresServer.start(args.dir, args.port)
        (args.dir / "hotline.url").write_text(server.url())
        print(server.url())
    else:
        url = (args.dir / "hotline.url").read_text()
        PostgresServer(args.dir, int(url.rsplit(":", 1)[1].split("/")[0])).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
