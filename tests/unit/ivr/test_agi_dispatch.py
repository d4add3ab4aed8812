"""The call dispatcher: ownership between daemons, heartbeat and watchdog, recovery after link loss."""
from __future__ import annotations


from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ivr.asterisk.agi import AgiLinkLost, CallHungUp
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiConnectionLost, ListResult
from tests.support.ami_fakes import FakeLink, end, make, result, start


def test_two_dispatchers_never_drive_the_same_call():
    """Each call is driven only by the dispatcher named in its first AGI argument."""
    link = FakeLink()
    seen = {"a": [], "b": []}

    def flow_for(name):
        async def flow(session):
            seen[name].append(session.uniqueid)
            await session.stream_file("hello")
        return flow

    a, b = make(link, "node-a", flow_for("a")), make(link, "node-b", flow_for("b"))
    start(link, "1.1", "node-a")
    start(link, "1.2", "node-b")
    start(link, "1.3", "node-c")
    assert seen == {"a": ["1.1"], "b": ["1.2"]}
    assert [x["Channel"] for x in link.agi()] == ["PJSIP/c-1.1", "PJSIP/c-1.2"]
    assert a.stats["foreign"] == 2 and b.stats["foreign"] == 2


def test_flow_completes_then_call_is_hung_up():
    """A flow that returns without leaving gets a HANGUP; results route by CommandID."""
    link = FakeLink()
    got = []

    async def flow(session):
        got.append(await session.get_data(["menu"], 4000, 2))

    d = make(link, "n", flow)
    start(link, "2.1", "n")
    result(link, "2.1", "200 result=0\n")  # the Read
    assert got[0].digits == "12"
    assert link.agi()[-1]["Command"] == "HANGUP"
    result(link, "2.1", "200 result=1\n")
    end(link, "2.1")
    assert d.sessions == {} and d.running == {} and d.stats["completed"] == 1


def test_hangup_mid_flow_ends_cleanly_without_commands():
    """AsyncAGIEnd mid-command ends the flow with CallHungUp and sends nothing more."""
    link = FakeLink()
    caught = []

    async def flow(session):
        try:
            await session.play(["long"])
        except CallHungUp:
            caught.append(True)
            raise

    d = make(link, "n", flow)
    start(link, "3.1", "n")
    n = len(link.actions)
    end(link, "3.1")
    assert caught == [True] and len(link.actions) == n
    assert d.stats["hung_up"] == 1 and d.running == {}


def test_heartbeat_and_watchdog_on_clock():
    """Every interval the global heartbeat gets the epoch and each live call its watchdog."""
    link, clock = FakeLink(), Clock()
    clock.advance(1_700_000_000)

    async def flow(session):
        await session.play(["x"])

    make(link, "n", flow, clock)
    start(link, "4.1", "n")
    clock.advance(5)
    setvars = [a for a in link.actions if a["Action"] == "Setvar"]
    assert {"Action": "Setvar", "Variable": "HOTLINE_HEARTBEAT", "Value": "1700000005"} in setvars
    assert {"Action": "Setvar", "Channel": "PJSIP/c-4.1", "Variable": "TIMEOUT(absolute)",
            "Value": "10"} in setvars


def test_link_loss_leaves_call_for_recovery_then_recovers_on_reconnect():
    """A link down longer than the resume grace ends the flow without a hangup; on
    reconnect the orphan goes to the fallback."""
    link, clock = FakeLink(), Clock()

    async def flow(session):
        await session.play(["x"])

    d = make(link, "n", flow, clock)
    start(link, "5.1", "n")
    link.go_down()
    assert d.stats["link_lost"] == 0
    clock.advance(5)
    assert d.stats["link_lost"] == 1 and d.sessions == {}
    link.listing = [
        Message([("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-5.1"), ("Uniqueid", "5.1"),
                 ("Application", "AGI"), ("ApplicationData", "agi:async,n,ivr,gz"),
                 ("CallerIDNum", "13800138000")]),
        Message([("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-5.2"), ("Uniqueid", "5.2"),
                 ("Application", "AGI"), ("ApplicationData", "agi:async,other,ivr,gz")]),
        Message([("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-5.3"), ("Uniqueid", "5.3"),
                 ("Application", "Queue"), ("ApplicationData", "hotline-agents")]),
    ]
    link.go_up()
    assert d.stats["recovered"] == 1
    assert link.actions[-1] == {"Action": "Redirect", "Channel": "PJSIP/c-5.1",
                                "Context": "hotline-fallback", "Exten": "s", "Priority": "1"}
    end(link, "5.1")
    assert d.running == {}


