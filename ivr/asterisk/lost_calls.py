"""Records always close: calls a dead daemon left open, and calls only the fallback answered.

A daemon killed mid-call leaves open call records; callers who met the
dialplan's fallback while no daemon was alive leave none. The dialplan keeps,
for every call that met the fallback, a line in Asterisk's database
(``hotline_fallback/<uniqueid>``, written by a hang-up handler, so it outlives
any daemon) and announces it with ``UserEvent(HotlineFallbackEnd)``. After every
login, and on that event, this reads the family (``DBGetTree``), settles the
records (``CallRecords.settle``: open ones closed as ``lost`` with the end time
Asterisk kept, new ones as ``fallback``), then names the lines it recorded in the
global ``HOTLINE_FALLBACK_SETTLED_<instance>`` (AMI Setvar, which the daemon's
least-privilege user may send; DBDel would need write ``system``). The dialplan's
hang-up handler deletes the lines named there before it writes the next one, so
recorded lines go away and a line nobody recorded is never touched.
"""
from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.asterisk.agi import LINE_CHARS, chunk_files
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiError
from ivr.records import CallRecords, FallbackCall

FAMILY = "hotline_fallback"
SETTLED_VARIABLE = "HOTLINE_FALLBACK_SETTLED_"  # + the instance; keys joined by "&"


class LostCalls:
    """Settles this instance's call records from what Asterisk kept (see the module)."""

    log = Logger()

    def __init__(self, link, instance: str, records: CallRecords,
                 running: Callable[[], set[str]]):
        self.link, self.instance, self.records = link, instance, records
        self.running = running  # uniqueids of calls this daemon still drives
        self._sweeping: Deferred | None = None
        self._again = False

    def start(self) -> None:
        self.link.on_up(self.sweep)
        self.link.subscribe("UserEvent", self._on_user_event)

    def _on_user_event(self, event: Message) -> None:
        if event.get("UserEvent") == "HotlineFallbackEnd":
            self.sweep()

    def sweep(self) -> Deferred:
        """Settle now, or once more after the sweep under way (events coalesce)."""
        if self._sweeping is not None:
            self._again = True
            return self._sweeping
        self._sweeping = Deferred.fromCoroutine(self._sweep())
        self._sweeping.addErrback(self._failed)
        self._sweeping.addBoth(self._swept)
        return self._sweeping

    def _swept(self, _result: object) -> None:
        self._sweeping = None
        if self._again:
            self._again = False
            self.sweep()

    def _failed(self, failure: Failure) -> None:
        failure.trap(AmiError)
        self.log.warn("could not settle lost and fallback calls: {why}", why=str(failure.value))

    async def _sweep(self) -> None:
        tree = await self.link.list_action("DBGetTree", {"Family": FAMILY})
        calls = []
        for line in tree.events:
            if (line.event or "") != "DBGetTreeResponse":
                continue
            uniqueid = (line.get("Key") or "").rsplit("/", 1)[-1]
            call = FallbackCall.parse(uniqueid, line.get("Val") or "")
            if call is not None and call.instance == self.instance:
                calls.append(call)
        channels = await self.link.list_action("CoreShowChannels")
        busy = self.running() | {c.get("Uniqueid") or "" for c in channels.events}
        lost, recorded = await self.records.settle(self.instance, calls, busy)
        if calls:
            # One AMI line's worth; lines beyond it are named by a later sweep (every
            # fallback call's end brings one), once the dialplan deleted these.
            keys = chunk_files(sorted(call.uniqueid for call in calls), LINE_CHARS)[0]
            await self.link.action("Setvar", {"Variable": SETTLED_VARIABLE + self.instance,
                                              "Value": "&".join(keys)})
        if lost or recorded:
            self.log.info("call records settled: {lost} closed as lost, {recorded} fallback "
                          "calls recorded", lost=lost, recorded=recorded)
