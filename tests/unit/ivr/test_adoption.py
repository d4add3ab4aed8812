"""Adoption of a dead daemon's calls: which instances, which channels, and how they resume."""
from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from ivr.asterisk.adoption import LEASE_PREFIX, Adoption, _survey, plan, to_adopt
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import ListResult
from storage.cluster import acquire, release
from tests.support.ami_fakes import FakeLink, make, start
from tests.support.ivr_fakes import HANGUP, FakeSession


def channel(uniqueid: str, owner: str, app: str = "Read", data: str = "HOTLINE_DIGITS,menu,1,,1,",
            menu: str = "") -> Message:
    return Message([("Event", "CoreShowChannel"), ("Channel", f"PJSIP/c-{uniqueid}"),
                    ("Uniqueid", uniqueid), ("Application", app), ("ApplicationData", data),
                    ("Language", "en"), ("Exten", "12329"), ("CallerIDNum", "13800138000"),
                    ("ChanVariable", f"HOTLINE_AGI={owner}"),
                    ("ChanVariable", f"HOTLINE_MENU={menu}")])


class FakeDb:
    """The storage.cluster calls adoption makes, answered from memory."""

    def __init__(self, lapsed):
        self.lapsed, self.held, self.released, self.looks = lapsed, True, [], 0
        self.adopter = None  # who holds this daemon's own calls' lease

    def run(self, fn, *args):
        if fn is _survey:
            self.looks += 1
            return succeed((list(self.lapsed), self.adopter))
        if fn is acquire:
            return succeed(self.held)
        if fn is release:
            self.released.append(args)
            return succeed(None)
        raise AssertionError(fn)


class FakeMembership:
    """What adoption reads of storage.cluster.Membership: steady for long unless told."""

    def __init__(self, db, clock, steady=60.0):
        self.db, self.clock, self.instance, self.ttl, self.steady = db, clock, "me", 1.5, steady

    def steady_for(self):
        return self.steady


def adoption(db, clock, nodes, steady=60.0):
    return Adoption(FakeMembership(db, clock, steady), nodes, 0.25)


async def waits_in_menu(session):
    await session.get_data(["ivr/main-menu"], 4000, 1)


def test_plan_adopts_lapsed_instances_nobody_holds():
    """A lapsed instance whose calls nobody adopted is adopted; one another live daemon
    adopted, or this daemon itself, is not."""
    lapsed = [("a", None), ("b", "c"), ("me", None), ("d", "me")]
    assert plan(lapsed, set(), "me").adopt == ("a", "d")
    assert plan(lapsed, {"a"}, "me").adopt == ("d",)


def test_plan_gives_back_instances_alive_again_or_held_elsewhere():
    """An adopted instance that is alive again (not lapsed) or whose lease another daemon
    holds is given back; one still lapsed and held here is kept."""
    decided = plan([("a", "me"), ("b", "other")], {"a", "b", "c"}, "me")
    assert decided.give_back == ("b", "c") and decided.adopt == ()


def test_only_the_dead_daemons_channels_without_a_session_are_adopted():
    """From a node's listing: channels whose HOTLINE_AGI names the dead daemon; not another
    live daemon's, not calls this dispatcher drives already, not calls that left AGI."""
    link = FakeLink()
    d = make(link, "me", waits_in_menu)
    d.adopted.add("dead")
    start(link, "1.1", "me")
    listing = ListResult(Message([]), [channel("1.1", "me"), channel("1.2", "dead"),
                                       channel("1.3", "alive"), channel("1.4", "", "Queue")])
    assert [c.get("Uniqueid") for c in to_adopt(d, listing, "dead")] == ["1.2"]


def test_adopted_call_is_claimed_armed_and_driven_here():
    """Taking over a dead daemon: its channel waiting on the node gets HOTLINE_AGI naming this
    daemon, its watchdog re-armed, and the adopted flow for the menu it was in, whose first
    command is sent; a new call the dialplan still sends to the dead daemon is taken too
    and claimed."""
    link, clock = FakeLink(), Clock()
    d = make(link, "me", waits_in_menu, clock)
    link.listing = [channel("2.1", "dead", menu="deposit")]
    flows = []

    def resuming(at):
        async def resumed(session):
            flows.append((session.uniqueid, session.language, at))
            await session.get_data(["ivr/main-menu"], 4000, 1)
        return resumed

    looking = adoption(FakeDb([("dead", None)]), clock, [(d, resuming)])
    looking.startService()
    clock.advance(0.25)
    assert looking.adopted == {"dead"} and d.adopted == {"dead"}
    assert flows == [("2.1", "en", "deposit")]
    setvars = [(a.get("Channel"), a["Variable"], a["Value"]) for a in link.actions
               if a["Action"] == "Setvar"]
    assert ("PJSIP/c-2.1", "HOTLINE_AGI", "me") in setvars
    assert ("PJSIP/c-2.1", "TIMEOUT(absolute)", "10") in setvars
    assert [a["Channel"] for a in link.agi()] == ["PJSIP/c-2.1"]
    start(link, "2.2", "dead")  # a new call sent to the dead daemon
    assert "2.2" in d.sessions
    assert {"Action": "Setvar", "Channel": "PJSIP/c-2.2", "Variable": "HOTLINE_AGI",
            "Value": "me"} in link.actions
    assert d.stats["adopted"] == 1 and d.stats["started"] == 1


