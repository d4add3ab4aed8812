"""The SMS path on one real reactor, as SmsService wires it: an outbox on a real database, the
dispatcher, the SmppRouter and the MO keyword handler, for the e2e tests against real SMSCs."""
from __future__ import annotations

from core_client.testing import FakeCore
from sandbox.pytest_smsc import sleep
from sms.carrier import text
from sms.carrier.router import PermanentError, SmppRouter, SubmitPart, TemporaryError
from sms.config import SmscConfig
from sms.keywords import KeywordHandler
from sms.outbox.dispatcher import Dispatcher
from sms.outbox.outbox import Outbox
from sms.outbox.records import EncodedPart, Outgoing
from sms.smpp.protocol import LinkLost, NeverSent, SmppTimeout, Throttled
from sms.templates import TemplateSet
from storage.db import Database
from tests.support.outbox import make_config


class Stack:
    """Outbox, dispatcher, router and MO handler on one reactor, like SmsService."""

    def __init__(self, reactor, url: str, smsc: SmscConfig | list[SmscConfig], core=None,
                 window: int = 10, journal=None, source: str = "12329"):
        smscs = smsc if isinstance(smsc, list) else [smsc]
        self.reactor = reactor
        self.db = Database(url, reactor, 2)
        self.db.create_all()
        config = make_config(retry_base=0.2, retry_max=1.0, quiet_hours={},
                             per_destination_per_hour=10**6,
                             keywords={"demo": {"YE": "balance", "TD": "unsubscribe"}})
        self.outbox = Outbox(self.db, reactor, config, encode=text.encode,
                             templates=TemplateSet({"demo": "示例公积金"}), batch_turns=True)
        self.core = core or FakeCore("demo", persons=20)
        self.keywords = KeywordHandler(self.db, self.outbox, {"demo": self.core}, config, reactor)
        self.router = SmppRouter(smscs, reactor, on_receipt=self._receipt,
                                 on_mo=self.keywords.on_mo,
                                 journal=journal)
        self.dispatcher = Dispatcher(
            self.outbox, self.router, reactor, make_part=lambda m, p: SubmitPart(
                m.destination, source, p.payload, p.data_coding, p.esm_class),
            temporary=(TemporaryError,), permanent=(PermanentError,),
            doubtful=(SmppTimeout, LinkLost), unsent=(NeverSent,), throttled=(Throttled,),
            batch=200, max_inflight=2 * window, poll=0.1, journal=journal)

    def _receipt(self, r):
        done = r.done_at.timestamp() if r.done_at is not None else None
        return self.outbox.receipt(r.message_id, r.smsc, r.state, r.error, done,
                                   destination=r.source)

    async def start(self):
        self.router.startService()
        await self.dispatcher.startService()

    async def stop(self):
        await self.dispatcher.stopService()
        await self.router.stopService()
        self.db.stopService()

    async def accept(self, n: int, body: str, prefix: str = "1390", start: int = 0) -> None:
        """``n`` messages to 11-digit numbers starting with ``prefix`` (a carrier's segment)."""
        enc = text.encode(body, max_parts=5)
        parts = tuple(EncodedPart(p, enc.data_coding, enc.esm_class) for p in enc.parts)
        digits = 11 - len(prefix)
        for i in range(start, start + n):
            await self.outbox.accept(Outgoing("demo", "bulk", "e2e", {}, body,
                                              f"{prefix}{i:0{digits}d}", f"{prefix}-{i}", parts))

    async def until_final(self, total: int, timeout: float = 30.0) -> dict:
        waited = 0.0
        while True:
            counts = await self.outbox.counts()
            final = sum(counts.get(s, 0) for s in ("delivered", "failed", "expired"))
            if final == total:
                return counts
            if waited > timeout:
                raise AssertionError(f"not final after {timeout}s: {counts}")
            await sleep(self.reactor, 0.05)
            waited += 0.05
