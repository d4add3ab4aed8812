"""The IVR service: AMI link, call dispatcher and this room's call handler, as one IService.

``CallHandler`` is what the dispatcher calls for every AsyncAGI channel this
daemon owns: it picks the center (third AGI argument, else the dialled number),
loads nothing at call time (menus are loaded and validated at construction, so
a bad menu file stops the daemon at start), and runs the call with its record.
"""
from __future__ import annotations

import random
from functools import partial
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import clientFromString
from twisted.logger import Logger

from common.config import CenterConfig, Config
from core_client.interface import CoreClient
from core_client.lockout import LockoutCore
from ivr.agents import AgentAnswers
from ivr.asterisk.adoption import Adoption, menu_keeper
from ivr.asterisk.ami_link import AmiLink
from ivr.config import IvrConfig
from ivr.asterisk.calls import CallDispatcher
from ivr.asterisk.lost_calls import LostCalls
from ivr.engine import Engine, run_call
from ivr.flows import FLOWS
from ivr.flows.context import CallContext, Notifier
from ivr.identities import Identities
from ivr.menu import Menu, Switch, load_for_center
from ivr.records import CallRecord, CallRecords
from prompts.config import PromptsConfig
from prompts.installed import InstalledPrompts
from storage.cluster import Membership
from ivr.routing import AdminCalls, CallsByRole


# The configuration this room reads: its own section and the prompt library's.
IvrRoomConfig = Config[IvrConfig, object, PromptsConfig]
# center -> {menu item: its override} (console.menus.SwitchReader), asked at each call's start.
Switches = Callable[[str], Awaitable[Mapping[str, Switch]]]


class UnknownCenter(Exception):
    """A call for no configured center (should not happen with the shipped dialplan)."""


class CallHandler:
    """Runs one call from its AgiSession to the end; returns the outcome."""

    log = Logger(namespace="hotline.ivr")

    def __init__(self, config: IvrRoomConfig, clock, records: CallRecords,
                 cores: Mapping[str, CoreClient], notifier: Notifier | None = None,
                 menus: Mapping[str, Menu] | None = None, agents: AgentAnswers | None = None,
                 switches: Switches | None = None,
                 on_reply: Callable[[float], None] | None = None, keep_menus: bool = False,
                 identities: Identities | None = None, installed: InstalledPrompts | None = None):
        self.config, self.clock, self.records = config, clock, records
        self.installed = installed if installed is not None else \
            InstalledPrompts.defaults_only(config.prompts.library_dir)
        self.on_reply = on_reply  # each reply time of a call's session (IVR latency metric)
        self.keep_menus = keep_menus  # in a cluster: the menu a call is in, for its adopter
        self.identities = identities  # in a cluster: who an identified caller is, likewise
        self.agents = agents
        self.cores, self.notifier, self.switches = cores, notifier, switches
        self.menus = dict(menus) if menus is not None else {
            code: load_for_center(config.ivr.menus_dir, code, FLOWS) for code in config.centers}
        self.engines = {code: Engine(menu) for code, menu in self.menus.items()}

    def center_for(self, session) -> CenterConfig:
        """The third AGI argument names the center; failing that, the number dialled."""
        centers = self.config.centers
        args = list(getattr(session, "args", []) or [])
        if len(args) > 2 and args[2] in centers:
            return centers[args[2]]
        for center in centers.values():
            if session.dnid and session.dnid in center.dnid:
                return center
        if len(centers) == 1:
            return next(iter(centers.values()))
        raise UnknownCenter(f"no center for this call (args {args[1:]}, dnid {session.dnid!r})")

    async def __call__(self, session) -> str:
        return await self._run(session, resumed=False)

    async def resume(self, session, at: str | None = None) -> str:
        """A call adopted from a dead daemon (ivr.asterisk.adoption): the menu ``at`` again
        (the main menu if ``at`` names none; the start if the call never reached a menu),
        in the language the caller chose there, identified if the dead daemon kept who the
        caller is (ivr.identities)."""
        return await self._run(session, resumed=True, at=at)

    async def _run(self, session, resumed: bool, at: str | None = None) -> str:
        session.on_reply = self.on_reply
        center = self.center_for(session)
        await self.installed.fresh()
        lang = center.languages[0]
        if resumed and session.language in center.languages:
            lang = session.language
        menu, engine = self.menus[center.code], self.engines[center.code]
        if self.switches is not None:  # the console's switches, read afresh for every call
            switched = menu.with_switches(await self.switches(center.code))
            if switched is not menu:
                menu, engine = switched, Engine(switched)
        record = CallRecord.start(instance=self.config.daemon.instance, center=center.code,
                                  uniqueid=session.uniqueid, caller_id=session.caller_id,
                                  dnid=session.dnid, language=lang, now=self.clock.seconds())
        core = self.cores[center.code]
        if isinstance(core, LockoutCore):  # this call's wrong passwords count against its caller
            core = core.for_caller(session.caller_id)
        ctx = CallContext(
            session=session, center=center, core=core,
            menu=menu, clock=self.clock, record=record,
            notifier=self.notifier, agents=self.agents,
            agent_context=self.config.ivr.agent_context,
            agent_exten=self.config.ivr.agent_exten, lang=lang,
            resolve=lambda prompt_id, language: self.installed.path(center.code, language,
                                                                    prompt_id))
        if self.keep_menus:
            ctx.on_menu = menu_keeper(session)
        if self.identities is not None:
            ctx.on_identified = partial(self.identities.remember, record)
            if resumed:
                self.identities.restore(ctx)
        start = None
        if resumed:
            record.adopted = True
            record.visit("adopted")  # the record says where the call was taken over
            start = menu.start if at is None else \
                at if at in menu.nodes and menu.nodes[at].kind == "menu" else menu.main
        outcome = await run_call(ctx, engine, self.records, start)
        self.log.info("call {uniqueid} center {center} ended: {outcome}, path {path}",
                      uniqueid=session.uniqueid, center=center.code, outcome=outcome,
                      path=" ".join(record.path))
        return outcome


