"""IVR flows end to end in memory: scripted caller, FakeCore, task.Clock, default menu."""
from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

from twisted.internet.defer import Deferred

from core_client.interface import AccountLocked, CoreUnavailable
from core_client import demo_data
from core_client.testing import FakeCore
from ivr import speech
from ivr.agents import ABANDONED, ANSWERED, UNKNOWN
from tests.support.ivr_fakes import (
    DEMO,
    FakeAgents,
    HANGUP,
    HANGUP_IN_PROMPT,
    LOCKED_PERSON,
    NIGHT_TIME,
    SILENCE,
    X_PERSON,
    center,
    keyed_id,
    place_call,
)

PASSWORD = X_PERSON.password
# language 1 (中文), main 1 (deposits), deposit 1 (balance), then identification
TO_BALANCE = ["1", "1", "1"]


def _now(coro):
    """Result of a FakeCore coroutine (it never waits)."""
    out = []
    Deferred.fromCoroutine(coro).addCallback(out.append)
    return out[0]


def _bad_check_digit(person) -> str:
    keyed = keyed_id(person)
    wrong = "0" if keyed[-1] != "0" else "1"
    return keyed[:-1] + wrong


def test_whole_balance_flow():
    """ID keyed with * for X, password, balance read with the deposit menu in the same
    GET DATA, end with 5, survey 1: served, identified, survey stored, record closed."""
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, "5", "1"])
    b = _now(FakeCore(core_attempts=3).balance(X_PERSON.account_no))
    expected = ("ivr/balance-is", *speech.amount(b.balance).prompts,
                "ivr/monthly-deposit-is", *speech.amount(b.monthly_deposit).prompts,
                "ivr/paid-up-to", *speech.month(b.paid_up_to).prompts,
                "ivr/status-is", "ivr/status-normal", "ivr/deposit-menu")
    assert expected in call.session.keyed_prompts()
    assert call.outcome == "ivr_handled"
    record, outcome, served = call.records.closed[0]
    assert (outcome, served, record.identified, record.survey) == ("ivr_handled", 1, True, 1)
    assert record.path[:5] == ["language", "zh", "main", "deposit", "balance"]
    assert ("hangup",) in call.session.log


def test_secrets_never_in_the_record():
    """Keys pressed are recorded per menu; the ID number and password never are."""
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, "5", "1"])
    keys = call.record.keys
    assert keys == [("language", "1"), ("main", "1"), ("deposit", "1"), ("deposit", "5")]
    flat = " ".join(k for _, k in keys)
    assert PASSWORD not in flat and X_PERSON.account_no not in flat
    assert call.record.caller == "138****8000"


def test_id_ending_in_x_keyed_as_star():
    """A trailing * is taken as X, validated locally, and the core finds the person."""
    assert keyed_id(X_PERSON).endswith("*")
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD])
    assert call.ctx.account.account_no == X_PERSON.account_no
    assert call.core.calls[:2] == ["find_account", "verify_password"]


def test_bad_check_digit_reprompts_before_asking_the_core():
    """A wrong check digit is refused with ivr/invalid-id, the core is not asked."""
    call = place_call(TO_BALANCE + [_bad_check_digit(X_PERSON), keyed_id(X_PERSON), PASSWORD])
    prompts = call.session.keyed_prompts()
    assert ("ivr/invalid-id", "ivr/enter-id") in prompts
    assert call.core.calls.count("find_account") == 1
    assert call.record.identified


def test_unknown_account_number():
    """A well-formed account number the core does not know is re-asked."""
    call = place_call(TO_BALANCE + ["999999999999", SILENCE])
    assert ("ivr/account-not-found", "ivr/enter-id") in call.session.keyed_prompts()


