"""Calls of a dead daemon, adopted by a survivor and resumed at a safe point.

A daemon counts as dead once its instance lease lapsed (``storage.cluster``).
Every daemon looks for such instances a few times per lease time; the first to
take the lease ``calls-<dead instance>`` (the database decides, as for every
lease) adopts that instance's calls on every Asterisk node. Only a daemon whose
own heartbeats have been steady for a while looks: after a database outage every
instance's lease lapsed, and the others need a moment to renew theirs.

- its dispatchers take the dead instance's new AsyncAGI calls too (callers the
  dialplan sent there while its heartbeat still looked fresh);
- every channel still in the dead instance's AsyncAGI (``CoreShowChannels``,
  HOTLINE_AGI names the driver) gets a session here, its watchdog re-armed, its
  HOTLINE_AGI rewritten to this daemon, and the adopted flow: the menu the call
  was in (HOTLINE_MENU, kept on the channel by ``menu_keeper`` as the call enters
  each menu), else the main menu, in the caller's language. A command the dead
  daemon left running (a menu being read, a balance) finishes first, so the
  caller is not cut off mid-prompt; a caller who had identified stays identified
  when the dead daemon's database row says who it is (``ivr.identities``), else is
  asked again when a service needs it.

When the dead instance comes back (its lease alive again) or another daemon
holds the lease, this daemon stops taking its new calls and gives the lease
back; calls already adopted stay here (their HOTLINE_AGI names this daemon).
A daemon that finds its own calls adopted (it only stalled past its lease
time) lets every call it drives go, so that no call has two drivers.
The session machinery is the dispatcher's (``CallDispatcher.adopt``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.asterisk.agi import OWNER_VARIABLE
from ivr.asterisk.ami_codec import Message
from ivr.asterisk.ami_protocol import AmiError, ListResult
from ivr.asterisk.calls import CallDispatcher, Flow
from storage.cluster import Membership, acquire, holder, lapsed_with_holder, release

LEASE_PREFIX = "calls-"
MENU_VARIABLE = "HOTLINE_MENU"  # manager.conf's channelvars shows it in every listing
# Per node: the adopted flow for a call last seen in the named menu (None: not known).
AdoptedFlow = Callable[[str | None], Flow]
# How much longer than this daemon another may take to reach the database again after an
# outage (storage.db's longest retry delay), on top of one lease time.
SETTLE = 2.0


@dataclass(frozen=True)
class Plan:
    """What one look decides: instances whose calls to adopt now, and to give back."""

    adopt: tuple[str, ...]
    give_back: tuple[str, ...]


def plan(lapsed: Sequence[tuple[str, str | None]], adopted: set[str], me: str) -> Plan:
    """From the lapsed instances and who holds their calls' lease: adopt those nobody
    holds (or this daemon holds, e.g. after a restart) and that are not adopted yet; give
    back those no longer lapsed or now held by another daemon."""
    mine = {instance for instance, holder in lapsed if instance != me and holder in (None, me)}
    return Plan(tuple(sorted(mine - adopted)), tuple(sorted(adopted - mine)))


def channel_variable(channel: Message, variable: str) -> str:
    """A variable manager.conf's channelvars shows for the channel ('' when unset)."""
    for value in channel.get_all("ChanVariable"):
        name, _, held = value.strip().partition("=")
        if name == variable:
            return held
    return ""


def owner(channel: Message) -> str:
    """The daemon the channel's HOTLINE_AGI names ('' when none)."""
    return channel_variable(channel, OWNER_VARIABLE)


def menu_keeper(session) -> Callable[[str], None]:
    """``on_menu`` for a call's context: each menu entered is kept on the channel (an AMI
    Setvar: no AGI command waits for it), for the daemon that may adopt the call."""
    log = Logger(namespace="hotline.ivr")

    def not_kept(failure: Failure) -> None:
        failure.trap(AmiError)
        log.debug("menu not kept on {channel}: {why}", channel=session.channel,
                  why=str(failure.value))

    def keep(name: str) -> None:
        session.ami.action("Setvar", {"Channel": session.channel, "Variable": MENU_VARIABLE,
                                      "Value": name}).addErrback(not_kept)

    return keep


def to_adopt(dispatcher: CallDispatcher, listing: ListResult, dead: str) -> list[Message]:
    """Channels the dispatcher finds in AsyncAGI with no session that ``dead`` drove."""
    return [channel for channel in dispatcher.orphans(listing) if owner(channel) == dead]