@dataclass(frozen=True)
class AsteriskNode:
    """One Asterisk this daemon drives calls on: its AMI link and call dispatcher."""

    name: str  # host:port of its AMI
    link: AmiLink
    dispatcher: CallDispatcher
    lost: LostCalls  # closes the records of calls that ended without a daemon


def node_name(endpoint: str) -> str:
    """``host:port`` of an endpoint string, for logs and ``hotline cluster status``."""
    fields = dict(f.split("=", 1) for f in endpoint.split(":")[1:] if "=" in f)
    return f"{fields.get('host', '?')}:{fields.get('port', '?')}"


class IvrService(Service):
    """Starts an AMI link and a dispatcher per Asterisk node; on stop, takes no new
    calls and logs off.

    Calls still running when the daemon stops are adopted by another daemon of the
    cluster (``adoption``, ivr.asterisk.adoption) or left to the dialplan's watchdog and
    fallback (ivr.asterisk.calls), which get the caller out within seconds.
    """

    # Twisted's Service leaves name = None unannotated; IService says "str or None".
    name: str | None = "ivr"  # type: ignore[assignment]

    def __init__(self, nodes: list[AsteriskNode], handler: CallHandler,
                 adoption: Adoption | None = None):
        self.nodes, self.handler, self.adoption = nodes, handler, adoption

    @property
    def link(self) -> AmiLink:
        """The first node's link: the only one with a single Asterisk."""
        return self.nodes[0].link

    @property
    def dispatcher(self) -> CallDispatcher:
        return self.nodes[0].dispatcher

    def startService(self) -> None:
        super().startService()
        for node in self.nodes:
            node.dispatcher.start()
            node.lost.start()
            node.link.start()
        if self.adoption is not None:
            self.adoption.startService()

    def stopService(self) -> Deferred:
        super().stopService()
        if self.adoption is not None:
            self.adoption.stopService()
        for node in self.nodes:
            node.dispatcher.stop()
        return gatherResults([node.link.stop() for node in self.nodes])

    def status(self) -> dict:
        """Per node: whether its AMI link is up and how many calls this daemon drives there."""
        return {node.name: {"ami": "up" if node.link.is_up else "down",
                            "calls": len(node.dispatcher.sessions)} for node in self.nodes}


