"""The send journal: what a restart learns about parts that went out, and how it bounds duplicates."""
from __future__ import annotations

from sandbox.smsc_sim import SimConfig
from sms.outbox.records import SubmitResult
from sms.outbox.states import QUEUED, SUBMITTED
from sms.carrier.send_journal import SendJournal
from tests.support.outbox import clock, db, msg, outbox, part_states, result, states  # noqa: F401
from tests.support.smpp_harness import submit_part as _part
from tests.support.smpp_harness import Harness, smsc

BOOT = "boot-a"


def journal(tmp_path, **kw) -> SendJournal:
    return SendJournal(tmp_path / "j", "test", boot_id=kw.pop("boot_id", BOOT), **kw)


def test_answered_parts_keep_their_answer_and_unanswered_ones_are_marked_sent(tmp_path):
    """The last line per part wins: an R gives its result, an S alone means sent, unanswered."""
    j = journal(tmp_path)
    j.open()
    j.sent([(1, 10)])
    j.sent([(2, 20)])
    j.answered_ok((1, 10), "ab12", "s1")
    j.sent([(3, 30)])  # writes the pending answer first
    view = journal(tmp_path).read()
    assert view.last == {1: SubmitResult(1, 10, "ok", "ab12", "s1", None), 2: None, 3: None}


def test_an_answer_is_written_only_with_the_next_send_or_on_close(tmp_path):
    """Until the next S the answer is buffered: a crash then counts the part, never more than sent."""
    j = journal(tmp_path)
    j.open()
    j.sent([(1, 10)])
    j.answered(SubmitResult(1, 10, "temporary", error="Throttled"))
    assert journal(tmp_path).read().last == {1: None}
    j.close()
    assert journal(tmp_path).read().last == {1: SubmitResult(1, 10, "temporary", None, None,
                                                              "Throttled")}


def test_a_journal_from_another_boot_or_with_a_damaged_line_is_not_trusted(tmp_path):
    """After a machine restart the unsynced file may be stale: recovery falls back to the database."""
    j = journal(tmp_path)
    j.open()
    j.sent([(1, 10)])
    j.close()
    assert journal(tmp_path, boot_id="boot-b").read() is None
    assert journal(tmp_path, boot_id="").read() is None
    with open(j.segments()[0], "a") as f:
        f.write("S\tnot-a-number\n")
    assert journal(tmp_path).read() is None


def test_closed_segments_go_oldest_first_once_their_parts_are_committed(tmp_path):
    """Rotation keeps the journal small; a segment with an uncommitted part holds back newer ones."""
    j = journal(tmp_path, segment_bytes=12)  # one part per segment
    j.open()
    for part in range(1, 7):
        j.sent([(part, 10 * part)])
    assert len(j.segments()) >= 3
    first = j.segments()[0]
    for part in range(2, 7):
        j.committed(part)
    assert first.exists() and len(j.segments()) >= 2  # part 1 holds the oldest segment
    j.committed(1)
    assert len(j.segments()) == 1  # only the current one is left


def test_bind_journals_a_part_only_when_its_submit_sm_goes_out(tmp_path):
    """Parts waiting for a window slot are not in the journal: only what was written counts."""
    h = Harness(smsc(window=2), sims={"a": SimConfig(password="pw", latency=1.0)}).start()
    bind = h.router._smscs[0].binds[0]
    sent = []
    bind.on_send = sent.extend
    for i in range(5):
        h.router.submit(_part(i), ref=100 + i)
    h.flush()
    assert sent == [100, 101] and h.sims["a"].stats["submits"] == 2
    h.advance(1.0)
    assert sent == [100, 101, 102, 103]


def test_recovery_with_the_journal_counts_only_parts_sent_and_unanswered(outbox, db, tmp_path):
    """Answered: the answer is applied, not resent. Sent, unanswered: resent and counted. Never sent: requeued."""
    a = result(outbox.accept(msg("a")))
    b = result(outbox.accept(msg("b", dest="13900000002")))
    c = result(outbox.accept(msg("c", dest="13900000003")))
    claimed = {m.message_id: m for m in result(outbox.claim(10))}
    pa, pb, pc = (claimed[x.message_id].part_ids[0] for x in (a, b, c))
    j = journal(tmp_path)
    j.open()
    j.sent([(pa, a.message_id)])
    j.sent([(pb, b.message_id)])
    j.answered_ok((pa, a.message_id), "77", "s1")
    j.sent([(pb, b.message_id)])  # a second write of b (after a retry) flushes a's answer
    # kill -9 here: a was answered, b went out unanswered, c never left
    restart = journal(tmp_path)
    restart.open()
    assert result(outbox.recover(restart)) == 1
    assert states(db) == {a.message_id: SUBMITTED, b.message_id: QUEUED, c.message_id: QUEUED}
    assert result(outbox.counter("possible_duplicates")) == 1
    assert restart.segments() == [restart._path(restart._segment)]  # earlier runs' segments gone
    again = {m.message_id for m in result(outbox.claim(10))}
    assert again == {b.message_id, c.message_id}


def test_recovery_without_a_trusted_journal_counts_every_submitting_part(outbox, db, tmp_path):
    """A journal from another boot tells nothing: all marked parts are possible duplicates."""
    a = result(outbox.accept(msg("a", parts=2)))
    claimed = result(outbox.claim(10))
    j = journal(tmp_path, boot_id="before-reboot")
    j.open()
    j.sent([(claimed[0].part_ids[0], a.message_id)])
    restart = journal(tmp_path)
    restart.open()
    assert result(outbox.recover(restart)) == 2
    assert states(db) == {a.message_id: QUEUED} and part_states(db) == [QUEUED, QUEUED]


def test_an_odd_message_id_is_journalled_without_stopping_the_send(tmp_path):
    """Ids are SMSC text: a non-ASCII or tabbed one is written and read back as it was."""
    j = journal(tmp_path)
    j.open()
    j.sent([(1, 10)])
    j.answered_ok((1, 10), "id\té", "s1")
    j.sent([(2, 20)])
    assert journal(tmp_path).read().last[1].smpp_id == "id\té"