def test_live_session_is_not_recovered():
    """A channel that still has a live session here is not treated as an orphan."""
    link = FakeLink()

    async def flow(session):
        await session.play(["x"])

    d = make(link, "n", flow)
    start(link, "6.1", "n")
    listing = ListResult(Message([]), [Message([
        ("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-6.1"), ("Uniqueid", "6.1"),
        ("Application", "AGI"), ("ApplicationData", "agi:async,n,ivr,gz")])])
    assert d.orphans(listing) == []


def test_orphan_running_an_application_found_by_channel_variable():
    """A channel whose AGI is running Read shows Application Read; HOTLINE_AGI still names it."""
    link = FakeLink()

    async def flow(session):
        await session.play(["x"])

    d = make(link, "n", flow)
    listing = ListResult(Message([]), [
        Message([("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-9.1"), ("Uniqueid", "9.1"),
                 ("Application", "Read"), ("ApplicationData", "HOTLINE_DIGITS,menu,4,,1,"),
                 ("ChanVariable", "HOTLINE_AGI=n")]),
        Message([("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-9.2"), ("Uniqueid", "9.2"),
                 ("Application", "Queue"), ("ApplicationData", "hotline-agents"),
                 ("ChanVariable", "HOTLINE_AGI=")]),
        Message([("Event", "CoreShowChannel"), ("Channel", "PJSIP/c-9.3"), ("Uniqueid", "9.3"),
                 ("Application", "Read"), ("ChanVariable", "HOTLINE_AGI=other")]),
    ])
    assert [m.get("Uniqueid") for m in d.orphans(listing)] == ["9.1"]


def test_crashing_flow_sends_caller_to_fallback():
    """A bug in a flow is logged and the caller still leaves via the fallback, not silence."""
    link = FakeLink()

    async def flow(session):
        raise ZeroDivisionError("bug")

    d = make(link, "n", flow)
    start(link, "7.1", "n")
    assert link.actions[-1]["Action"] == "Redirect"
    assert d.stats["crashed"] == 1
    end(link, "7.1")
    assert d.running == {}


def test_link_lost_error_type():
    """Commands on a session cut off by the link (no resumption) fail with AgiLinkLost."""
    link = FakeLink()
    errors = []

    async def flow(session):
        try:
            await session.play(["x"])
        except AgiLinkLost as e:
            errors.append(e)
            raise

    make(link, "n", flow, resume_grace=0)
    start(link, "8.1", "n")
    link.go_down()
    assert len(errors) == 1


def test_taking_a_call_arms_its_watchdog_at_once():
    """The dialplan arms a 2 s watchdog at answer; the daemon taking the call re-arms it to
    ``watchdog_s`` before anything else, so only a call no live daemon took meets the
    fallback that early (issue 13, defect 5)."""
    link = FakeLink()

    async def flow(session):
        await session.play(["x"])

    make(link, "n", flow)
    start(link, "6.1", "n")
    assert link.actions[0] == {"Action": "Setvar", "Channel": "PJSIP/c-6.1",
                               "Variable": "TIMEOUT(absolute)", "Value": "10"}


def _in_agi(uniqueid, application="AGI", instance="n"):
    return Message([("Event", "CoreShowChannel"), ("Channel", f"PJSIP/c-{uniqueid}"),
                    ("Uniqueid", uniqueid), ("Application", application),
                    ("ApplicationData", f"agi:async,{instance},ivr,gz"),
                    ("ChanVariable", f"HOTLINE_AGI={instance}")])