def test_three_wrong_passwords_lock():
    """Wrong, wrong (attempts left said: 两次, then 一次), wrong: the lock message must be
    heard whole."""
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), "000000", "000001", "000002", HANGUP])
    prompts = call.session.keyed_prompts()
    assert ("ivr/password-wrong", "ivr/attempts-left", "num/liang", "ivr/times",
            "ivr/enter-password") in prompts
    assert ("ivr/password-wrong", "ivr/attempts-left", "num/1", "ivr/times",
            "ivr/enter-password") in prompts
    assert ("play", ("ivr/account-locked", "ivr/try-later")) in call.session.log
    assert not call.record.identified
    assert call.outcome == "failed"


def test_locked_account_says_until_when():
    """An account the core already locked: the caller hears until which date and time."""
    call = place_call(TO_BALANCE + [LOCKED_PERSON.account_no, PASSWORD, HANGUP])
    played = [e[1] for e in call.session.log if e[0] == "play" and len(e[1]) > 1]
    assert played and played[0][:2] == ("ivr/account-locked", "ivr/locked-until")
    assert "unit/nian" in played[0] and "unit/dian" in played[0]
    assert played[0][-1] == "ivr/try-later"


def test_silence_reprompts_then_escalates_to_agent():
    """Silence re-prompts with ivr/no-input; the third silence sends the caller to an agent."""
    call = place_call(["1", SILENCE, SILENCE, SILENCE])
    prompts = call.session.keyed_prompts()
    assert prompts[1] == ("ivr/main-menu",)
    assert prompts[2] == prompts[3] == ("ivr/no-input", "ivr/main-menu")
    assert ("leave", "hotline-queue", "s", 1) in call.session.log
    assert call.outcome == "transferred"


def test_invalid_key_reprompts_with_its_own_wording():
    """An unknown key says ivr/invalid-key (not the silence wording), then the menu works."""
    call = place_call(["1", "7", "3", HANGUP])
    prompts = call.session.keyed_prompts()
    assert prompts[2] == ("ivr/invalid-key", "ivr/main-menu")
    assert ("play", ("ivr/policy-notice",)) in call.session.log


def test_hangup_mid_prompt_closes_the_record():
    """Hanging up during the policy notice ends the call cleanly, record closed as abandoned."""
    call = place_call(["1", "3", HANGUP_IN_PROMPT])
    assert call.session.log[-1] == ("play", ("ivr/policy-notice",))
    assert call.session.hung_up
    assert len(call.records.closed) == 1
    assert call.records.closed[0][1] == "abandoned"


def test_transfer_in_office_hours():
    """0 in office hours: the transfer notice, then the call leaves AGI for the queue."""
    call = place_call(["1", "0"])
    assert call.session.log[-2] == ("play", ("ivr/transferring",))
    assert call.session.log[-1] == ("leave", "hotline-queue", "s", 1)
    assert call.records.closed[0][1] == "transferred"


def test_transfer_outside_office_hours():
    """0 at night: the hours are said, the caller is back in the main menu, no transfer."""
    call = place_call(["1", "0", HANGUP], now=NIGHT_TIME)
    last = call.session.keyed_prompts()[-1]
    assert last[0] == "ivr/agent-hours" and last[-1] == "ivr/main-menu"
    assert "ivr/to" in last
    assert not any(e[0] == "leave" for e in call.session.log)
    assert call.outcome == "abandoned"


def test_office_hours_follow_the_centers_zone_not_the_hosts():
    """10:00 in Beijing is 02:00 in UTC: the same instant is open for a Shanghai center and
    closed for one configured in UTC, whatever zone the host runs in."""
    open_call = place_call(["1", "0"], center_config=center(timezone="Asia/Shanghai"))
    closed_call = place_call(["1", "0", HANGUP], center_config=center(timezone="UTC"))
    assert open_call.session.log[-1][0] == "leave"
    assert not any(e[0] == "leave" for e in closed_call.session.log)


