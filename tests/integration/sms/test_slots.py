"""SMS connection slots shared by the cluster: every bind is a lease in the database, so two
daemons never open more binds than configured, and a dead daemon's binds are taken over
once its lease lapses."""
from __future__ import annotations

import time

import pytest
from twisted.internet.defer import succeed

from sms.carrier.router import SmppRouter
from sms.outbox.testing import InlineDatabase
from storage import cluster
from tests.support.smpp_harness import Harness, smsc

TTL = 0.5


@pytest.fixture
def db(db_url):
    d = InlineDatabase(db_url, None, 1)
    d.create_all()
    yield d
    d.engine.dispose()


def router(harness: Harness, member: cluster.Membership) -> SmppRouter:
    config = smsc("a", binds=2, reconnect_min=0.1, reconnect_max=0.2)
    return SmppRouter([config], harness.clock, on_receipt=lambda r: succeed(None),
                      on_mo=lambda m: succeed(None),
                      endpoint_for=lambda c: harness.endpoints[c.name],
                      slot=member.leased_endpoint, jitter=lambda: 0.0)


def test_two_daemons_share_the_configured_binds_and_take_over_a_dead_ones(db):
    """Daemon a starts first and holds both configured binds; daemon b's binds wait.
    When a dies (its links gone, its leases no longer renewed), b holds both within the
    lease time and a retry: two binds in the cluster before and after."""
    harness = Harness(smsc("a"))
    a = router(harness, cluster.Membership(db, harness.clock, "a", ttl=TTL))
    b = router(harness, cluster.Membership(db, harness.clock, "b", ttl=TTL))
    a.startService()
    harness.advance(0.3)
    b.startService()
    harness.advance(1.0)
    assert (a.bound_count(), b.bound_count()) == (2, 0)
    leases = db.run_sync(cluster.read_state).leases
    assert [(lease.name, lease.holder) for lease in leases] == [("smsc-a-0", "a"),
                                                                 ("smsc-a-1", "a")]

    a.stopService()  # the daemon is gone: no unbind would come, no renewal does
    harness.advance(0.5)
    time.sleep(TTL + 0.1)  # leases lapse on the database's clock
    harness.advance(1.0)
    assert (a.bound_count(), b.bound_count()) == (0, 2)
    assert {lease.holder for lease in db.run_sync(cluster.read_state).leases} == {"b"}
    b.stopService()
    harness.advance(0.5)
