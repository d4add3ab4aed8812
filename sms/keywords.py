"""SMS query by keyword: MO messages stored, answered from the core, only to registered mobiles.

YE/CX (deposit balance) and DKYE (loan balance) are answered only when the
sender is the registered mobile of an account (``find_by_mobile``); anyone else
gets the same polite refusal whether or not an account exists, so the reply
reveals nothing. TD and DY switch alert SMS off and on; anything else gets the
help text. Keywords are configurable per center ([sms.keywords]).
"""
from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from common.masking import mask_mobile
from core_client.interface import CoreError
from sms.outbox.records import OutboxError
from sms.tables import SmsMo

log = Logger(namespace="hotline.sms.keywords")

MO = SmsMo.__table__


def parse_keyword(text: str) -> tuple[str, str | None]:
    """``'ye#1234'`` -> ``('YE', '1234')``: the keyword and an optional account argument."""
    cleaned = text.strip().replace("＃", "#").replace(" ", "#")
    word, _, arg = cleaned.partition("#")
    return word.upper(), (arg.strip("#") or None)


class KeywordHandler:
    """Stores each MO message, then answers it through the outbox (class ``reply``)."""

    def __init__(self, db, outbox, cores: dict, config, clock):
        self.db, self.outbox, self.cores, self.config, self.clock = db, outbox, cores, config, clock
        self.default_center = next(iter(cores)) if len(cores) == 1 else None

    def center_for(self, destination: str) -> str | None:
        """The center an MO number belongs to: [sms] mo_routes, longest prefix first."""
        for number in sorted(self.config.mo_routes, key=len, reverse=True):
            if destination.startswith(number):
                return self.config.mo_routes[number]
        return self.default_center

    def on_mo(self, mo) -> Deferred:
        """The router's MO callback: fires once the MO row is committed; the answer follows."""
        center = self.center_for(mo.destination)
        word, _ = parse_keyword(mo.text)
        d = self.db.run(self._store, center, mo, word[:16])
        d.addCallback(self._stored, center, mo)
        return d

    def _store(self, session, center, mo, word) -> int:
        at = mo.received_at
        received = at.timestamp() if hasattr(at, "timestamp") else float(at or self.clock.seconds())
        return session.execute(MO.insert().values(
            center=center, source=mo.source, destination=mo.destination, text=mo.text[:500],
            smsc=mo.smsc, received_at=received, keyword=word or None, outcome=None)
        ).inserted_primary_key[0]

    def _stored(self, mo_id: int, center, mo) -> None:
        d = Deferred.fromCoroutine(self.answer(mo_id, center, mo.source, mo.text))
        d.addErrback(lambda f: log.failure("answering MO {id} from {mobile} failed", f,
                                           id=mo_id, mobile=mask_mobile(mo.source)))

    async def answer(self, mo_id: int, center: str | None, source: str, text: str) -> str:
        """Work out and enqueue the reply; returns the outcome recorded on the MO row."""
        if center is None:
            outcome = "no center"
        else:
            word, arg = parse_keyword(text)
            action = self.config.keywords.get(center, {}).get(word)
            try:
                outcome = await self._act(mo_id, center, source, action, arg)
            except CoreError as e:
                log.warn("MO {id}: core unavailable for {center}: {why}", id=mo_id,
                         center=center, why=type(e).__name__)
                outcome = "core error"
            except OutboxError as e:
                outcome = type(e).__name__
        await self.db.run(lambda s: s.execute(
            MO.update().where(MO.c.id == mo_id).values(outcome=outcome)))
        return outcome

    async def _reply(self, mo_id, center, source, template, params=None, n=0):
        await self.outbox.send(center, template, params or {}, source, f"mo:{mo_id}:{n}")

    async def _act(self, mo_id: int, center: str, source: str, action: str | None,
                   arg: str | None) -> str:
        if action == "unsubscribe":
            await self.outbox.set_opt_out(center, source, True)
            await self._reply(mo_id, center, source, "unsubscribed_reply")
            return "unsubscribed"
        if action == "subscribe":
            await self.outbox.set_opt_out(center, source, False)
            await self._reply(mo_id, center, source, "subscribed_reply")
            return "subscribed"
        if action not in ("balance", "loan"):
            words = {v: k for k, v in self.config.keywords.get(center, {}).items()}
            await self._reply(mo_id, center, source, "help_reply", {
                "balance_kw": words.get("balance", "YE"), "loan_kw": words.get("loan", "DKYE"),
                "unsubscribe_kw": words.get("unsubscribe", "TD"),
                "subscribe_kw": words.get("subscribe", "DY")})
            return "help"
        core = self.cores[center]
        accounts = await core.find_by_mobile(source)
        if arg is not None:
            accounts = [a for a in accounts if a.account_no == arg]
        if not accounts:
            await self._reply(mo_id, center, source, "refusal_reply")
            return "refused"
        for n, account in enumerate(accounts[:3]):
            if action == "balance":
                b = await core.balance(account.account_no)
                await self._reply(mo_id, center, source, "balance_reply", {
                    "account": account.account_no, "balance": b.balance,
                    "monthly_deposit": b.monthly_deposit, "paid_up_to": b.paid_up_to}, n)
            else:
                loan = await core.loan(account.account_no)
                if loan is None:
                    await self._reply(mo_id, center, source, "no_loan_reply", {}, n)
                else:
                    await self._reply(mo_id, center, source, "loan_balance_reply", {
                        "loan": loan.loan_no, "loan_balance": loan.balance,
                        "monthly_repayment": loan.monthly_repayment,
                        "overdue_periods": loan.overdue_periods}, n)
        return action


async def notify_balance(outbox, cores: dict, center: str, account_no: str,
                         idem_key: str) -> None:
    """The IVR's "send my balance by SMS": the reply goes only to the registered mobile."""
    core = cores[center]
    mobile = await core.registered_mobile(account_no)
    b = await core.balance(account_no)
    await outbox.send(center, "balance_reply", {
        "account": account_no, "balance": b.balance, "monthly_deposit": b.monthly_deposit,
        "paid_up_to": b.paid_up_to}, mobile, idem_key)
