"""Kamailio's dispatcher in front of two Asterisk nodes: new calls spread over both, and
after one node is killed, Kamailio stops sending to it (it no longer answers OPTIONS)
and every new call goes to the other."""
from __future__ import annotations

import re
import shutil

import pytest

from sandbox.kamailio import Balancer
from sandbox.pytest_postgres import unavailable
from sandbox.sipp import Pause, SippCall

pytestmark = pytest.mark.e2e


def processed(inst) -> int:
    found = re.search(r"(\d+) calls? processed", inst.cli("core show calls"))
    return int(found.group(1)) if found else 0


def calls(balancer, n: int, workdir) -> None:
    result = SippCall("127.0.0.1", balancer.port, "12329", steps=[Pause(1000)], hangup="bye",
                      calls=n, rate=4, timeout_s=30, workdir=workdir).run()
    assert result.ok, result.stdout + result.errors


def test_a_killed_asterisk_node_gets_no_new_calls(asterisk_factory, tmp_path):
    """Four calls through Kamailio land on both nodes; node A is killed with SIGKILL,
    Kamailio marks it inactive from its OPTIONS probes within seconds, and the next four
    calls all complete on node B."""
    # Both nodes take Kamailio (127.0.0.1) as their caller.
    a = asterisk_factory({"caller_match": "127.0.0.1"}, address="127.0.0.2")
    b = asterisk_factory({"caller_match": "127.0.0.1"}, address="127.0.0.3")
    node_a, node_b = f"127.0.0.2:{a.sip_port}", f"127.0.0.3:{b.sip_port}"
    if shutil.which("kamailio") is None:
        unavailable("kamailio is not installed (sandbox/setup.sh installs it)")
    balancer = Balancer(tmp_path / "kamailio", [node_a, node_b]).start()
    try:
        balancer.wait_state(node_a, True)
        balancer.wait_state(node_b, True)
        calls(balancer, 4, tmp_path / "sipp1")
        assert processed(a) >= 1 and processed(b) >= 1, (processed(a), processed(b))

        a.process.kill()
        a.process.wait(5)
        took = balancer.wait_state(node_a, False, timeout=10)
        before_b = processed(b)
        calls(balancer, 4, tmp_path / "sipp2")
        assert processed(b) - before_b == 4
        print(f"kamailio: node A marked inactive {took:.1f} s after its kill; "
              f"4 new calls on node B")
    finally:
        balancer.stop()