def test_survey_answer_stored_after_an_invalid_one():
    """The survey re-asks on an invalid key and stores the answer (2 基本满意)."""
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, "5", "7", "2"])
    assert ("ivr/invalid-survey", "ivr/enter-survey") in call.session.keyed_prompts()
    assert call.record.survey == 2


def test_no_survey_without_service():
    """A caller who used no self-service is not surveyed."""
    call = place_call(["1", "1", "5"])
    assert ("ivr/enter-survey",) not in call.session.keyed_prompts()
    assert call.record.survey is None


def test_repeat_key_replays_the_reading():
    """* after the balance says the balance again with the menu."""
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, "*", HANGUP])
    prompts = call.session.keyed_prompts()
    assert prompts[-1] == prompts[-2] and prompts[-1][0] == "ivr/balance-is"


def test_back_and_main_keys():
    """9 goes back to the previous menu, 8 to the main menu."""
    call = place_call(["1", "1", "9", "2", "8", HANGUP])
    assert call.record.path == ["language", "zh", "main", "deposit", "main", "loan", "main"]


def test_last_three_deposits():
    """Option 2 reads up to three deposits: date then amount each."""
    call = place_call(["1", "1", "2", keyed_id(X_PERSON), PASSWORD, HANGUP])
    reading = call.session.keyed_prompts()[-1]
    assert reading[0] == "ivr/recent-deposits"
    assert 1 <= reading.count("ivr/deposit-amount") <= 3
    assert reading[-1] == "ivr/deposit-menu"


def test_loan_summary():
    """Loan option: the loan's last 4 digits, balance and monthly repayment."""
    call = place_call(["1", "2", "1", keyed_id(X_PERSON), PASSWORD, HANGUP])
    reading = call.session.keyed_prompts()[-1]
    assert reading[0] == "ivr/loan-tail"
    assert "ivr/loan-balance-is" in reading and "ivr/monthly-repayment-is" in reading
    assert reading[-1] == "ivr/loan-menu"


def test_overdue_loan_says_overdue_amounts():
    """An overdue loan reads the overdue principal and periods."""
    overdue = DEMO[2]
    call = place_call(["1", "2", "1", overdue.account_no, PASSWORD, HANGUP])
    reading = call.session.keyed_prompts()[-1]
    assert "ivr/overdue-principal-is" in reading and "unit/qi" in reading


def test_no_loan():
    """A person without a loan hears so."""
    call = place_call(["1", "2", "1", DEMO[1].account_no, PASSWORD, HANGUP])
    assert call.session.keyed_prompts()[-1] == ("ivr/no-loan", "ivr/loan-menu")


def test_change_password():
    """Old, new, a mismatching repeat (re-asked), then matching: changed in the core."""
    core = FakeCore(core_attempts=3)
    call = place_call(TO_BALANCE[:2] + ["3", keyed_id(X_PERSON), PASSWORD, PASSWORD,
                                        "654321", "654320", "654321", "654321", HANGUP],
                      core=core)
    assert ("ivr/passwords-differ", "ivr/enter-new-password") in call.session.keyed_prompts()
    assert ("play", ("ivr/password-changed",)) in call.session.log
    assert _now(core.verify_password(X_PERSON.account_no, "654321")) is None


def test_sms_balance_without_notifier():
    """With no SMS room wired the caller hears the service is unavailable."""
    call = place_call(["1", "1", "4", HANGUP])
    assert call.session.keyed_prompts()[-1] == ("ivr/sms-unavailable", "ivr/deposit-menu")


def test_sms_balance_through_notifier():
    """The notifier seam is called with the center and account number."""
    sent = []

    async def notify(center, account_no):
        sent.append((center, account_no))

    call = place_call(["1", "1", "4", keyed_id(X_PERSON), PASSWORD, HANGUP], notifier=notify)
    assert sent == [("demo", X_PERSON.account_no)]
    assert call.session.keyed_prompts()[-1] == ("ivr/sms-sent", "ivr/deposit-menu")


