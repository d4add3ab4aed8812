"""Fixtures for core_client tests: a small demo core, synchronous stand-ins for threads."""
from __future__ import annotations


import pytest

from core_client import demo_data
from core_client.embedded import EmbeddedCore
from tests.support.core import InlinePool, ThreadedClock

SMALL = 300  # persons in the shared demo core: enough for every profile, fast to build


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("core") / "core-demo.db"
    demo_data.generate(path, SMALL)
    return path


@pytest.fixture
def clock():
    return ThreadedClock()


@pytest.fixture
def core(demo_path, tmp_path, clock):
    """An embedded core over a private copy of the demo database, run inline on ``clock``."""
    import shutil

    path = tmp_path / "core.db"
    shutil.copy(demo_path, path)
    return EmbeddedCore("demo", path, clock, InlinePool())


@pytest.fixture(scope="session")
def identities():
    return {ident.label: ident for ident in demo_data.demo_identities()}
