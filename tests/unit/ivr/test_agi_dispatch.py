"""The call dispatcher: ownership between daemons, heartbeat and watchdog, recovery after link loss."""
from __future__ import annotations

from urllib.parse import quote as urlquote

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock

from ivr.asterisk.agi import AgiLinkLost, CallHungUp
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiConnectionLost, ListResult
from ivr.asterisk.calls import CallDispatcher


class FakeLink:
    """The AmiLink surface the dispatcher uses, recording actions."""

    def __init__(self):
        self.subs: dict[str, list] = {}
        self.ups, self.downs = [], []
        self.is_up = True
        self.actions: list[dict] = []
        self.listing: list[Message] = []

    def subscribe(self, event, cb):
        self.subs.setdefault(event.lower(), []).append(cb)
        return lambda: self.subs[event.lower()].remove(cb)

    def on_up(self, cb):
        self.ups.append(cb)

    def on_down(self, cb):
        self.downs.append(cb)

    def emit(self, *headers):
        m = Message(list(headers))
        for cb in list(self.subs.get(m.event.lower(), [])):
            cb(m)

    def action(self, name, headers=None, variables=None, timeout=None):
        if not self.is_up:
            return fail(AmiConnectionLost("down"))
        self.actions.append({"Action": name, **(headers or {})})
        if name == "Getvar":
            value = {"HOTLINE_DIGITS": "12", "READSTATUS": "OK"}.get(headers["Variable"], "")
            return succeed(Message([("Response", "Success"), ("Value", value)]))
        return succeed(Message([("Response", "Success")]))

    def list_action(self, name, headers=None, timeout=None):
        self.actions.append({"Action": name})
        return succeed(ListResult(Message([("Response", "Success")]), list(self.listing)))

    def agi(self):
        return [a for a in self.actions if a["Action"] == "AGI"]

    def go_down(self):
        self.is_up = False
        for cb in self.downs:
            cb()

    def go_up(self):
        self.is_up = True
        for cb in self.ups:
            cb()


def start(link, uniqueid, instance, caller="13800138000"):
    env = (f"agi_request: async\nagi_channel: PJSIP/c-{uniqueid}\nagi_uniqueid: {uniqueid}\n"
           f"agi_callerid: {caller}\nagi_arg_1: {instance}\nagi_arg_2: ivr\nagi_arg_3: gz\n\n")
    link.emit(("Event", "AsyncAGIStart"), ("Channel", f"PJSIP/c-{uniqueid}"),
              ("Uniqueid", uniqueid), ("Env", urlquote(env)))


def result(link, uniqueid, text, command=None):
    cid = command or link.agi()[-1]["CommandID"]
    link.emit(("Event", "AsyncAGIExec"), ("Uniqueid", uniqueid), ("CommandId", cid),
              ("Result", urlquote(text)))


def end(link, uniqueid):
    link.emit(("Event", "AsyncAGIEnd"), ("Uniqueid", uniqueid), ("Channel", f"PJSIP/c-{uniqueid}"))


def make(link, instance, flow, clock=None, **kw):
    d = CallDispatcher(link, instance, flow, clock or Clock(), heartbeat_interval=5,
                       watchdog_s=10, **kw)
    d.start()
    return d


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
    """A link drop ends the flow without a hangup; on reconnect the orphan goes to the fallback."""
    link = FakeLink()

    async def flow(session):
        await session.play(["x"])

    d = make(link, "n", flow)
    start(link, "5.1", "n")
    link.go_down()
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
    """Commands on a session cut off by the link fail with AgiLinkLost."""
    link = FakeLink()
    errors = []

    async def flow(session):
        try:
            await session.play(["x"])
        except AgiLinkLost as e:
            errors.append(e)
            raise

    make(link, "n", flow)
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
