"""The call handler the dispatcher calls: center choice, prompt paths, the record."""
from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from common.config import load
from daemon import ROOMS
from core_client.testing import FakeCore
from ivr.service import CallHandler, UnknownCenter, make_service
from ivr.routing import AdminCalls
from tests.support.ivr_fakes import HANGUP, OFFICE_TIME, FakeSession, MemoryRecords

INI = """
[daemon]
state_dir = {state}
[database]
url = sqlite:///{state}/hotline.db
[center:demo]
name = 示例中心
signature = 示例
dnid = 12329
[center:north]
name = 北区中心
signature = 北区
dnid = 12329001
languages = en, zh
[ami]
enabled = no
[prompts]
library_dir = {state}/prompts
"""


@pytest.fixture
def handler(tmp_path):
    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path), "utf-8")
    config = load(path, ROOMS)
    clock = Clock()
    clock.advance(OFFICE_TIME)
    cores = {"demo": FakeCore("demo"), "north": FakeCore("north")}
    return CallHandler(config, clock, MemoryRecords(clock), cores)


def _call(handler, session):
    out = []
    Deferred.fromCoroutine(handler(session)).addCallback(out.append)
    return out[0]


def test_center_from_agi_argument(handler):
    """The dialplan's third AGI argument names the center."""
    session = FakeSession([HANGUP])
    session.args = ["hotline-1", "ivr", "north"]
    assert handler.center_for(session).code == "north"


def test_center_from_dialled_number(handler):
    """Without the argument, the dialled number picks the center."""
    session = FakeSession([HANGUP], dnid="12329001")
    session.args = ["hotline-1", "ivr"]
    assert handler.center_for(session).code == "north"


def test_unknown_center(handler):
    """A call that matches no center of several is refused with a typed error."""
    session = FakeSession([HANGUP], dnid="999")
    session.args = ["hotline-1", "ivr", "nowhere"]
    with pytest.raises(UnknownCenter):
        handler.center_for(session)


def test_prompts_played_from_the_library(handler, tmp_path):
    """Prompt ids become library paths for the center and language (default center's files)."""
    session = FakeSession([HANGUP])
    assert _call(handler, session) == "abandoned"
    first = session.log[0]
    assert first[0] == "get_data"
    expected = Path(tmp_path, "prompts", "current", "default", "zh", "ivr", "welcome")
    assert first[1][0] == str(expected)
    record, outcome, _ = handler.records.closed[0]
    assert (record.center, record.caller, outcome) == ("demo", "138****8000", "abandoned")


def test_first_language_of_the_center(handler):
    """A center listing English first starts its calls in English."""
    session = FakeSession([HANGUP])
    session.args = ["hotline-1", "ivr", "north"]
    _call(handler, session)
    assert "/en/ivr/welcome" in session.log[0][1][0]


def test_make_service_wires_link_and_dispatcher(tmp_path):
    """make_service builds the AMI link and dispatcher from the config, loads every
    center's menu, and hands this instance's calls to the call handler (administrators'
    calls to the prompt-recording flow)."""
    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path).replace(
        "enabled = no", "enabled = yes\nsecret = s3cret\nendpoint = tcp:host=127.0.0.1:port=1"),
        "utf-8")
    config = load(path, ROOMS)
    service = make_service(config, Clock(), db=None,
                           cores={"demo": FakeCore("demo"), "north": FakeCore("north")})
    assert service.dispatcher.instance == config.daemon.instance
    assert service.dispatcher.flow_factory.ivr is service.handler
    assert isinstance(service.dispatcher.flow_factory.admin, AdminCalls)
    assert service.dispatcher.watchdog_s == config.ivr.ami.watchdog_seconds
    assert set(service.handler.menus) == {"demo", "north"}
