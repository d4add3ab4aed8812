"""The gateway under an SMSC that loses responses and cuts links: every resend is counted."""
from __future__ import annotations

import pytest

from sandbox.smsc_sim import SimConfig
from sms.carrier.router import PermanentError, SubmitPart, TemporaryError
from sms.outbox.dispatcher import Dispatcher
from sms.outbox.outbox import Outbox
from sms.outbox.testing import InlineDatabase, split_encode
from sms.smpp.protocol import LinkLost, NeverSent, SmppTimeout, Throttled
from tests.support.outbox import make_config, msg, noon, result
from tests.support.smpp_harness import Harness, smsc


class Gateway:
    """Outbox, dispatcher and router over one smsc_sim in memory, on one Clock."""

    def __init__(self, db_url, sim: SimConfig, **smsc_changes):
        self.h = Harness(smsc(**smsc_changes), sims={"a": sim})
        self.h.clock.advance(noon())
        self.db = InlineDatabase(db_url, None, 1)
        self.db.create_all()
        self.box = Outbox(self.db, self.h.clock,
                          make_config(per_destination_per_hour=10**6, retry_base=0.5,
                                      retry_max=2.0), encode=split_encode)
        self.h.router.on_receipt = lambda r: self.box.receipt(r.message_id, r.smsc, r.state,
                                                              r.error, None)
        self.disp = Dispatcher(self.box, self.h.router, self.h.clock, make_part=self._part,
                               temporary=(TemporaryError,), permanent=(PermanentError,),
                               doubtful=(SmppTimeout, LinkLost), unsent=(NeverSent,),
                               throttled=(Throttled,),
                               max_inflight=2 * smsc_changes.get("window", 10))

    @staticmethod
    def _part(m, part):
        return SubmitPart(m.destination, "12329", part.payload, part.data_coding,
                          part.esm_class)

    def run(self, n: int, seconds: float) -> dict:
        for i in range(n):
            result(self.box.accept(msg(f"k{i}", dest=f"139{i:08d}")))
        self.h.start()
        self.disp.startService()
        self.h.advance(seconds, step=0.05)
        return result(self.box.counts())

    def time_to_send(self, n: int, limit: float) -> float:
        """Simulated seconds until ``n`` accepted messages have all been submitted."""
        for i in range(n):
            result(self.box.accept(msg(f"k{i}", dest=f"139{i:08d}")))
        self.h.start()
        start = self.h.clock.seconds()
        self.disp.startService()
        while self.h.clock.seconds() - start < limit:
            self.h.advance(0.05, step=0.01)
            if self.disp.submitted >= n:
                break
        return self.h.clock.seconds() - start

    @property
    def sim(self):
        return self.h.sims["a"]

    def close(self):
        result(self.disp.stopService())
        self.db.engine.dispose()


@pytest.mark.parametrize("faults", [dict(unanswered_rate=0.05), dict(cut_every=1.0)],
                         ids=["lost-responses", "link-cuts"])
def test_resends_after_a_timeout_or_a_lost_link_are_counted_as_the_smsc_sees_them(
        db_url, faults):
    """Each part resent after a response timeout or a lost link counts as a possible
    duplicate: the outbox's counter equals the duplicates in the SMSC's ledger."""
    g = Gateway(db_url, SimConfig(password="pw", latency=0.05, **faults), window=8,
                response_timeout=1.0, reconnect_min=0.1, reconnect_max=0.2)
    counts = g.run(300, 25.0)
    snap = g.sim.snapshot()
    assert counts == {"delivered": 300}
    assert snap["duplicates"] > 0
    assert result(g.box.counter("possible_duplicates")) == snap["duplicates"]
    g.close()


def test_throttles_timeouts_and_resends_are_summarised_per_bind_per_minute():
    """Under faults the log gets one warning per bind per minute counting throttles, queue-full
    answers, timeouts and parts lost with a link, not one line per part and not silence."""
    from tests.support.logs import Logged
    from tests.support.smpp_harness import collect as _collect

    h = Harness(smsc(window=8, response_timeout=1.0),
                sims={"a": SimConfig(password="pw", throttle_rate=0.2, queue_full_rate=0.1,
                                     unanswered_rate=0.1)}).start()
    with Logged() as lines:
        for i in range(200):
            _collect(h.router.submit(SubmitPart(f"139{i:08d}", "12329", b"m", 0, 0)))
        h.advance(61.0, step=0.1)
    summaries = [line for line in lines if "in the last minute" in line]
    assert len(summaries) == 1, summaries
    assert "a-0" in summaries[0] and "throttled" in summaries[0] and "timed out" in summaries[0]


def test_throttling_slows_the_bind_instead_of_stopping_it(tmp_path):
    """With 5 % ESME_RTHROTTLED and 2 % ESME_RMSGQFUL answers the gateway keeps at least 70 %
    of its unthrottled rate: the bind narrows its window and widens it again (AIMD) and the
    throttled part goes again soon, instead of a one-second pause per answer."""
    clean = Gateway(f"sqlite:///{tmp_path / 'clean.db'}", SimConfig(password="pw", latency=0.02, dlr=False), window=16)
    t_clean = clean.time_to_send(800, 60.0)
    clean.close()
    faulty = Gateway(f"sqlite:///{tmp_path / 'faulty.db'}",
                     SimConfig(password="pw", latency=0.02, dlr=False, throttle_rate=0.05,
                               queue_full_rate=0.02), window=16)
    t_faulty = faulty.time_to_send(800, 60.0)
    snap = faulty.sim.snapshot()
    faulty.close()
    assert snap["throttled"] > 20 and snap["queue_full"] > 5
    assert faulty.disp.submitted >= 800
    assert t_clean / t_faulty >= 0.7, (t_clean, t_faulty)
