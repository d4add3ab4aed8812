"""An identified caller's identity kept for the daemon that may adopt the call, and restored
when it does: balance without identifying again; anything missing or failing asks again."""
from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from sqlalchemy.exc import OperationalError

from common.config import ConfigError, load
from daemon import ROOMS
from ivr.identities import RESTORE_TIMEOUT, Identities, recall, remember
from tests.support.ivr_fakes import HANGUP, TWO_CENTERS_INI, X_PERSON, FakeSession, keyed_id
from tests.support.logs import Logged

PASSWORD = X_PERSON.password + "#"
TO_BALANCE = ["1", "1", "1"]  # Mandarin, deposit self-service, balance
DOWN = OperationalError("INSERT INTO ivr_identity", {}, Exception("server closed"))


class FakeDb:
    """The ivr.identities transactions, answered from a dict of uniqueid -> (call id,
    center, account number); ``failing`` makes them fail, ``silent`` never answer."""

    def __init__(self, rows=None):
        self.rows = dict(rows or {})
        self.writes: list[tuple] = []
        self.failing = self.silent = False

    def run(self, fn, *args):
        if self.silent:
            return Deferred()
        if self.failing:
            return fail(DOWN)
        if fn is remember:
            uniqueid, call_id, center, account_no, _now, _ttl = args
            self.writes.append(args)
            self.rows[uniqueid] = (call_id, center, account_no)
            return succeed(True)
        if fn is recall:
            uniqueid, center, _now = args
            row = self.rows.get(uniqueid)
            return succeed(row[2] if row and row[1] == center else None)
        raise AssertionError(fn)


def heard(session) -> list[str]:
    """Prompt ids heard, without the library's folders."""
    return [p.split("/zh/", 1)[-1] for p in session.heard()]


def run(coro) -> list:
    out: list = []
    Deferred.fromCoroutine(coro).addCallback(out.append)
    return out


def with_identities(handler, db) -> Identities:
    handler.identities = Identities(db, handler.clock, ttl=3600)
    return handler.identities


def test_an_identified_caller_is_kept_by_account_number_only(handler):
    """When the core accepted the password, the call's uniqueid, record and center are
    kept with the account number the core found: never the password nor the ID keyed."""
    db = FakeDb()
    with_identities(handler, db)
    session = FakeSession(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, HANGUP])
    assert run(handler(session)) == ["ivr_handled"]
    record = handler.records.closed[0][0]
    [(uniqueid, call_id, center, account_no, now, ttl)] = db.writes
    assert (uniqueid, call_id, center, account_no) == \
        (session.uniqueid, record.id, "demo", X_PERSON.account_no)
    assert now == handler.clock.seconds() and ttl > 0
    assert not {X_PERSON.password, X_PERSON.id_number, keyed_id(X_PERSON)} \
        & {str(a) for a in db.writes[0]}


def test_an_unidentified_caller_is_not_kept(handler):
    """A caller who never got past the password keeps nothing."""
    db = FakeDb()
    with_identities(handler, db)
    run(handler(FakeSession(TO_BALANCE + [keyed_id(X_PERSON), "000000#", HANGUP])))
    assert db.writes == []


def test_an_adopted_identified_caller_hears_the_balance_without_identifying_again(handler):
    """An adopted call whose first daemon kept the identity replays the deposit menu, and
    the balance chosen there is read at once; the record says the call was identified."""
    session = FakeSession(["1", HANGUP])
    with_identities(handler, FakeDb({session.uniqueid: (7, "demo", X_PERSON.account_no)}))
    assert run(handler.resume(session, at="deposit")) == ["ivr_handled"]
    prompts = heard(session)
    assert prompts[0] == "ivr/deposit-menu" and "ivr/balance-is" in prompts
    assert "ivr/enter-id" not in prompts and "ivr/enter-password" not in prompts
    record, _outcome, served = handler.records.closed[0]
    assert record.identified and served == 1


def test_an_adopted_identified_caller_who_asks_for_nothing_more_is_recorded_identified(handler):
    """The record of an adopted call says identified once the kept identity is found, even
    when the caller hangs up without choosing a service (the first daemon never closed it)."""
    session = FakeSession([HANGUP])
    with_identities(handler, FakeDb({session.uniqueid: (7, "demo", X_PERSON.account_no)}))
    run(handler.resume(session, at="deposit"))
    record, _outcome, served = handler.records.closed[0]
    assert record.identified and served == 0


def test_an_adopted_caller_stays_identified_for_every_later_service(handler):
    """The restored identity serves every later service of the call and is not written
    again (nothing new was identified)."""
    session = FakeSession(["1", "2", HANGUP])
    db = FakeDb({session.uniqueid: (7, "demo", X_PERSON.account_no)})
    with_identities(handler, db)
    run(handler.resume(session, at="deposit"))
    prompts = heard(session)
    assert "ivr/recent-deposits" in prompts or "ivr/no-deposits" in prompts
    assert "ivr/enter-id" not in prompts and db.writes == []