def _blip(link, uniqueid, application="AGI"):
    """The link drops and comes back with the call still in this instance's AGI."""
    link.go_down()
    link.listing = [_in_agi(uniqueid, application=application)]
    link.go_up()


def test_a_blip_is_invisible_keys_typed_during_it_count():
    """The link drops while a call waits in a menu and its Read finished during the blip:
    on reconnect the session resumes, the keys the caller typed are read from the Read's
    variables (not asked again) and the flow goes on; nothing goes to the fallback
    (issue 13, defect 11)."""
    link, clock = FakeLink(), Clock()
    got = []

    async def flow(session):
        got.append(await session.get_data(["menu"], 5000, 1))
        await session.play(["next"])

    d = make(link, "n", flow, clock)
    start(link, "9.1", "n")
    link.go_down()
    clock.advance(1.5)
    link.listing = [_in_agi("9.1", application="Read")]
    link.go_up()
    assert link.agi()[-1]["Command"] == "NOOP"
    result(link, "9.1", "200 result=0\n")  # the NOOP answers first: the Read's answer was lost
    assert got and got[0].digits == "12"
    assert len([a for a in link.agi() if "Read" in a["Command"]]) == 1
    assert 'EXEC "Playback" "next"' in link.agi()[-1]["Command"]
    assert d.stats["resumed"] == 1 and d.stats["recovered"] == 0
    assert not any(a["Action"] == "Redirect" for a in link.actions)


def test_a_reading_cut_by_the_blip_is_played_again():
    """A Playback that finished during the blip (its result lost) is sent again with the
    same CommandID: the caller hears the reading again, the flow goes on."""
    link, clock = FakeLink(), Clock()

    async def flow(session):
        await session.play(["reading"])
        await session.play(["after"])

    make(link, "n", flow, clock)
    start(link, "9.6", "n")
    first = link.agi()[-1]
    _blip(link, "9.6", "Playback")
    result(link, "9.6", "200 result=0\n")  # the NOOP's
    again = link.agi()[-1]
    assert again is not first and again == first
    result(link, "9.6", "200 result=0\n")
    assert 'EXEC "Playback" "after"' in link.agi()[-1]["Command"]


def test_a_command_still_running_is_not_sent_twice():
    """The channel still plays the reading: its result comes on the new connection before
    the NOOP's, so nothing is sent again."""
    link, clock = FakeLink(), Clock()

    async def flow(session):
        await session.play(["reading"])
        await session.play(["after"])

    make(link, "n", flow, clock)
    start(link, "9.2", "n")
    reading = link.agi()[-1]["CommandID"]
    _blip(link, "9.2", "Playback")
    noop = link.agi()[-1]["CommandID"]
    result(link, "9.2", "200 result=0\n", command=reading)
    assert 'EXEC "Playback" "after"' in link.agi()[-1]["Command"]
    result(link, "9.2", "200 result=0\n", command=noop)
    assert sum('"reading"' in a["Command"] for a in link.agi()) == 1


def test_commands_during_the_blip_wait_for_the_link():
    """A flow that sends while the link is down waits and sends once it is back."""
    link, clock = FakeLink(), Clock()

    async def flow(session):
        await session.play(["first"])
        await session.play(["second"])

    make(link, "n", flow, clock)
    start(link, "9.3", "n")
    link.go_down()
    result(link, "9.3", "200 result=0\n")  # the answer arrived just before the cut
    assert len(link.agi()) == 1
    link.listing = [_in_agi("9.3")]
    link.go_up()
    assert 'EXEC "Playback" "second"' in link.agi()[-1]["Command"]


def test_after_the_blip_a_hung_up_call_ends_and_a_new_one_starts():
    """A suspended call gone from AGI ends (hung up during the blip); a call that arrived
    during the blip (never seen) starts its flow instead of going to the fallback."""
    link, clock = FakeLink(), Clock()
    started, ended = [], []

    async def flow(session):
        started.append(session.uniqueid)
        try:
            await session.play(["x"])
        except CallHungUp:
            ended.append(session.uniqueid)
            raise

    d = make(link, "n", flow, clock)
    start(link, "9.4", "n")
    _blip(link, "9.5")
    assert ended == ["9.4"] and started == ["9.4", "9.5"]
    assert d.stats["recovered"] == 0 and d.stats["started_late"] == 1