def _survey(session, me: str) -> tuple[list[tuple[str, str | None]], str | None]:
    """In one transaction: the lapsed instances with their calls' adopter, and this
    instance's own adopter."""
    return lapsed_with_holder(session, LEASE_PREFIX), holder(session, LEASE_PREFIX + me)


class Adoption(Service):
    """Looks for dead instances every ``interval`` s and adopts their calls (see the module).

    ``nodes``: per Asterisk node, its dispatcher and the flow adopted calls run, given
    the menu each was in."""

    log = Logger(namespace="hotline.ivr")
    name: str | None = "ivr-adoption"  # type: ignore[assignment]

    def __init__(self, membership: Membership, nodes: Sequence[tuple[CallDispatcher, AdoptedFlow]],
                 interval: float):
        self.membership = membership
        self.db, self.instance, self.ttl = membership.db, membership.instance, membership.ttl
        clock: IReactorTime = membership.clock
        self.nodes = list(nodes)
        self.adopted: set[str] = set()
        self.interval = interval
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock
        self._looking: Deferred | None = None

    def startService(self) -> None:
        super().startService()
        self._loop.start(self.interval, now=False)

    def stopService(self) -> None:
        super().stopService()
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        if self._looking is not None:
            return  # the database is slow: one look at a time
        self._looking = Deferred.fromCoroutine(self.look())
        self._looking.addErrback(self._look_failed)
        self._looking.addBoth(self._looked)

    def _looked(self, _result: object) -> None:
        self._looking = None

    def _look_failed(self, failure: Failure) -> None:
        self.log.warn("could not look for dead daemons' calls: {why}",
                      why=failure.getErrorMessage())

    async def look(self) -> None:
        lapsed, adopter = await self.db.run(_survey, self.instance)
        if adopter is not None and adopter != self.instance:
            self._let_go(adopter)
        if self.membership.steady_for() < self.ttl + SETTLE:
            return
        decided = plan(lapsed, self.adopted, self.instance)
        for instance in decided.give_back:
            self._set_adopted(instance, False)
            await self.db.run(release, LEASE_PREFIX + instance, self.instance)
            self.log.info("no longer adopting {instance}'s calls", instance=instance)
        for instance in decided.adopt:
            if await self.db.run(acquire, LEASE_PREFIX + instance, self.instance, self.ttl):
                await self.take_over(instance)

    def _let_go(self, adopter: str) -> None:
        """Another daemon adopted this one's calls while it stalled: it drives them now."""
        count = sum(dispatcher.let_go(f"adopted by {adopter}") for dispatcher, _ in self.nodes)
        if count:
            self.log.warn("{count} calls were adopted by {adopter} (this daemon's lease had "
                          "lapsed): let go", count=count, adopter=adopter)

    def _set_adopted(self, instance: str, on: bool) -> None:
        for dispatcher, _flow in self.nodes:
            (dispatcher.adopted.add if on else dispatcher.adopted.discard)(instance)
        (self.adopted.add if on else self.adopted.discard)(instance)

    async def take_over(self, dead: str) -> None:
        """Take ``dead``'s new calls from now on, and its calls waiting on every node."""
        self._set_adopted(dead, True)  # before listing: no call falls between the two
        results = await DeferredList([self._adopt_on(dispatcher, flow, dead)
                                      for dispatcher, flow in self.nodes], consumeErrors=True)
        count = sum(n for ok, n in results if ok)
        self.log.warn("instance {dead} is gone: {count} of its calls adopted", dead=dead,
                      count=count)

    def _adopt_on(self, dispatcher: CallDispatcher, flow: AdoptedFlow, dead: str) -> Deferred:
        d = dispatcher.link.list_action("CoreShowChannels")

        def adopt(listing: ListResult) -> int:
            channels = to_adopt(dispatcher, listing, dead)
            for channel in channels:
                dispatcher.adopt(channel, flow(channel_variable(channel, MENU_VARIABLE) or None))
            return len(channels)

        def unreachable(failure: Failure) -> int:
            failure.trap(AmiError)
            # This node's calls stay for its watchdog (fallback); new ones are taken.
            self.log.warn("could not list {dead}'s calls on a node: {why}", dead=dead,
                          why=str(failure.value))
            return 0

        return d.addCallbacks(adopt, unreachable)
