"""The IVR service: AMI link, call dispatcher and this room's call handler, as one IService.

``CallHandler`` is what the dispatcher calls for every AsyncAGI channel this
daemon owns: it picks the center (third AGI argument, else the dialled number),
loads nothing at call time (menus are loaded and validated at construction, so
a bad menu file stops the daemon at start), and runs the call with its record.
"""
from __future__ import annotations

from collections.abc import Mapping

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import clientFromString
from twisted.logger import Logger

from common.config import CenterConfig, Config
from core_client.interface import CoreClient
from ivr.asterisk.ami_link import AmiLink
from ivr.asterisk.calls import CallDispatcher
from ivr.engine import Engine, run_call
from ivr.flows import FLOWS
from ivr.flows.context import CallContext, Notifier
from ivr.menu import Menu, load_for_center
from ivr.records import CallRecord, CallRecords
from prompts.layout import prompt_path
from ivr.routing import AdminCalls, CallsByRole


class UnknownCenter(Exception):
    """A call for no configured center (should not happen with the shipped dialplan)."""


class CallHandler:
    """Runs one call from its AgiSession to the end; returns the outcome."""

    log = Logger(namespace="hotline.ivr")

    def __init__(self, config: Config, clock, records: CallRecords,
                 cores: Mapping[str, CoreClient], notifier: Notifier | None = None,
                 menus: Mapping[str, Menu] | None = None):
        self.config, self.clock, self.records = config, clock, records
        self.cores, self.notifier = cores, notifier
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
        center = self.center_for(session)
        library = self.config.prompts.library_dir
        lang = center.languages[0]
        record = CallRecord.start(instance=self.config.daemon.instance, center=center.code,
                                  uniqueid=session.uniqueid, caller_id=session.caller_id,
                                  dnid=session.dnid, language=lang, now=self.clock.seconds())
        ctx = CallContext(
            session=session, center=center, core=self.cores[center.code],
            menu=self.menus[center.code], clock=self.clock, record=record,
            notifier=self.notifier, agent_context=self.config.ivr.agent_context,
            agent_exten=self.config.ivr.agent_exten, lang=lang,
            resolve=lambda prompt_id, language: prompt_path(library, center.code, language,
                                                            prompt_id))
        outcome = await run_call(ctx, self.engines[center.code], self.records)
        self.log.info("call {uniqueid} center {center} ended: {outcome}, path {path}",
                      uniqueid=session.uniqueid, center=center.code, outcome=outcome,
                      path=" ".join(record.path))
        return outcome


class IvrService(Service):
    """Starts the AMI link and the dispatcher; on stop, takes no new calls and logs off.

    Calls still running when the daemon stops are left to the dialplan's watchdog
    and fallback (ivr.asterisk.calls), which get the caller out within seconds.
    """

    name = "ivr"

    def __init__(self, link: AmiLink, dispatcher: CallDispatcher, handler: CallHandler):
        self.link, self.dispatcher, self.handler = link, dispatcher, handler

    def startService(self) -> None:
        super().startService()
        self.dispatcher.start()
        self.link.start()

    def stopService(self) -> Deferred:
        super().stopService()
        self.dispatcher.stop()
        return self.link.stop()


def make_service(config: Config, reactor, db, cores: Mapping[str, CoreClient],
                 notifier: Notifier | None = None) -> IvrService:
    """The IVR part of the daemon: AMI link, dispatcher, and the menus and flows of every
    center, plus the administrators' prompt-recording calls (AGI role ``admin``).
    Menu files are loaded here, so a bad one stops the daemon at start."""
    ami = config.ivr.ami
    link = AmiLink(clientFromString(reactor, ami.endpoint), ami.username, ami.secret, reactor,
                   action_timeout=ami.action_timeout, ping_interval=ami.ping_interval)
    handler = CallHandler(config, reactor, CallRecords(db, reactor), cores, notifier)
    flow = CallsByRole(handler, AdminCalls(config, reactor, db))
    dispatcher = CallDispatcher(link, config.daemon.instance, flow, reactor,
                                heartbeat_interval=ami.heartbeat_interval,
                                heartbeat_variable=ami.heartbeat_variable,
                                watchdog_s=ami.watchdog_seconds,
                                command_timeout=config.ivr.agi_timeout)
    return IvrService(link, dispatcher, handler)
