"""The menu engine under random callers: whatever is keyed, the call ends and its record closes."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from core_client.testing import FakeCore
from ivr.engine import Engine, run_call
from ivr.flows.context import PART_GAP_MS, PROMPT_CHARS, CallContext, chunk_files
from ivr.records import OUTCOMES, CallRecord
from tests.support.ivr_fakes import (
    HANGUP,
    HANGUP_IN_PROMPT,
    MENU,
    NIGHT_TIME,
    OFFICE_TIME,
    SILENCE,
    X_PERSON,
    FakeSession,
    MemoryRecords,
    center,
    keyed_id,
    place_call,
)

KEYS = st.sampled_from(list("0123456789*#") + ["", "12", "99", "1234567"])
EVENTS = st.one_of(
    KEYS,
    st.just(SILENCE),
    st.just(HANGUP),
    st.just(HANGUP_IN_PROMPT),
    st.just(keyed_id(X_PERSON)),
    st.just(X_PERSON.password),
    st.just(X_PERSON.account_no),
    st.text(alphabet="0123456789*#", max_size=20),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(EVENTS, max_size=40), night=st.booleans())
def test_random_callers_always_end_with_a_closed_record(script, night):
    """Random keys, silences and hang-ups: no crash, the call ends, exactly one record closed
    with a known outcome, and no secret ever lands in the recorded keys."""
    call = place_call(script, now=NIGHT_TIME if night else OFFICE_TIME)
    assert call.outcome in OUTCOMES
    assert len(call.records.opened) == 1 and len(call.records.closed) == 1
    record, outcome, _served = call.records.closed[0]
    assert outcome == call.outcome
    for node, key in record.keys:
        assert node in call.ctx.menu.nodes
        assert len(key) <= call.ctx.menu.nodes[node].max_digits


def test_get_data_uses_node_timeouts():
    """A menu's GET DATA carries its first-digit and inter-digit timeouts and max digits."""
    call = place_call(["1", HANGUP])
    first = [e for e in call.session.log if e[0] == "get_data"][0]
    assert first[2:] == (3000, 1, 3000)  # the language menu waits 3 s for one key


def test_identification_inputs_use_their_own_timeouts():
    """The ID prompt waits 8 s for the first key, 4 s between keys, up to 18 keys and #."""
    call = place_call(["1", "1", "1", HANGUP])
    last = [e for e in call.session.log if e[0] == "get_data"][-1]
    assert last[1:] == (("ivr/enter-id",), 8000, 19, 4000)


def test_a_failing_flow_still_closes_the_record():
    """An unexpected error in a flow closes the record as 'error' and is not swallowed."""
    class BrokenCore(FakeCore):
        async def find_account(self, **kw):
            raise RuntimeError("bug")

    clock = Clock()
    clock.advance(OFFICE_TIME)
    session = FakeSession(["1", "1", "1", keyed_id(X_PERSON)])
    records = MemoryRecords(clock)
    record = CallRecord.start(instance="i", center="demo", uniqueid="u", caller_id=None,
                              dnid=None, language="zh", now=clock.seconds())
    ctx = CallContext(session=session, center=center(), core=BrokenCore(), menu=MENU,
                      clock=clock, record=record)
    failures = []
    Deferred.fromCoroutine(run_call(ctx, Engine(MENU), records)).addErrback(failures.append)
    assert failures and failures[0].check(RuntimeError)
    assert records.closed[0][1] == "error"


def test_long_readings_are_split_to_fit_an_ami_line():
    """Playback file lists are cut so no AGI command outgrows Asterisk's 1024-byte AMI line."""
    files = [f"/var/lib/hotline/prompts/current/demo/zh/num/{i % 10}" for i in range(80)]
    chunks = chunk_files(files, PROMPT_CHARS)
    assert [f for c in chunks for f in c] == files
    assert all(len("&".join(c)) <= PROMPT_CHARS for c in chunks)
    assert len(chunks) > 1


def _long_reading(script):
    session = FakeSession(script)
    record = CallRecord.start(instance="i", center="demo", uniqueid="u", caller_id=None,
                              dnid=None, language="zh", now=0.0)
    ctx = CallContext(session=session, center=center(), core=FakeCore(), menu=MENU,
                      clock=Clock(), record=record,
                      resolve=lambda p, lang: f"/var/lib/hotline/{lang}/{p}")
    prompts = tuple(f"num/{i % 10}" for i in range(60)) + ("ivr/deposit-menu",)
    result = []
    Deferred.fromCoroutine(ctx.get_data(prompts, 5, 3, 1)).addCallback(result.append)
    return session, prompts, result[0]


def test_long_prompt_lists_keep_barge_in_on_every_part():
    """A reading too long for one AMI line is cut into Reads with barge-in: the leading
    parts wait only a moment for a key, the last one (with the menu prompt) the full
    first-digit timeout; every file is said, in order."""
    session, prompts, result = _long_reading([SILENCE, "1"])
    assert result.digits == "1"
    kinds = [e[0] for e in session.log]
    assert kinds == ["get_data", "get_data"]
    assert [e[2] for e in session.log] == [PART_GAP_MS, 5000]
    sent = [f for e in session.log for f in e[1]]
    assert sent == [f"/var/lib/hotline/zh/{p}" for p in prompts]


def test_a_key_during_an_early_part_ends_the_reading():
    """A caller who keys the next choice while the balance is still being read is
    answered at once: the rest of the reading is not played."""
    session, _prompts, result = _long_reading(["1"])
    assert result.digits == "1"
    assert [e[0] for e in session.log] == ["get_data"]