def test_sms_balance_notifier_failure():
    """A notifier that cannot queue the message (CoreError) is reported as unavailable."""
    async def notify(center, account_no):
        raise CoreUnavailable("outbox down")

    call = place_call(["1", "1", "4", keyed_id(X_PERSON), PASSWORD, HANGUP], notifier=notify)
    assert call.session.keyed_prompts()[-1] == ("ivr/sms-unavailable", "ivr/deposit-menu")


def test_closed_item_says_so():
    """SMS balance is closed at night: the caller hears why and stays in the deposit menu."""
    call = place_call(["1", "1", "4", HANGUP], now=NIGHT_TIME)
    assert call.session.keyed_prompts()[-1] == ("ivr/sms-closed", "ivr/deposit-menu")


def test_english():
    """2 at the language menu switches the channel to English and readings follow."""
    call = place_call(["2", "1", "1", keyed_id(X_PERSON), PASSWORD, HANGUP])
    assert ("set_variable", "CHANNEL(language)", "en") in call.session.log
    reading = call.session.keyed_prompts()[-1]
    assert "unit/zheng" not in reading and "unit/jiao" not in reading
    assert call.record.language == "en"


def test_silence_at_language_menu_means_mandarin():
    """No key at the language menu: Mandarin, no failure counted."""
    call = place_call([SILENCE, HANGUP])
    assert call.record.path[:3] == ["language", "zh", "main"]


def test_core_unavailable_is_told():
    """A core that does not answer: the caller hears the system is busy, the call goes on."""
    class DownCore(FakeCore):
        async def find_account(self, **kw):
            raise CoreUnavailable("down")

    call = place_call(TO_BALANCE + [keyed_id(X_PERSON), HANGUP], core=DownCore(core_attempts=3))
    assert call.session.keyed_prompts()[-1] == ("ivr/system-busy", "ivr/main-menu")


def test_core_refusing_our_signatures_apologises_and_transfers():
    """Clock skew (or a wrong key) makes the core refuse every call: the caller hears the
    apology and is handed to an agent, and one log line says why (no traceback)."""
    from twisted.logger import globalLogPublisher

    from core_client.interface import CoreClockSkew

    class SkewedCore(FakeCore):
        async def verify_password(self, account_no, password):
            raise CoreClockSkew("core demo: its clock differs from ours by +400 s", 400)

    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        call = place_call(TO_BALANCE + [keyed_id(X_PERSON), PASSWORD, HANGUP],
                          core=SkewedCore(core_attempts=3))
    finally:
        globalLogPublisher.removeObserver(seen.append)
    assert ("leave", "hotline-queue", "s", 1) in call.session.log
    assert call.outcome == "transferred"
    lines = [e for e in seen if e.get("log_namespace") == "hotline.ivr.identify"]
    assert len(lines) == 1 and "+400 s" in lines[0]["why"] and "log_failure" not in lines[0]
    assert not any("log_failure" in e for e in seen)


class _LockedCore(FakeCore):
    """A core that has locked every account until ``until``."""

    def __init__(self, until):
        super().__init__(core_attempts=3)
        self.until = until

    async def verify_password(self, account_no, password):
        raise AccountLocked(self.until)


def _lock_reading(until) -> tuple[str, ...]:
    call = place_call(TO_BALANCE + [X_PERSON.account_no, PASSWORD, HANGUP],
                      core=_LockedCore(until))
    return next(e[1] for e in call.session.log if e[0] == "play" and len(e[1]) > 1)


def test_lock_expiry_is_read_in_the_centers_zone():
    """A lock until 12:41 UTC is 20:41 in Beijing (issue 13, defect 1): the caller hears
    二十点四十一分 whatever zone the host or the core runs in; a naive time from a core
    that answers in local time is read as it is."""
    for until in (dt.datetime(2026, 11, 26, 12, 41, tzinfo=dt.UTC),
                  dt.datetime(2026, 11, 26, 20, 41, tzinfo=ZoneInfo("Asia/Shanghai")),
                  dt.datetime(2026, 11, 26, 20, 41)):
        played = _lock_reading(until)
        assert speech.time_of_day(dt.time(20, 41)).prompts == \
            played[-1 - len(speech.time_of_day(dt.time(20, 41)).prompts):-1], until


