"""LostCalls: records settled from Asterisk's database after a login and on the UserEvent."""
from __future__ import annotations

from twisted.internet.defer import succeed

from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import ListResult
from ivr.asterisk.lost_calls import FAMILY, LostCalls


class FakeLink:
    def __init__(self, tree, channels):
        self.tree, self.channels = tree, channels
        self.actions, self.ups, self.subs = [], [], {}

    def on_up(self, callback):
        self.ups.append(callback)

    def subscribe(self, name, callback):
        self.subs.setdefault(name, []).append(callback)

    def list_action(self, name, headers=None, timeout=None):
        self.actions.append((name, headers))
        events = self.tree if name == "DBGetTree" else self.channels
        return succeed(ListResult(Message([("Response", "Success")]), events, None))

    def action(self, name, headers=None, variables=None, timeout=None):
        self.actions.append((name, headers))
        return succeed(Message([("Response", "Success")]))


class FakeRecords:
    def __init__(self):
        self.settled = []

    async def settle(self, instance, calls, busy):
        self.settled.append((instance, [c.uniqueid for c in calls], busy))
        return 0, len(calls)


def _line(uniqueid, value):
    return Message([("Event", "DBGetTreeResponse"), ("Family", FAMILY),
                    ("Key", f"/{FAMILY}/{uniqueid}"), ("Val", value)])


def test_after_login_the_fallback_lines_are_settled_and_named_for_deletion():
    """Ours are settled (calls running here or still up in Asterisk are busy) and their
    keys named in the instance's global for the dialplan to delete (a Setvar: the AMI user
    may not DBDel); another instance's line is left for its daemon (issue 13, defect 3)."""
    link = FakeLink([_line("1.1", "me|demo|1|2|3|watchdog|ivr|zh|****1234"),
                     _line("1.2", "other|demo|1|2|3|watchdog|ivr|zh|****1234"),
                     _line("1.3", "me|demo|1|2|4|watchdog|ivr|zh|****1234")],
                    [Message([("Event", "CoreShowChannel"), ("Uniqueid", "5.5")])])
    records = FakeRecords()
    lost = LostCalls(link, "me", records, lambda: {"7.7"})
    lost.start()
    for callback in link.ups:
        callback()
    assert records.settled == [("me", ["1.1", "1.3"], {"5.5", "7.7"})]
    assert link.actions[-1] == ("Setvar", {"Variable": "HOTLINE_FALLBACK_SETTLED_me",
                                           "Value": "1.1&1.3"})
    assert not any(name == "DBDel" for name, _h in link.actions)


def test_no_more_keys_are_named_than_one_ami_line_holds():
    """After a long outage many lines wait: one Setvar names what fits one AMI line (the
    manager reads 1024 bytes a line); the rest are named by later sweeps."""
    link = FakeLink([_line(f"1796056994.{i:04d}", "me|demo|1|2|3|watchdog|ivr|zh|****1234")
                     for i in range(200)], [])
    lost = LostCalls(link, "me", FakeRecords(), set)
    lost.start()
    for callback in link.ups:
        callback()
    name, headers = link.actions[-1]
    keys = headers["Value"].split("&")
    assert name == "Setvar" and len(headers["Value"]) <= 900 and 40 < len(keys) < 200
    assert keys == sorted(keys) and keys[0] == "1796056994.0000"


def test_the_dialplans_user_event_settles_again():
    """A call that met the fallback while the daemon is up is recorded at its hang-up."""
    link = FakeLink([], [])
    records = FakeRecords()
    LostCalls(link, "me", records, set).start()
    for callback in link.subs["UserEvent"]:
        callback(Message([("Event", "UserEvent"), ("UserEvent", "HotlineFallbackEnd")]))
        callback(Message([("Event", "UserEvent"), ("UserEvent", "SomethingElse")]))
    assert len(records.settled) == 1
