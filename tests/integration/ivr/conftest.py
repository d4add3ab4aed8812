"""The IVR's integration fixtures: a fresh database of every kind, run without a reactor."""
from __future__ import annotations

import pytest

from storage.db import Database
from storage.migrate import upgrade


@pytest.fixture(params=["create_all", "migration", "postgresql"])
def db(tmp_path, request):
    """A fresh database: SQLite from the models or from the Alembic migration, and
    PostgreSQL from the migration."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'hotline.db'}"
    database = Database(url, reactor=None)
    if request.param == "create_all":
        database.create_all()
    else:
        upgrade(url)
    yield database
    database.engine.dispose()
