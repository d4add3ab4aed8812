"""pytest fixtures: a PostgreSQL server for the session and a fresh database per test.

``HOTLINE_TEST_PG_URL`` (set by .ci/run) points at a running server's ``hotline``
database; without it the fixture starts its own throwaway server. Where
PostgreSQL cannot run at all the tests are skipped, except under CI, where a
missing service is a failure.
"""
from __future__ import annotations

import os
import uuid

import pytest

from sandbox.postgres import PostgresServer, PostgresUnavailable


def unavailable(reason: str):
    """Skip locally, fail under CI: CI must prove the real component."""
    if os.environ.get("CI") or os.environ.get("HOTLINE_REQUIRE_SERVICES"):
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server():
    url = os.environ.get("HOTLINE_TEST_PG_URL")
    if url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        yield PostgresServer(datadir=None, port=port)
        return
    try:
        server = PostgresServer.start()  # under /tmp: the postgres user must reach it
    except (PostgresUnavailable, OSError) as e:
        unavailable(str(e))
    os.environ["HOTLINE_TEST_PG_URL"] = server.url()
    yield server
    os.environ.pop("HOTLINE_TEST_PG_URL", None)
    server.stop(remove=True)


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty database on the session's server, dropped after the test."""
    name = "t_" + uuid.uuid4().hex[:12]
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)
