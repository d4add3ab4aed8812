"""``hotline db upgrade``: Alembic migrations run programmatically, no alembic.ini needed.

Each room keeps its own branch of revisions (branch label = room name) in
storage/migrations/versions, so rooms evolve their tables independently and
``upgrade heads`` brings every branch up.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, target: str = "heads") -> None:
    command.upgrade(alembic_config(url), target)


def current(url: str) -> None:
    command.current(alembic_config(url), verbose=True)


class NotReady(Exception):
    """The database cannot be used yet (no folder, no file, not migrated, unreachable),
    phrased as the one line an operator sees; the command adds what to run."""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, None for PostgreSQL and in-memory SQLite."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    return Path(url[len("sqlite:///"):])


def ensure_folder(url: str) -> None:
    """Create a SQLite database's folder when its parent exists (a missing state folder
    on a fresh installation); a deeper missing path is a mistake in the URL."""
    path = sqlite_file(url)
    if path is None or path.parent.is_dir():
        return
    if not path.parent.parent.is_dir():
        raise NotReady(f"the database folder {path.parent} and its parent do not exist "
                       "(check [database] url and [daemon] state_dir)")
    path.parent.mkdir()


def check_current(url: str) -> None:
    """Raise NotReady unless every branch's migrations are applied; creates nothing."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise NotReady(f"no database at {path} yet")
    wanted = set(ScriptDirectory.from_config(alembic_config(url)).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            applied = set(MigrationContext.configure(conn).get_current_heads())
    except OperationalError as e:
        raise NotReady(f"the database cannot be opened: {str(e.orig).splitlines()[0]}") from None
    finally:
        engine.dispose()
    if applied != wanted:
        raise NotReady("the database is not migrated" if not applied else
                       f"the database is not at the latest schema "
                       f"({len(wanted - applied)} branch(es) behind)")