def test_a_link_down_past_the_grace_gives_the_calls_up():
    """A flow waiting to send while the link stays down past the grace ends with
    AgiLinkLost; on reconnect its call goes to the fallback, not started again."""
    link, clock = FakeLink(), Clock()
    errors = []

    async def flow(session):
        await session.play(["first"])
        try:
            await session.play(["second"])
        except AgiLinkLost as e:
            errors.append(e)
            raise

    d = make(link, "n", flow, clock)
    start(link, "9.7", "n")
    link.go_down()
    result(link, "9.7", "200 result=0\n")
    clock.advance(5)
    assert len(errors) == 1 and d.stats["link_lost"] == 1 and d.sessions == {}
    link.listing = [_in_agi("9.7")]
    link.go_up()
    assert d.stats["recovered"] == 1 and d.stats["started_late"] == 0
    assert link.actions[-1]["Action"] == "Redirect"


class InFlightLink(FakeLink):
    """A link whose AGI actions stay unanswered until ``ack``; the cut fails them with
    AmiConnectionLost, as the protocol does with every pending action."""

    def __init__(self):
        super().__init__()
        self.unanswered = []

    def action(self, name, headers=None, variables=None, timeout=None):
        if name != "AGI" or not self.is_up:
            return super().action(name, headers, variables, timeout)
        self.actions.append({"Action": name, **(headers or {})})
        d = Deferred()
        self.unanswered.append(d)
        return d

    def ack(self):
        pending, self.unanswered = self.unanswered, []
        for d in pending:
            d.callback(Message([("Response", "Success")]))

    def go_down(self):
        pending, self.unanswered = self.unanswered, []
        self.is_up = False
        for d in pending:
            d.errback(AmiConnectionLost("cut"))
        for cb in self.downs:
            cb()


def test_a_command_sent_as_the_link_dropped_is_not_run_twice():
    """The link drops after a menu's Read was written but before Asterisk's "queued" reply:
    Asterisk may hold it. On resume the daemon probes first instead of sending it again
    blindly, so a Read queued twice never plays the menu a second time and eats the keys
    meant for the next one (the blip test's keys in the wrong menu, issue 13 #11)."""
    link, clock = InFlightLink(), Clock()
    got = []

    async def flow(session):
        got.append(await session.get_data(["menu"], 5000, 1))
        await session.play(["next"])

    make(link, "n", flow, clock)
    start(link, "9.8", "n")
    read = link.agi()[-1]
    _blip(link, "9.8", "Read")
    link.ack()
    assert sum("Read" in a["Command"] for a in link.agi()) == 1
    probe = link.agi()[-1]
    assert probe["Command"] == "NOOP"
    result(link, "9.8", "200 result=1\n", command=read["CommandID"])  # Asterisk had queued it
    result(link, "9.8", "200 result=0\n", command=probe["CommandID"])
    link.ack()
    assert got and got[0].digits == "12"
    assert sum("Read" in a["Command"] for a in link.agi()) == 1
    assert 'EXEC "Playback" "next"' in link.agi()[-1]["Command"]


def test_a_command_lost_with_the_link_is_sent_again_after_the_probe():
    """The same cut, but Asterisk never got the Read: the probe answers first and the Read
    is sent again (with its CommandID), so the caller hears the menu and keys it."""
    link, clock = InFlightLink(), Clock()
    got = []

    async def flow(session):
        got.append(await session.get_data(["menu"], 5000, 1))

    make(link, "n", flow, clock)
    start(link, "9.9", "n")
    read = link.agi()[-1]
    _blip(link, "9.9")
    link.ack()
    result(link, "9.9", "200 result=0\n")  # the probe: nothing ran before it
    link.ack()
    again = link.agi()[-1]
    assert again["Command"] == read["Command"] and again["CommandID"] == read["CommandID"]
    assert not got
    result(link, "9.9", "200 result=1\n", command=read["CommandID"])
    assert got and got[0].digits == "12"
