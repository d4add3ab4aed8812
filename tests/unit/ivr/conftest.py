"""The IVR's unit fixtures: a call handler over two centers with fake cores."""
from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from common.config import load
from core_client.testing import FakeCore
from daemon import ROOMS
from ivr.service import CallHandler
from tests.support.ivr_fakes import OFFICE_TIME, TWO_CENTERS_INI, MemoryRecords

@pytest.fixture
def handler(tmp_path):
    path = tmp_path / "hotline.ini"
    path.write_text(TWO_CENTERS_INI.format(state=tmp_path), "utf-8")
    config = load(path, ROOMS)
    clock = Clock()
    clock.advance(OFFICE_TIME)
    cores = {"demo": FakeCore("demo"), "north": FakeCore("north")}
    return CallHandler(config, clock, MemoryRecords(clock), cores)
