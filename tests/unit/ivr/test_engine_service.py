"""The call handler the dispatcher calls: center choice, prompt paths, the record."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure

from common.config import load
from daemon import ROOMS
from core_client.testing import FakeCore
from ivr.service import UnknownCenter, make_service
from ivr.routing import AdminCalls
from prompts.installed import InstalledPrompts
from tests.support.ivr_fakes import TWO_CENTERS_INI, HANGUP, FakeSession

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
    path.write_text(TWO_CENTERS_INI.format(state=tmp_path).replace(
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


def test_switched_off_item_is_closed_on_the_next_call(handler):
    """The console's switches are read at each call's start: an item switched off plays
    the closed prompt instead of its menu, with no restart."""
    from ivr.menu import Switch

    off: dict[str, Switch] = {}

    async def switches(center):
        return off

    handler.switches = switches
    first = FakeSession(["1", "2", HANGUP])  # 普通话, loans
    _call(handler, first)
    assert any("loan-menu" in p for entry in first.log for p in entry[1])
    off["loan"] = Switch(enabled=False)
    second = FakeSession(["1", "2", HANGUP])
    _call(handler, second)
    played = [p for entry in second.log for p in entry[1]]
    assert not any("loan-menu" in p for p in played)
    assert any("service-closed" in p for p in played)


def test_item_hours_from_the_console_close_it_outside_them(handler):
    """Service hours set in the console replace the file's for the next call: outside them
    the item plays the closed prompt."""
    from common.daily_window import DailyWindow
    from ivr.menu import Switch

    async def switches(center):
        return {"loan": Switch(enabled=True, hours=DailyWindow.parse("00:00-00:01"))}

    handler.switches = switches
    session = FakeSession(["1", "2", HANGUP])
    _call(handler, session)
    played = [p for entry in session.log for p in entry[1]]
    assert not any("loan-menu" in p for p in played)
    assert any("service-closed" in p for p in played)


def test_several_asterisk_nodes_get_a_link_and_dispatcher_each(tmp_path):
    """``[ami] endpoint`` may list several Asterisk nodes (behind a SIP balancer): the
    daemon keeps one AMI link, call dispatcher and call handler per node (the menus
    loaded once), and reports link state and calls per node for ``hotline cluster status``."""
    path = tmp_path / "hotline.ini"
    path.write_text(TWO_CENTERS_INI.format(state=tmp_path).replace(
        "enabled = no", "enabled = yes\nsecret = s3cret\nendpoint = tcp:host=127.0.0.2:port=5038"
        "\n  tcp:host=127.0.0.3:port=5038"), "utf-8")
    config = load(path, ROOMS)
    service = make_service(config, Clock(), db=None,
                           cores={"demo": FakeCore("demo"), "north": FakeCore("north")})
    assert [n.name for n in service.nodes] == ["127.0.0.2:5038", "127.0.0.3:5038"]
    assert len({id(n.link) for n in service.nodes}) == 2
    handlers = [n.dispatcher.flow_factory.ivr for n in service.nodes]
    assert handlers[0] is service.handler
    assert handlers[1].menus["demo"] is handlers[0].menus["demo"]
    assert service.status() == {"127.0.0.2:5038": {"ami": "down", "calls": 0},
                                "127.0.0.3:5038": {"ami": "down", "calls": 0}}


def test_the_ami_link_is_back_within_2_s_of_a_long_outage(tmp_path):
    """Asterisk's manager refuses connections for 40 s: the link keeps trying at least every
    1.2 s, so it logs in again within 2 s of the manager's return (issue 13, defect 4)."""
    path = tmp_path / "hotline.ini"
    path.write_text(TWO_CENTERS_INI.format(state=tmp_path).replace(
        "enabled = no", "enabled = yes\nsecret = s3cret\nendpoint = tcp:host=127.0.0.1:port=1"),
        "utf-8")
    reactor = MemoryReactorClock()
    service = make_service(load(path, ROOMS), reactor, db=None,
                           cores={"demo": FakeCore("demo"), "north": FakeCore("north")})
    service.link.start()
    attempts = []
    while reactor.seconds() < 40:
        attempts.append(reactor.seconds())
        factory = reactor.tcpClients[-1][2]
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        count = len(reactor.tcpClients)
        while len(reactor.tcpClients) == count and reactor.seconds() < 60:
            reactor.advance(0.05)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(gaps) > 30 and max(gaps) <= 1.25


def test_a_calls_prompts_are_resolved_without_looking_at_any_file(handler, monkeypatch):
    """Each prompt of a call names the center's own recording or the default one without a
    file lookup: the lookup (up to six stats a prompt) ran on the reactor thread between a
    caller's key and the next prompt (issue 13, the daemon's p99)."""
    looked = []

    def stat(path, *args, **kwargs):
        looked.append(path)
        raise FileNotFoundError(path)

    session = FakeSession(["1", "1", HANGUP])
    with monkeypatch.context() as m:
        m.setattr(os, "stat", stat)
        assert _call(handler, session) == "abandoned"
    played = [p for entry in session.log if isinstance(entry[1], tuple) for p in entry[1]]
    assert len(played) > 3 and all("/current/default/" in p for p in played)
    assert looked == []


class _PromptChanges:
    """``Database.run(library.installed_since, change)`` answering from ``answers`` in turn
    (a failure: the database is locked); what each call asked is kept in ``asked``."""

    def __init__(self, *answers):
        self.answers, self.asked = list(answers), []

    def run(self, fn, change):
        self.asked.append(change)
        answer = self.answers.pop(0)
        if answer is None:
            return fail(OperationalError("SELECT", {}, Exception("database is locked")))
        return succeed(answer)


def test_a_centers_own_recording_is_played_from_the_next_call_after_its_install():
    """Which center replaced which prompt comes from prompt_current (shared by a cluster),
    read again at a call's start only when the audit trail shows a change since; a failed
    read keeps what was known and the next call asks again."""
    db = _PromptChanges((7, {("demo", "zh", "ivr/welcome")}), (7, None), None,
                        (9, {("demo", "zh", "ivr/welcome"), ("demo", "zh", "menu/main")}))
    installed = InstalledPrompts("/lib", db)
    Deferred.fromCoroutine(installed.fresh())
    assert installed.path("demo", "zh", "ivr/welcome") == "/lib/current/demo/zh/ivr/welcome"
    assert installed.path("north", "zh", "ivr/welcome") == "/lib/current/default/zh/ivr/welcome"
    assert installed.path("demo", "en", "ivr/welcome") == "/lib/current/default/en/ivr/welcome"
    assert installed.path("demo", "zh", "menu/main") == "/lib/current/default/zh/menu/main"
    for _ in range(3):
        Deferred.fromCoroutine(installed.fresh())
    assert db.asked == [None, 7, 7, 7]
    assert installed.path("demo", "zh", "menu/main") == "/lib/current/demo/zh/menu/main"
