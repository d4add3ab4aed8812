"""Fakes for the AMI side of the call dispatcher: a link that records actions, and the
AsyncAGI events Asterisk would send (start, a command's result, end)."""
from __future__ import annotations

from urllib.parse import quote as urlquote

from twisted.internet.defer import fail, succeed
from twisted.internet.task import Clock

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
