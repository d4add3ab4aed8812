"""Call dispatch: which daemon owns a call, the heartbeat Asterisk checks, and recovery.

Every AMI session with ``read=agi`` sees every AsyncAGIStart, so a call
belongs to the daemon whose instance name is its first AGI argument
(``AGI(agi:async,<instance>,ivr,<center>)``); others ignore it, unless that
daemon died and this one adopted its calls (``adopted``, see
``ivr.asterisk.adoption``): then this one drives them and names itself in the
channel's HOTLINE_AGI.

The dialplan sends callers to its fallback when the global heartbeat variable
is stale at call start, and a per-channel watchdog (``TIMEOUT(absolute)``,
refreshed here for every live call) gets a caller out of AsyncAGI when the
daemon dies mid-call. The dialplan arms it short at answer (a daemon that died
within the heartbeat's age still left it fresh): taking the call arms it at once.

A short AMI blip is invisible to callers: when the link drops, every session is
suspended (its flow waits, its channel keeps playing or waiting in AsyncAGI) for
``resume_grace`` seconds. When the link is back within it, each session whose
channel is still in this instance's AGI is resumed where it was (the command
whose result was lost runs again: the menu or the reading is heard again), and
a call that arrived during the blip starts its flow. Sessions given up after
the grace, and channels left in AGI by a previous daemon, are handed to
``recover`` (the fallback), so nobody waits in silence.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from common.masking import mask_text
from ivr.asterisk.agi import (OWNER_VARIABLE, AgiError, AgiLinkLost, AgiSession, CallHungUp, env_args,
                     parse_env)
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_link import AmiLink
from ivr.asterisk.ami_protocol import AmiError, ListResult

Flow = Callable[[AgiSession], Awaitable[object]]

FALLBACK_CONTEXT = "hotline-fallback"


async def to_fallback(session: AgiSession) -> None:
    """Default recovery: the dialplan's fallback apologises, then queues or hangs up.

    A Redirect, not AGI commands: the orphan may still be inside a long GET DATA
    or Playback that a queued command would have to wait for.
    """
    await session.redirect(FALLBACK_CONTEXT, "s", 1)


class CallDispatcher:
    """Takes this instance's AsyncAGI calls, runs a flow per call, keeps the heartbeat."""

    log = Logger()

    def __init__(self, link: AmiLink, instance: str, flow_factory: Flow, clock: IReactorTime,
                 heartbeat_interval: float = 5.0, heartbeat_variable: str = "HOTLINE_HEARTBEAT",
                 watchdog_s: int = 10, recover: Flow = to_fallback,
                 command_timeout: float = 60.0, resume_grace: float = 5.0):
        self.link = link
        self.instance = instance
        self.flow_factory = flow_factory
        self.recover = recover
        self.clock = clock
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_variable = heartbeat_variable
        self.watchdog_s = watchdog_s
        self.command_timeout = command_timeout
        self.resume_grace = resume_grace  # 0: no resumption, a blip ends every flow
        self._grace: IDelayedCall | None = None
        self._given_up: set[str] = set()  # sessions ended by the last blip: not new calls
        self.sessions: dict[str, AgiSession] = {}
        self.adopted: set[str] = set()  # dead daemons whose calls this one drives too
        self.running: dict[str, Deferred] = {}
        self.stats: Counter[str] = Counter()
        self._beat = LoopingCall(self._heartbeat)
        self._beat.clock = clock
        self._unsubscribe: list[Callable[[], None]] = []

    # ---- lifecycle ----
    def start(self) -> None:
        for name, handler in (("AsyncAGIStart", self._on_start), ("AsyncAGIExec", self._on_exec),
                              ("AsyncAGIEnd", self._on_end)):
            self._unsubscribe.append(self.link.subscribe(name, handler))
        self.link.on_up(self._on_up)
        self.link.on_down(self._on_down)
        self._beat.start(self.heartbeat_interval, now=False)

    def stop(self) -> None:
        if self._beat.running:
            self._beat.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # ---- events ----
    def _owns(self, args: list[str]) -> bool:
        return bool(args) and (args[0] == self.instance or args[0] in self.adopted)

    def _on_start(self, event: Message) -> None:
        env = parse_env(event.get("Env", "") or "")
        if not self._owns(env_args(env)):
            self.stats["foreign"] += 1
            return
        session = AgiSession.from_start(self.link, event, self.clock, self.command_timeout,
                                        id_prefix=f"{self.instance}-{event.get('Uniqueid', '')}")
        if session.uniqueid in self.sessions:
            return
        self.stats["started"] += 1
        self._arm(session)  # the dialplan's answer watchdog is short: this call is taken
        if session.args[0] != self.instance:
            self.claim(session.channel)
        self._launch(session, self.flow_factory, "flow")

    def _on_exec(self, event: Message) -> None:
        session = self.sessions.get(event.get("Uniqueid") or "")
        if session is not None:
            session.handle_exec(event)
            return
        for session in list(self.sessions.values()):
            if session.handle_exec(event):
                return

    def _on_end(self, event: Message) -> None:
        uniqueid = event.get("Uniqueid") or ""
        session = self.sessions.pop(uniqueid, None)
        if session is None:
            session = next((s for s in self.sessions.values()
                            if s.channel == event.get("Channel")), None)
            if session is not None:
                self.sessions.pop(session.uniqueid, None)
        if session is not None:
            session.end()

    # ---- running flows ----
    def _launch(self, session: AgiSession, flow: Flow, kind: str) -> Deferred:
        session.resumable = self.resume_grace > 0 and flow is not self.recover
        self.sessions[session.uniqueid] = session
        d = Deferred.fromCoroutine(self._run(session, flow, kind))
        self.running[session.uniqueid] = d
        d.addErrback(self._crashed, session, flow)
        d.addBoth(self._forget, session)
        return d

    def _forget(self, _result: object, session: AgiSession) -> None:
        self.running.pop(session.uniqueid, None)

    async def _run(self, session: AgiSession, flow: Flow, kind: str) -> None:
        who = f"{session.channel} (caller {mask_text(session.caller_id)})"
        try:
            await flow(session)
        except CallHungUp:
            self.stats["hung_up"] += 1
            self.log.info("{kind} ended: {who} hung up", kind=kind, who=who)
        except AgiLinkLost as e:
            self.stats["link_lost"] += 1
            self.log.warn("{kind} cut off ({why}): {who} is left for recovery",
                          kind=kind, who=who, why=str(e))
        except AgiError as e:
            self.stats["failed"] += 1
            self.log.error("{kind} failed on {who}: {why}", kind=kind, who=who,
                           why=mask_text(str(e)))
            await self._rescue(session, flow)
        else:
            self.stats["completed"] += 1
            if not session.ended and not session.left:
                await self._end_quietly(session)

    def _crashed(self, failure: Failure, session: AgiSession, flow: Flow) -> Deferred:
        """A bug in a flow: log it, and still get the caller out (fallback or hang up)."""
        self.stats["crashed"] += 1
        self.log.failure("flow crashed on {channel}", failure, channel=session.channel)
        return Deferred.fromCoroutine(self._rescue(session, flow)).addErrback(
            lambda f: self.log.failure("rescue failed on {channel}", f, channel=session.channel))

    async def _rescue(self, session: AgiSession, flow: Flow) -> None:
        if session.ended or session.left or flow is self.recover:
            await self._end_quietly(session)
            return
        try:
            await self.recover(session)
        except AgiError as e:
            self.log.warn("recovery failed on {channel}: {why}", channel=session.channel,
                          why=mask_text(str(e)))
            await self._end_quietly(session)

    async def _end_quietly(self, session: AgiSession) -> None:
        if session.ended or session.left:
            return
        try:
            await session.hangup()
        except AgiError as e:
            self.log.debug("hangup after flow on {channel}: {why}", channel=session.channel,
                           why=str(e))

    # ---- heartbeat and watchdog ----
    def _heartbeat(self) -> None:
        if not self.link.is_up:
            return
        now = str(int(self.clock.seconds()))
        self.link.action("Setvar", {"Variable": self.heartbeat_variable, "Value": now}) \
            .addErrback(self._beat_failed, "heartbeat")
        for session in list(self.sessions.values()):
            if not session.ended and not session.left:
                self._arm(session)

    def _arm(self, session: AgiSession) -> None:
        """(Re-)arm the call's watchdog: ``watchdog_s`` more seconds before Asterisk sends
        the caller to the fallback unless armed again."""
        self.link.action("Setvar", {"Channel": session.channel, "Variable": "TIMEOUT(absolute)",
                                    "Value": str(self.watchdog_s)}) \
            .addErrback(self._beat_failed, session.channel)

    def _beat_failed(self, failure: Failure, what: str) -> None:
        failure.trap(AmiError)
        self.log.debug("Setvar for {what} failed: {why}", what=what, why=str(failure.value))

    # ---- link state ----
    def _on_down(self) -> None:
        if self.resume_grace <= 0:
            self._give_up()
            return
        for session in self.sessions.values():
            session.suspend()
        if self._grace is None:
            self._grace = self.clock.callLater(self.resume_grace, self._give_up)

    def _give_up(self) -> None:
        """The link stayed down past the grace (or there is none): end every flow; the
        calls are recovered to the fallback when the link is back."""
        self._grace = None
        sessions, self.sessions = self.sessions, {}
        self._given_up.update(sessions)
        for session in sessions.values():
            session.end(AgiLinkLost("AMI link lost"))

    def _on_up(self) -> None:
        self._heartbeat()
        d = self.link.list_action("CoreShowChannels")
        d.addCallback(self._resume_and_recover)
        d.addErrback(self._recovery_failed)

    def _recovery_failed(self, failure: Failure) -> None:
        failure.trap(AmiError)
        self.log.warn("could not list channels for recovery: {why}", why=str(failure.value))

    def _agi_args(self, channel: Message) -> list[str] | None:
        """This channel's AsyncAGI arguments if it is in this instance's AGI, else None.

        While AGI runs an application (Read, Playback) the channel shows that
        application, so the dialplan's HOTLINE_AGI channel variable (sent as
        ChanVariable, see manager.conf channelvars) is the first witness.
        """
        owners = {v.strip().partition("=")[2] for v in channel.get_all("ChanVariable")
                  if v.strip().startswith(f"{OWNER_VARIABLE}=")} - {""}
        if owners - {self.instance} - self.adopted:
            return None  # another live daemon drives it (it may have adopted the call)
        if owners:
            data = (channel.get("ApplicationData") or "").split(",")
            if data[0].strip() == "agi:async":
                return [a.strip() for a in data[1:]]
            return [self.instance]
        if (channel.get("Application") or "").upper() == "AGI":
            data = (channel.get("ApplicationData") or "").split(",")
            args = [a.strip() for a in data[1:]]
            if data[0].strip() == "agi:async" and self._owns(args):
                return args
        return None

    def orphans(self, listing: ListResult) -> list[Message]:
        """Channels in this instance's AsyncAGI with no live session here."""
        return [channel for channel in listing.events
                if self._agi_args(channel) is not None
                and (channel.get("Uniqueid") or "") not in self.sessions]

    def _resume_and_recover(self, listing: ListResult) -> None:
        """Resume suspended sessions whose channel is still in this instance's AGI, end the
        others (they left AGI during the blip), start calls that arrived during it, and
        recover the rest."""
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        ours = {channel.get("Uniqueid") or "": channel for channel in listing.events
                if self._agi_args(channel) is not None}
        for uniqueid, session in list(self.sessions.items()):
            if not session.suspended:
                continue
            channel = ours.get(uniqueid)
            if channel is None:
                self.sessions.pop(uniqueid, None)
                session.end(CallHungUp(f"{session.channel} left AGI while the link was down"))
                continue
            self.stats["resumed"] += 1
            session.resume()
        given_up, self._given_up = self._given_up, set()
        for channel in self.orphans(listing):
            uniqueid = channel.get("Uniqueid") or ""
            # never given a command (it still shows AGI, not the last application run)
            if uniqueid not in given_up and self.resume_grace > 0 \
                    and (channel.get("Application") or "").upper() == "AGI":
                self.stats["started"] += 1
                self.stats["started_late"] += 1
                session = self._session_from(channel, "late")
                self._arm(session)
                self._launch(session, self.flow_factory, "flow")
            else:
                self._recover(channel)

    def _session_from(self, channel: Message, tag: str) -> AgiSession:
        """A session for a channel found in the listing (no AsyncAGIStart seen)."""
        data = self._agi_args(channel) or [self.instance]
        env = {"agi_channel": channel.get("Channel") or "",
               "agi_uniqueid": channel.get("Uniqueid") or "",
               "agi_callerid": channel.get("CallerIDNum") or "",
               "agi_language": channel.get("Language") or "en",
               "agi_extension": channel.get("Exten") or "",
               "agi_dnid": channel.get("Exten") or ""}
        env.update({f"agi_arg_{i}": a for i, a in enumerate(data, 1)})
        return AgiSession(self.link, env["agi_channel"], env, self.clock, self.command_timeout,
                          id_prefix=f"{self.instance}-{tag}-{env['agi_uniqueid']}")

    def claim(self, channel: str) -> None:
        """Name this daemon as the driver of an adopted call (HOTLINE_AGI, and HOTLINE_OWNER
        for the fallback's record), so that its first daemon, back, leaves it alone."""
        for variable in (OWNER_VARIABLE, "HOTLINE_OWNER"):
            self.link.action("Setvar", {"Channel": channel, "Variable": variable,
                                        "Value": self.instance}) \
                .addErrback(self._beat_failed, channel)

    def adopt(self, channel: Message, flow: Flow) -> Deferred | None:
        """Drive ``channel``, left in AsyncAGI by a dead daemon, with ``flow`` from now on
        (None if this daemon drives it already)."""
        uniqueid = channel.get("Uniqueid") or ""
        if uniqueid in self.sessions:
            return None
        session = self._session_from(channel, "a")
        self.stats["adopted"] += 1
        self.claim(session.channel)
        self._arm(session)
        return self._launch(session, flow, "adopted call")

    def let_go(self, why: str) -> int:
        """Stop driving every call (another daemon drives them now): their flows end without
        a command more. Returns how many."""
        sessions, self.sessions = self.sessions, {}
        for session in sessions.values():
            session.end(AgiLinkLost(why))
        return len(sessions)

    def _recover(self, channel: Message) -> None:
        session = self._session_from(channel, "r")
        self.stats["recovered"] += 1
        self.log.warn("recovering {channel}, left in AsyncAGI without a flow",
                      channel=session.channel)
        self._launch(session, self.recover, "recovery")
