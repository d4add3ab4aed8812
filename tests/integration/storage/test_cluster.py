"""Instances and leases in the database: one holder at a time, taken over once lapsed."""
import threading
import time

import pytest
from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock

from storage import cluster
from storage.db import Database
from storage.migrate import upgrade


class InlineDatabase(Database):
    """Transactions on the calling thread, so a Clock drives the membership."""

    def run(self, fn, *args, **kwargs):
        return maybeDeferred(self.run_sync, fn, *args, **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    url = (f"sqlite:///{tmp_path / 'cluster.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    upgrade(url)
    db = InlineDatabase(url, None, threads=4)
    yield db
    db.engine.dispose()


def test_one_holder_until_the_lease_lapses(db):
    """A lease is refused to others while held, renewed by its holder, and taken over by
    another instance once it has lapsed without a renewal."""
    assert db.run_sync(cluster.acquire, "job", "a", 0.5)
    assert not db.run_sync(cluster.acquire, "job", "b", 0.5)
    assert db.run_sync(cluster.acquire, "job", "a", 0.5)
    time.sleep(0.7)
    assert db.run_sync(cluster.acquire, "job", "b", 0.5)
    assert not db.run_sync(cluster.acquire, "job", "a", 0.5)
    [lease] = db.run_sync(cluster.read_state).leases
    assert lease.holder == "b" and lease.held_for < 0.5


def test_the_heartbeat_keeps_the_leases_and_a_clean_stop_frees_them(db):
    """Leases live as long as their holder heartbeats; leaving frees them at once and
    shows the instance as not alive."""
    db.run_sync(cluster.heartbeat, "a", 0.5, {"ivr": {"calls": 2}}, True)
    assert db.run_sync(cluster.acquire, "job", "a", 0.5)
    for _ in range(3):
        time.sleep(0.3)
        db.run_sync(cluster.heartbeat, "a", 0.5, {}, False)
    assert not db.run_sync(cluster.acquire, "job", "b", 0.5)
    state = db.run_sync(cluster.read_state)
    assert [(i.instance, i.alive) for i in state.instances] == [("a", True)]
    db.run_sync(cluster.leave, "a")
    assert db.run_sync(cluster.acquire, "job", "b", 0.5)
    assert [i.alive for i in db.run_sync(cluster.read_state).instances] == [False]


def test_simultaneous_asks_get_one_holder(db):
    """Eight instances asking at the same moment: exactly one gets the lease."""
    won, start = [], threading.Barrier(8)

    def ask(name):
        start.wait()
        if db.run_sync(cluster.acquire, "job", name, 10):
            won.append(name)

    threads = [threading.Thread(target=ask, args=(f"i{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1


def test_exclusive_job_runs_only_on_the_lease_holder(db):
    """Two daemons' schedulers fire the same job: only the holder's run happens, and
    after the holder stops the other's next run takes over."""
    runs = []
    a = cluster.Membership(db, Clock(), "a", ttl=5)
    b = cluster.Membership(db, Clock(), "b", ttl=5)
    job_a = a.exclusive("sms-alerts-demo", lambda: runs.append("a"))
    job_b = b.exclusive("sms-alerts-demo", lambda: runs.append("b"))
    for m in (a, b):
        m.startService()
    job_a(), job_b(), job_b(), job_a()
    a.stopService()
    job_b()
    b.stopService()
    assert runs == ["a", "a", "b"]


def test_lapsed_instances_with_who_adopted_them(db):
    """A lapsed instance is listed with the live holder of its ``calls-`` lease, or None;
    a live instance is not listed; ``holder`` names a lease's live holder; a released
    lease leaves it unheld again."""
    for name in ("a", "b", "c"):
        db.run_sync(cluster.heartbeat, name, 0.3, {}, True)
    time.sleep(0.5)
    db.run_sync(cluster.heartbeat, "c", 5, {}, False)
    assert db.run_sync(cluster.acquire, "calls-a", "c", 5)
    assert db.run_sync(cluster.lapsed_with_holder, "calls-") == [("a", "c"), ("b", None)]
    assert (db.run_sync(cluster.holder, "calls-a"), db.run_sync(cluster.holder, "calls-b")) \
        == ("c", None)
    db.run_sync(cluster.release, "calls-a", "b")  # not the holder: nothing happens
    assert db.run_sync(cluster.lapsed_with_holder, "calls-")[0] == ("a", "c")
    db.run_sync(cluster.release, "calls-a", "c")
    assert db.run_sync(cluster.lapsed_with_holder, "calls-") == [("a", None), ("b", None)]


def test_steady_only_after_a_lease_time_of_heartbeats_without_a_gap(db):
    """``steady_for`` counts from the first heartbeat after start or after a gap longer
    than the lease time (a database outage), and is 0 while a heartbeat is overdue."""
    clock = Clock()
    clock.advance(1000)
    member = cluster.Membership(db, clock, "a", ttl=3.0)
    assert member.steady_for() == 0.0
    member.startService()
    for _ in range(4):
        clock.advance(1.0)
    assert member.steady_for() == 4.0
    member._beat.stop()  # the database is away: no heartbeat lands
    clock.advance(4.0)
    assert member.steady_for() == 0.0
    member._beat.start(1.0, now=True)
    clock.advance(2.0)
    assert member.steady_for() == 2.0
    member._beat.stop()
