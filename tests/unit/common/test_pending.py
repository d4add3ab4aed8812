"""The one table of outstanding requests: resolve, fail, time out, cancel, fail all, inspect."""
from __future__ import annotations

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock

from common.pending import PendingRequests


class Late(Exception):
    """The table's typed timeout error in these tests."""


class Gone(Exception):
    """The typed error for a lost connection in these tests."""


def make():
    clock = Clock()
    return clock, PendingRequests(clock, lambda label, seconds: Late(f"{label} after {seconds:g}s"))


def outcome(d: Deferred) -> list:
    out: list = []
    d.addBoth(out.append)
    return out


def test_resolve_fires_the_request_and_stops_its_timer():
    """An answer fires the Deferred with the result, frees the key and leaves no timer."""
    clock, table = make()
    got = outcome(table.add(7, "submit_sm", 5.0))
    assert 7 in table and len(table) == 1
    assert table.resolve(7, "resp") is True
    assert got == ["resp"] and len(table) == 0 and clock.getDelayedCalls() == []
    assert table.resolve(7, "again") is False  # a late duplicate answer finds nothing


def test_fail_one_leaves_the_others():
    """Failing one request fails only that one, with the given error."""
    _clock, table = make()
    a, b = outcome(table.add("a", "Ping", 5.0)), outcome(table.add("b", "Ping", 5.0))
    assert table.fail("a", Gone("refused")) is True
    assert a[0].check(Gone) and b == [] and list(table.outstanding()) == [("b", "Ping")]


def test_timeout_fails_with_the_tables_error_naming_the_label():
    """A request with no answer in time fails with the table's typed error and leaves."""
    clock, table = make()
    got = outcome(table.add(1, "bind_transceiver", 2.0))
    clock.advance(1.9)
    assert got == []
    clock.advance(0.1)
    assert got[0].check(Late) and str(got[0].value) == "bind_transceiver after 2s"
    assert len(table) == 0


def test_fail_all_fails_every_request_with_its_label_and_cancels_timers():
    """The connection ended: every request fails with a typed error made from its label."""
    clock, table = make()
    got = [outcome(table.add(i, f"cmd{i}", 5.0)) for i in range(3)]
    assert table.fail_all(lambda label: Gone(f"{label}: link lost")) == 3
    assert [str(g[0].value) for g in got] == ["cmd0: link lost", "cmd1: link lost",
                                              "cmd2: link lost"]
    assert len(table) == 0 and clock.getDelayedCalls() == []


def test_callers_deferred_is_used_as_is():
    """A caller's own Deferred (the SMPP bind's part) is the one fired: no second one."""
    _clock, table = make()
    mine = Deferred()
    assert table.add(3, "submit_sm", 5.0, mine) is mine
    table.resolve(3, "ok")
    assert mine.result == "ok"


def test_cancelling_a_request_removes_it_and_its_timer():
    """A caller that gives up (cancels) frees the key and the timer at once."""
    clock, table = make()
    got = outcome(table.add("x", "AGI", 60.0))
    table.get("x").deferred.cancel()
    assert got[0].check(CancelledError) and len(table) == 0
    assert clock.getDelayedCalls() == []


def test_data_rides_with_the_request():
    """A protocol keeps its own per-request state beside it (an AMI list in progress)."""
    _clock, table = make()
    table.add("l", "CoreShowChannels", 5.0, data="list")
    request = table.get("l")
    assert request.data == "list" and request.label == "CoreShowChannels"
    request.data = ["event"]
    assert table.pop("l").data == ["event"] and table.get("l") is None


def test_a_key_already_outstanding_is_refused():
    """Two requests under one key would leave one unanswerable: refused at once."""
    _clock, table = make()
    table.add(1, "enquire_link", 5.0)
    with pytest.raises(KeyError):
        table.add(1, "enquire_link", 5.0)


def test_requests_share_one_timer_and_each_times_out_at_its_own_deadline():
    """One timer for the whole table (not a callLater per request), yet a request sent
    later times out later: each at exactly its own deadline, never with an earlier one."""
    clock, table = make()
    first = outcome(table.add(1, "first", 5.0))
    clock.advance(2.0)
    second = outcome(table.add(2, "second", 5.0))
    assert len(clock.getDelayedCalls()) == 1
    clock.advance(2.9)
    assert first == [] and second == []
    clock.advance(0.1)  # t = 5: the first's deadline
    assert str(first[0].value) == "first after 5s" and second == [] and 2 in table
    clock.advance(1.9)
    assert second == []
    clock.advance(0.1)  # t = 7: the second's
    assert str(second[0].value) == "second after 5s"
    assert len(table) == 0 and clock.getDelayedCalls() == []


def test_a_shorter_timeout_added_later_brings_the_timer_forward():
    """A request with a shorter timeout than those waiting fails at its own deadline."""
    clock, table = make()
    slow = outcome(table.add("slow", "Originate", 60.0))
    quick = outcome(table.add("quick", "Ping", 1.0))
    clock.advance(1.0)
    assert str(quick[0].value) == "Ping after 1s" and slow == []
    clock.advance(58.9)
    assert slow == []
    clock.advance(0.1)
    assert str(slow[0].value) == "Originate after 60s" and clock.getDelayedCalls() == []


def test_the_timer_stops_with_the_last_answer_and_restarts_with_the_next_request():
    """Answered to the last one, the table leaves nothing on the clock; the next request
    gets its full timeout from when it was sent."""
    clock, table = make()
    table.add(1, "a", 5.0)
    table.resolve(1, "ok")
    assert clock.getDelayedCalls() == []
    clock.advance(4.0)
    late = outcome(table.add(2, "b", 5.0))
    clock.advance(4.9)
    assert late == []
    clock.advance(0.1)
    assert str(late[0].value) == "b after 5s"


def test_a_timeout_handler_may_send_again():
    """A request's timeout errback that sends a new request (a retry) gets a live timer."""
    clock, table = make()
    retried: list = []

    def retry(_failure):
        retried.append(outcome(table.add(2, "retry", 3.0)))

    table.add(1, "try", 2.0).addErrback(retry)
    clock.advance(2.0)
    assert retried and retried[0] == [] and len(clock.getDelayedCalls()) == 1
    clock.advance(3.0)
    assert str(retried[0][0].value) == "retry after 3s"