def test_core_lock_is_read_in_the_centers_zone_on_a_utc_host(monkeypatch):
    """The demo core keeps its lock as an epoch: on a host running in UTC the caller still
    hears the center's local time (a lock until 23:59 Beijing was read 十五点五十九分)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        call = place_call(TO_BALANCE + [LOCKED_PERSON.account_no, PASSWORD, HANGUP])
    finally:
        monkeypatch.undo()
        time.tzset()
    played = next(e[1] for e in call.session.log if e[0] == "play" and len(e[1]) > 1)
    local = demo_data.LOCKED_UNTIL.astimezone(ZoneInfo("Asia/Shanghai"))
    reading = speech.time_of_day(local.time()).prompts
    assert played[-1 - len(reading):-1] == reading


def test_silent_caller_out_of_hours_hears_the_hours_and_goodbye():
    """Out of office hours three silences in the main menu lead to the agent item: the caller
    hears the hours and goodbye and is hung up, not sent back to the menu for ever
    (issue 13, defect 2)."""
    call = place_call(["1"] + [SILENCE] * 30, now=NIGHT_TIME)
    assert call.session.log[-1] == ("hangup",)
    said = call.session.log[-2]
    assert said[0] == "play" and said[1][0] == "ivr/agent-hours"
    assert said[1][-1] == "ivr/goodbye"
    assert len(call.session.keyed_prompts()) == 4  # language, then the main menu 3 times
    assert call.outcome == "failed"


def test_silence_at_the_id_prompt_out_of_hours_ends_the_call():
    """Silence at every ID prompt out of hours: bounded re-prompts, then hours and goodbye."""
    call = place_call(TO_BALANCE + [SILENCE] * 30, now=NIGHT_TIME)
    assert call.session.log[-1] == ("hangup",)
    assert [p for p in call.session.keyed_prompts() if p[-1] == "ivr/enter-id"] == \
        [("ivr/enter-id",)] + [("ivr/no-input", "ivr/enter-id")] * 2
    assert call.outcome == "failed"


def test_a_caller_who_chooses_the_agent_out_of_hours_goes_back_to_the_menu():
    """Choosing 0 out of hours after an earlier escalation elsewhere still returns to the
    menu: only the escalation itself ends the call."""
    call = place_call(["1", "7", "0", HANGUP], now=NIGHT_TIME)
    assert call.session.keyed_prompts()[-1][-1] == "ivr/main-menu"


def test_hangup_before_an_agent_answers_is_abandoned():
    """A caller who hangs up during "transferring" or while waiting in the queue is
    ``abandoned`` (issue 13, defect 8); one an agent answered is ``transferred``."""
    for fate, outcome in ((ABANDONED, "abandoned"), (ANSWERED, "transferred"),
                          (UNKNOWN, "transferred")):
        agents = FakeAgents(fate)
        call = place_call(["1", "0"], agents=agents)
        assert call.session.log[-1] == ("leave", "hotline-queue", "s", 1)
        assert agents.watched == [call.session.uniqueid]
        assert call.records.closed[0][1] == outcome, fate


def test_the_record_keeps_what_the_queue_said():
    """A caller handed to the agents' queue leaves the queue's answer in the call record
    (the reports' agent answer rate): answered, abandoned, or unknown when no agent events
    are watched; one who hangs up during "transferring" abandoned; a call never sent to
    the queue has none."""
    for agents, fate in ((FakeAgents(ANSWERED), ANSWERED), (FakeAgents(ABANDONED), ABANDONED),
                         (None, UNKNOWN)):
        call = place_call(["1", "0"], agents=agents)
        assert call.records.closed[0][0].agent == fate
    call = place_call(["1", "0", HANGUP_IN_PROMPT], agents=FakeAgents(ANSWERED))
    assert call.records.closed[0][0].agent == ABANDONED
    call = place_call(["1", "3", HANGUP_IN_PROMPT])
    assert call.records.closed[0][0].agent is None


def test_hangup_in_the_transferring_notice_is_abandoned():
    """The caller hangs up while hearing "transferring": abandoned, not transferred."""
    call = place_call(["1", "0", HANGUP_IN_PROMPT], agents=FakeAgents(ANSWERED))
    assert not any(e[0] == "leave" for e in call.session.log)
    assert call.outcome == "abandoned"


def test_a_too_long_id_is_invalid_once_and_does_not_spill():
    """30 digits at the ID prompt (issue 13, defect 10): collection stops at 18, the rest
    is flushed, the caller hears "invalid ID" once and the next prompt is the ID again."""
    call = place_call(TO_BALANCE + ["1" * 30, keyed_id(X_PERSON) + "#", PASSWORD + "#",
                                    HANGUP])
    prompts = call.session.keyed_prompts()
    assert prompts[3:6] == [("ivr/enter-id",), ("ivr/invalid-id", "ivr/enter-id"),
                            ("ivr/enter-password",)]
    assert "ivr/account-not-found" not in call.session.heard()
    assert call.ctx.account.account_no == X_PERSON.account_no


def test_the_rest_of_a_too_long_entry_is_flushed_by_one_read_ending_at_a_pause():
    """The keys typed beyond a full entry are taken by one Read that ends at a # or a pause
    of FLUSH_MS, and the re-prompt follows at once: no second Read listening another
    FLUSH_MS (silence for the caller, and an entry keyed again in it was swallowed). A
    caller still typing when the flush Read is full gets another one."""
    for typed, flush_reads in (("1" * 22, 1), ("1" * 60, 2)):
        call = place_call(TO_BALANCE + [typed, keyed_id(X_PERSON) + "#", PASSWORD + "#",
                                        HANGUP])
        reads = [e for e in call.session.log if e[0] == "get_data"]
        first = next(i for i, e in enumerate(reads) if e[1] == ("ivr/enter-id",))
        assert [e[1] for e in reads[first + 1:first + 2 + flush_reads]] == \
            [()] * flush_reads + [("ivr/invalid-id", "ivr/enter-id")], reads
        assert call.ctx.account.account_no == X_PERSON.account_no


def test_seven_digit_password_is_invalid_once_then_accepted():
    """7 digits and # at the password prompt: "invalid" once (not "you entered nothing"
    after it), and the next entry is taken."""
    call = place_call(TO_BALANCE + [keyed_id(X_PERSON) + "#", "1234567#", PASSWORD + "#",
                                    HANGUP])
    prompts = call.session.keyed_prompts()
    assert prompts[4:6] == [("ivr/enter-password",),
                            ("ivr/invalid-password", "ivr/enter-password")]
    assert "ivr/no-input" not in call.session.heard()
    assert call.record.identified


def test_change_password_asks_for_the_current_one_in_its_own_words():
    """After identifying with the password, the change asks "enter your current password"
    (not the identification prompt again), then the new one twice, each worded apart."""
    new = "246813"
    call = place_call(TO_BALANCE[:2] + ["3", keyed_id(X_PERSON) + "#", PASSWORD + "#",
                                        PASSWORD + "#", new + "#", new + "#", HANGUP])
    asked = [p[-1] for p in call.session.keyed_prompts()[3:]]
    assert asked[:5] == ["ivr/enter-id", "ivr/enter-password", "ivr/enter-current-password",
                         "ivr/enter-new-password", "ivr/enter-confirm-password"]
    assert ("play", ("ivr/password-changed",)) in call.session.log
