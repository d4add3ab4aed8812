"""``hotline db upgrade``: Alembic migrations run programmatically, no alembic.ini needed.

Each room keeps its own branch of revisions (branch label = room name) in
storage/migrations/versions, so rooms evolve their tables independently and
``upgrade heads`` brings every branch up.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

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