def test_a_dead_daemon_alive_again_gets_its_new_calls_back():
    """Once the dead instance's lease is alive again, its new calls are its own again here,
    and the calls' lease is released."""
    link, clock = FakeLink(), Clock()
    d = make(link, "me", waits_in_menu, clock)
    db = FakeDb([("dead", None)])
    adoption(db, clock, [(d, lambda at: waits_in_menu)]).startService()
    clock.advance(0.25)
    db.lapsed = []
    clock.advance(0.25)
    assert d.adopted == set() and db.released == [(LEASE_PREFIX + "dead", "me")]
    start(link, "3.1", "dead")
    assert "3.1" not in d.sessions and d.stats["foreign"] == 1


def test_a_lease_held_elsewhere_adopts_nothing():
    """When another daemon took the dead one's calls' lease first, nothing is adopted here."""
    link, clock = FakeLink(), Clock()
    d = make(link, "me", waits_in_menu, clock)
    link.listing = [channel("4.1", "dead")]
    db = FakeDb([("dead", None)])
    db.held = False
    adoption(db, clock, [(d, lambda at: waits_in_menu)]).startService()
    clock.advance(0.25)
    assert d.adopted == set() and d.sessions == {}


def test_the_first_daemon_back_leaves_an_adopted_call_alone():
    """A restarted daemon does not treat as its orphan (for the fallback) a call it started
    that another daemon adopted: HOTLINE_AGI names the adopter."""
    link = FakeLink()
    d = make(link, "dead", waits_in_menu)
    listing = ListResult(Message([]), [
        channel("5.1", "me", "AGI", "agi:async,dead,ivr,gz"),
        channel("5.2", "dead", "AGI", "agi:async,dead,ivr,gz")])
    assert [c.get("Uniqueid") for c in d.orphans(listing)] == ["5.2"]


def test_resumed_call_starts_at_the_main_menu_in_the_callers_language(handler):
    """An adopted call whose menu is not known skips the language menu: the main menu, in
    the language the channel has; the record says it was adopted (and goes on in the dead
    daemon's row)."""
    session = FakeSession([HANGUP])
    session.language = "en"
    out: list = []
    Deferred.fromCoroutine(handler.resume(session, at="no-such-menu")).addCallback(out.append)
    assert out == ["abandoned"]
    assert "/en/ivr/main-menu" in session.log[0][1][0]
    record = handler.records.closed[0][0]
    assert record.path[:2] == ["adopted", "main"] and record.adopted


def test_resumed_call_replays_the_menu_it_was_in(handler):
    """An adopted call last seen in the deposit menu hears the deposit menu again; one that
    never reached a menu (its daemon died as it arrived) starts at the beginning."""
    session = FakeSession([HANGUP])
    Deferred.fromCoroutine(handler.resume(session, at="deposit"))
    assert "/zh/ivr/deposit-menu" in session.log[0][1][-1]
    assert handler.records.closed[0][0].path[:2] == ["adopted", "deposit"]
    new = FakeSession([HANGUP])
    Deferred.fromCoroutine(handler.resume(new))
    assert handler.records.closed[1][0].path[:2] == ["adopted", handler.menus["demo"].start]


class RecordingAmi:
    def __init__(self):
        self.actions = []

    def action(self, name, headers=None, variables=None, timeout=None):
        self.actions.append((name, headers))
        return succeed(Message([("Response", "Success")]))


def test_in_a_cluster_each_menu_entered_is_kept_on_the_channel(handler):
    """With keep_menus (a cluster) every menu a call enters is set on its channel over AMI
    (HOTLINE_MENU), for a daemon that may have to adopt it; without, nothing is sent."""
    handler.keep_menus = True
    session = FakeSession(["1", "1", HANGUP])
    session.ami = RecordingAmi()
    Deferred.fromCoroutine(handler(session))
    kept = [h["Value"] for name, h in session.ami.actions
            if name == "Setvar" and h["Variable"] == "HOTLINE_MENU"]
    assert kept == ["language", "main", "deposit"]
    assert {h["Channel"] for _name, h in session.ami.actions} == {session.channel}
    handler.keep_menus = False
    quiet = FakeSession([HANGUP])
    quiet.ami = RecordingAmi()
    Deferred.fromCoroutine(handler(quiet))
    assert quiet.ami.actions == []


def test_a_daemon_not_steady_itself_adopts_nothing():
    """A daemon whose own heartbeats were not steady for a lease time and the settling margin
    (just started, or back from a database outage in which every lease lapsed) adopts
    nothing: the others may not have renewed theirs yet."""
    link, clock = FakeLink(), Clock()
    d = make(link, "me", waits_in_menu, clock)
    link.listing = [channel("6.1", "dead")]
    db = FakeDb([("dead", None)])
    adoption(db, clock, [(d, lambda at: waits_in_menu)], steady=3.0).startService()
    clock.advance(0.25)
    assert d.adopted == set() and d.sessions == {}


def test_a_daemon_whose_calls_were_adopted_lets_them_go():
    """A daemon that only stalled past its lease time, and finds its calls' lease held by
    another daemon, stops driving its calls (no command more), even before it is steady
    again: the adopter drives them, never both."""
    link, clock = FakeLink(), Clock()
    d = make(link, "me", waits_in_menu, clock)
    start(link, "7.1", "me")
    sent = len(link.agi())
    db = FakeDb([])
    db.adopter = "other"
    adoption(db, clock, [(d, lambda at: waits_in_menu)], steady=0.0).startService()
    clock.advance(0.25)
    assert d.sessions == {} and d.stats["link_lost"] == 1
    assert len(link.agi()) == sent
    assert not [a for a in link.actions if a["Action"] in ("Redirect", "Hangup")]
