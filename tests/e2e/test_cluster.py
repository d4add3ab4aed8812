"""The loopback cluster (sandbox/cluster.py): two daemons on a PostgreSQL primary with a
synchronous standby, two Asterisk nodes behind Kamailio.

One cluster for the whole story, in order: both daemons serve calls; a daemon killed
with SIGKILL hands its scheduled jobs to the survivor within the lease time; the
PostgreSQL primary is killed and the standby promoted, and the survivor goes on
(heartbeats, calls, alerts) within 60 s with nothing acknowledged lost; an Asterisk
node is killed and new calls go to the other. The alert for a deposit posted at each
step is accepted exactly once.
"""
from __future__ import annotations

import shutil
import time

import pytest
import sqlalchemy as sa

from sandbox.cluster import NODES, Cluster
from sandbox.demo import DEPOSIT_ACCOUNT
from sandbox.sipp import Pause, SippCall
from sandbox.stack import credit_deposit
from storage.db import engine_url
from tests.conftest import LOG_DIR

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster(asterisk_root, tmp_path_factory):
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio is not installed (sandbox/setup.sh installs it)")
    base = tmp_path_factory.mktemp("cluster")
    with Cluster(base, LOG_DIR / "cluster", say=lambda line: None) as running:
        yield running


def query(cluster, sql: str, **params) -> list:
    """Rows from whichever server is the writable primary now."""
    engine = sa.create_engine(engine_url(cluster.db_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def wait_for(what: str, predicate, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout} s")


def holders(cluster) -> dict[str, str]:
    return {lease.name: lease.holder for lease in cluster.status().leases
            if lease.expires_in > 0}


def place_calls(cluster, n: int, workdir) -> None:
    result = SippCall("127.0.0.1", cluster.balancer.port, "12329", steps=[Pause(3000)],
                      hangup="bye", calls=n, rate=4, timeout_s=40, workdir=workdir).run()
    assert result.ok, result.stdout + result.errors


def alerts_for(cluster, cursor: int) -> int:
    return len(query(cluster, "select id from sms_message where center = 'demo' "
                              "and idem_key = :k", k=f"ev:{cursor}"))


def deposit_alerted_once(cluster) -> float:
    """Post a deposit in the demo core; the alert job (wherever it runs) accepts one SMS."""
    from core_client.demo_data import demo_identities

    posted = credit_deposit(cluster.core_db, demo_identities()[DEPOSIT_ACCOUNT].account_no)
    took = wait_for("the deposit alert", lambda: alerts_for(cluster, posted["cursor"]) >= 1, 60)
    time.sleep(3)  # a second run of the job anywhere would have added its twin by now
    assert alerts_for(cluster, posted["cursor"]) == 1
    return took


def test_cluster_story(cluster, tmp_path):
    # 1. Both daemons alive and serving; each job leased to exactly one of them.
    state = cluster.status()
    assert sorted(i.instance for i in state.instances if i.alive) == ["hotline-a", "hotline-b"]
    wait_for("job and slot leases", lambda: {"sms-alerts-demo", "sms-reminders-demo",
                                             "smsc-local-0"} <= set(holders(cluster)), 20)
    place_calls(cluster, 4, tmp_path / "calls1")
    drivers = {r[0] for r in query(cluster, "select distinct instance from ivr_call")}
    assert drivers == {"hotline-a", "hotline-b"}
    deposit_alerted_once(cluster)

    # 2. The alert job's holder is killed: the survivor takes its leases within lease_ttl,
    # the SMSC's one connection slot (bind) within 5 s after that.
    holder = holders(cluster)["sms-alerts-demo"]
    dead = holder.removeprefix("hotline-")
    survivor = next(n for n in NODES if n != dead)
    cluster.kill_daemon(dead)
    took = wait_for("lease takeover", lambda: holders(cluster).get("sms-alerts-demo")
                    == f"hotline-{survivor}", cluster.lease_ttl + 5)
    slot = wait_for("the SMSC slot's takeover", lambda: holders(cluster).get("smsc-local-0")
                    == f"hotline-{survivor}", cluster.lease_ttl + 5)
    wait_for("the survivor's bind", lambda: any(
        i.status.get("sms", {}).get("local", {}).get("connections") == 1
        for i in cluster.status().instances if i.instance == f"hotline-{survivor}"), 10)
    deposit_alerted_once(cluster)

    # 3. PostgreSQL primary killed, standby promoted: the survivor carries on.
    calls_before = len(query(cluster, "select id from ivr_call"))
    cluster.pg.primary.kill()
    time.sleep(1)
    cluster.pg.standby.promote()
    promoted = time.monotonic()
    # A heartbeat written after the promotion: the replicated one is older than that.
    back = wait_for("the survivor's heartbeat on the new primary", lambda: any(
        i.alive and i.heartbeat_age < time.monotonic() - promoted
        for i in cluster.status().instances if i.instance == f"hotline-{survivor}"), 60)
    assert len(query(cluster, "select id from ivr_call")) >= calls_before  # nothing lost
    deposit_alerted_once(cluster)

    # 4. The dead daemon's Asterisk node is killed: new calls go to the survivor's node.
    cluster.asterisks[dead].process.kill()
    cluster.balancer.wait_state(cluster.sip_node(dead), False)
    place_calls(cluster, 2, tmp_path / "calls2")
    new = query(cluster, "select instance from ivr_call order by id desc limit 2")
    assert [r[0] for r in new] == [f"hotline-{survivor}"] * 2
    print(f"cluster: jobs moved in {took:.1f} s, the SMSC slot {slot:.1f} s after; a heartbeat "
          f"on the promoted standby {back:.1f} s after its promotion")