def test_an_adopted_call_with_nothing_kept_asks_again_and_keeps_the_new_identity(handler):
    """No row (the caller had not finished identifying, or it expired): the caller is asked
    to identify, as before, and the identity the adopter gets is kept in turn."""
    session = FakeSession(["1", keyed_id(X_PERSON), PASSWORD, HANGUP])
    db = FakeDb()
    with_identities(handler, db)
    assert run(handler.resume(session, at="deposit")) == ["ivr_handled"]
    prompts = heard(session)
    assert prompts.index("ivr/enter-id") < prompts.index("ivr/balance-is")
    assert db.rows == {session.uniqueid: (1, "demo", X_PERSON.account_no)}


def test_an_identity_of_another_center_is_not_restored(handler):
    """A row naming another center than the call's is no identity for it."""
    session = FakeSession(["1", HANGUP])
    with_identities(handler, FakeDb({session.uniqueid: (7, "north", X_PERSON.account_no)}))
    run(handler.resume(session, at="deposit"))
    assert "ivr/enter-id" in heard(session)


def test_a_failing_database_or_core_at_restore_asks_again(handler):
    """The database failing, or the core no longer knowing the account, costs the caller a
    re-identification and nothing else; one warning names the call, not the account."""
    failing = FakeSession(["1", HANGUP])
    db = FakeDb()
    db.failing = True
    with_identities(handler, db)
    with Logged() as logged:
        assert run(handler.resume(failing, at="deposit")) == ["abandoned"]
    assert "ivr/enter-id" in heard(failing)
    assert any("not restored (OperationalError)" in line and failing.uniqueid in line
               for line in logged)
    gone = FakeSession(["1", HANGUP])
    with_identities(handler, FakeDb({gone.uniqueid: (7, "demo", "99999999999")}))
    with Logged() as logged:
        run(handler.resume(gone, at="deposit"))
    assert "ivr/enter-id" in heard(gone)
    assert not any("99999999999" in line for line in logged)


def test_a_database_that_does_not_answer_holds_the_caller_no_longer_than_the_timeout(handler):
    """A restore the database does not answer (a failover under way) is given up after
    RESTORE_TIMEOUT: the caller who chose balance is then asked to identify."""
    session = FakeSession(["1", HANGUP])
    db = FakeDb()
    db.silent = True
    with_identities(handler, db)
    out = run(handler.resume(session, at="deposit"))
    assert out == [] and "ivr/enter-id" not in heard(session)
    handler.clock.advance(RESTORE_TIMEOUT)
    assert out == ["abandoned"] and "ivr/enter-id" in heard(session)


def test_a_lost_write_never_fails_the_call(handler):
    """When the identity cannot be written the call goes on as if it had been: the balance
    is read; a warning says the caller would identify again after an adoption, and never
    shows the account number."""
    db = FakeDb()
    db.failing = True
    with_identities(handler, db)
    session = FakeSession(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, HANGUP])
    with Logged() as logged:
        assert run(handler(session)) == ["ivr_handled"]
    assert "ivr/balance-is" in heard(session)
    assert any("not kept (OperationalError)" in line for line in logged)
    assert not any(X_PERSON.account_no in line for line in logged)


def test_outside_a_cluster_nothing_is_kept_or_looked_up(handler):
    """Without identities (no cluster) a call keeps nothing and an adopted one asks again."""
    assert handler.identities is None
    session = FakeSession(["1", HANGUP])
    run(handler.resume(session, at="deposit"))
    assert "ivr/enter-id" in heard(session)


def _ivr_config(tmp_path, ivr_lines: str = ""):
    path = tmp_path / "hotline.ini"
    path.write_text(TWO_CENTERS_INI.format(state=tmp_path) + f"[ivr]\n{ivr_lines}\n", "utf-8")
    return path, load(path, ROOMS)


def test_the_identity_lifetime_is_the_ivr_setting_an_hour_by_default(tmp_path):
    """``[ivr] identity_minutes`` sets how long a kept identity counts; absent, an hour;
    the commented sample INI documents it with its default."""
    assert _ivr_config(tmp_path)[1].ivr.identity_minutes == 60
    assert _ivr_config(tmp_path, "identity_minutes = 15")[1].ivr.identity_minutes == 15
    sample = (Path(__file__).resolve().parents[3] / "hotline.sample.ini").read_text("utf-8")
    assert "\nidentity_minutes = 60\n" in sample.split("\n[ivr]\n", 1)[1].split("\n[", 1)[0]


@pytest.mark.parametrize("value, problem", [
    ("0", "must be at least 10, not 0"),
    ("2880", "must be at most 1440, not 2880"),
    ("1h", "must be a whole number, not '1h'"),
])
def test_a_bad_identity_lifetime_stops_with_one_line(tmp_path, value, problem):
    """Too short for a call, longer than a day, or not minutes: one line naming the file,
    section and key."""
    with pytest.raises(ConfigError) as e:
        _ivr_config(tmp_path, f"identity_minutes = {value}")
    assert str(e.value) == f"{tmp_path / 'hotline.ini'} [ivr] identity_minutes: {problem}"