def _resuming(handler: CallHandler, admin: AdminCalls) -> Callable[[str | None], CallsByRole]:
    """The adopted calls' flow on one node: an administrator's call starts again, a caller
    gets the menu it was in (``CallHandler.resume``)."""
    return lambda at: CallsByRole(partial(handler.resume, at=at), admin)


def _running(dispatcher: CallDispatcher) -> Callable[[], set[str]]:
    """The uniqueids of the calls ``dispatcher`` drives now."""
    return lambda: set(dispatcher.running)


def make_service(config: IvrRoomConfig, reactor, db, cores: Mapping[str, CoreClient],
                 notifier: Notifier | None = None,
                 switches: Switches | None = None, on_call_closed=None,
                 cluster: Membership | None = None,
                 on_reply: Callable[[float], None] | None = None) -> IvrService:
    """The IVR part of the daemon: AMI link, dispatcher, and the menus and flows of every
    center, plus the administrators' prompt-recording calls (AGI role ``admin``).
    Menu files are loaded here, so a bad one stops the daemon at start. With ``cluster``
    (the daemon's membership) it adopts the calls of dead daemons."""
    ami = config.ivr.ami
    jitter = random.Random()
    records = CallRecords(db, reactor, on_call_closed)
    installed = InstalledPrompts(config.prompts.library_dir, db)
    identities = Identities(db, reactor, ttl=config.ivr.identity_minutes * 60) \
        if cluster is not None else None
    nodes: list[AsteriskNode] = []
    handlers: list[CallHandler] = []
    adopted_flows = []
    for endpoint in ami.endpoints:
        link = AmiLink(clientFromString(reactor, endpoint), ami.username, ami.secret, reactor,
                       action_timeout=ami.action_timeout, ping_interval=ami.ping_interval,
                       initial_delay=ami.reconnect_min,
                       max_delay=max(ami.reconnect_max, ami.reconnect_min),
                       # a little jitter: daemons cut together come back apart, and soon
                       jitter=lambda: jitter.random() * 0.2)
        # A handler per node (agents answer on the node the call is on), the menus shared.
        handler = CallHandler(config, reactor, records, cores, notifier,
                              menus=handlers[0].menus if handlers else None,
                              agents=AgentAnswers(link, reactor), switches=switches,
                              on_reply=on_reply, keep_menus=cluster is not None,
                              identities=identities, installed=installed)
        handlers.append(handler)
        admin = AdminCalls(config, reactor, db, installed=installed)
        flow = CallsByRole(handler, admin)
        dispatcher = CallDispatcher(link, config.daemon.instance, flow, reactor,
                                    heartbeat_interval=ami.heartbeat_interval,
                                    heartbeat_variable=ami.heartbeat_variable,
                                    watchdog_s=ami.watchdog_seconds,
                                    command_timeout=config.ivr.agi_timeout,
                                    resume_grace=ami.resume_grace)
        lost = LostCalls(link, config.daemon.instance, records, _running(dispatcher))
        nodes.append(AsteriskNode(node_name(endpoint), link, dispatcher, lost))
        adopted_flows.append((dispatcher, _resuming(handler, admin)))
    adoption = None
    if cluster is not None:
        # A dead daemon's calls are adopted within its lease time and a look more.
        adoption = Adoption(cluster, adopted_flows, interval=min(1.0, cluster.ttl / 10))
    return IvrService(nodes, handlers[0], adoption)
