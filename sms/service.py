"""The SMS room's service tree: SMPP router, outbox dispatcher, alert jobs, codes API, MO answers.

``make_service(config, reactor, db, cores, codes, scheduler)`` returns an
``SmsService`` (a MultiService) whose ``outbox`` others may call, whose
``http_resources()`` the daemon mounts at the HTTP root, and whose
``notify_balance`` the IVR calls for "send my balance by SMS".
"""
from __future__ import annotations

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred

from common.config import Config
from sms.alerts import AlertJob, schedule_alerts
from sms.config import SmsConfig
from sms.outbox.dispatcher import Dispatcher
from sms.keywords import KeywordHandler, notify_balance
from sms.outbox.outbox import Outbox
from sms.reminders import ReminderJob, schedule_reminders
from sms.carrier.send_journal import SendJournal
from sms.door.service import make_door
from sms.templates import TemplateSet


# The configuration this room reads: its own section (and the shared ones).
SmsRoomConfig = Config[object, SmsConfig, object]


class SmsService(MultiService):
    """Owns the outbox and everything that feeds it or drains it."""

    # Twisted's Service leaves name = None unannotated; IService says "str or None".
    name: str | None = "sms"  # type: ignore[assignment]

    def __init__(self, config: SmsRoomConfig, reactor, db, cores, codes, scheduler,
                 cluster=None):
        super().__init__()
        from sms.carrier import text
        from sms.carrier.router import PermanentError, SmppRouter, SubmitPart, TemporaryError
        from sms.smpp.protocol import LinkLost, NeverSent, SmppTimeout, Throttled

        self.config, self.reactor, self.db, self.cores, self.codes = (
            config, reactor, db, cores, codes)
        rules = config.sms.outbox
        self.templates = TemplateSet({c: center.signature for c, center in config.centers.items()})
        self.outbox = Outbox(db, reactor, rules, encode=text.encode,
                             instance=config.daemon.instance, templates=self.templates,
                             batch_turns=True)
        self.keywords = KeywordHandler(db, self.outbox, cores, rules, reactor)
        # The send journal lets a restart count as possible duplicates only the parts that
        # went out unanswered (see sms.carrier.send_journal), however many parts a claim marks.
        self.journal = SendJournal(config.daemon.state_dir / "sms-journal",
                                   config.daemon.instance)
        self.router = SmppRouter(config.sms.smscs, reactor, on_receipt=self._on_receipt,
                                 on_mo=self._on_mo, journal=self.journal,
                                 slot=cluster.leased_endpoint if cluster else None)
        self.router.setServiceParent(self)
        # Parts queued in the binds beyond their windows refill a freed slot at once.
        window = rules.max_inflight or 2 * sum(s.window * s.binds for s in config.sms.smscs)
        source = config.sms.smscs[0].source_addr if config.sms.smscs else "12329"

        def make_part(message, part):
            return SubmitPart(message.destination, source, part.payload, part.data_coding,
                              part.esm_class, registered_delivery=1,
                              priority_flag=1 if message.klass == "code" else 0,
                              center=message.center)

        self.dispatcher = Dispatcher(self.outbox, self.router, reactor, make_part=make_part,
                                     temporary=(TemporaryError,), permanent=(PermanentError,),
                                     doubtful=(SmppTimeout, LinkLost), unsent=(NeverSent,),
                                     throttled=(Throttled,),
                                     batch=rules.batch, max_inflight=window,
                                     journal=self.journal)
        self.dispatcher.setServiceParent(self)
        self.door = None
        if config.sms.door is not None and config.sms.door.enabled:
            self.door = make_door(config.sms.door, reactor, db, self.outbox, self.templates,
                                  text.encode)
            self.door.setServiceParent(self)
        self.alert_jobs = {c: AlertJob(c, core, self.outbox, rules) for c, core in cores.items()}
        self.reminder_jobs = {c: ReminderJob(c, core, self.outbox, rules, reactor)
                              for c, core in cores.items()}
        if scheduler is not None:  # the standalone outbox worker runs no timed jobs
            # One daemon of a cluster at a time runs a center's job (a lease per job).
            once = scheduler.once_in_cluster
            schedule_alerts(scheduler.scheduler,
                            {c: once(f"sms-alerts-{c}", j) for c, j in self.alert_jobs.items()},
                            rules.alerts_interval)
            schedule_reminders(scheduler.scheduler,
                               {c: once(f"sms-reminders-{c}", j)
                                for c, j in self.reminder_jobs.items()},
                               rules.reminder_time, rules.timezone)
            # A dead daemon's claims go back to the queue, looked for once per lease time.
            scheduler.scheduler.add_job(once("sms-reclaim", self.outbox.recover_lapsed),
                                        "interval", seconds=config.daemon.lease_ttl,
                                        id="sms-reclaim", max_instances=1, coalesce=True,
                                        replace_existing=True)

    def _on_mo(self, mo) -> Deferred:
        """MO to a door client's extension goes to that client; the rest to the keywords."""
        routed = self.door.route_mo(mo) if self.door is not None else None
        return routed if routed is not None else self.keywords.on_mo(mo)

    def _on_receipt(self, receipt) -> Deferred:
        """Commit the DLR before the router acknowledges it."""
        done = receipt.done_at
        if done is not None and hasattr(done, "timestamp"):
            done = done.timestamp()
        return self.outbox.receipt(receipt.message_id, receipt.smsc, receipt.state,
                                   receipt.error, done, destination=receipt.source)

    def http_resources(self) -> dict:
        from sms.codes_api import make_resource

        v1 = make_resource(self.codes, self.outbox, self.cores, self.config.http.clients,
                           self.reactor, self.config.codes.ttl, self.config.http.client_centers)
        if self.door is not None:
            v1.putChild(b"messages", self.door.resource)
        return {b"v1": v1}

    def http_body_caps(self) -> dict[bytes, int]:
        """Paths whose bodies may exceed ``[http] max_body``: the send API's batches."""
        if self.door is None:
            return {}
        return {b"/v1/messages": self.door.config.max_body}

    async def notify_balance(self, center: str, account_no: str) -> None:
        """Enqueue the balance reply to the account's registered mobile (the IVR's seam)."""
        key = f"ivr:{center}:{account_no}:{int(self.reactor.seconds() // 60)}"
        await notify_balance(self.outbox, self.cores, center, account_no, key)


def make_service(config: SmsRoomConfig, reactor, db, cores, codes,
                 scheduler, cluster=None) -> SmsService:
    """``cluster`` (storage.cluster.Membership) makes every bind a leased connection slot."""
    return SmsService(config, reactor, db, cores, codes, scheduler, cluster)
