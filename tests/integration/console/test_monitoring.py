"""/metrics and /readyz: link states, database figures and readiness, in memory."""
import json

import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.web.resource import Resource

from common.metrics import LinkView, Metrics, Status, resources
from console.figures import monitoring
from sms.outbox.testing import InlineDatabase


class FakeLink:
    name = "ami"

    def __init__(self, up):
        self.is_up = up
        self.state = "up" if up else "connecting"

    def snapshot(self):
        return type("S", (), {"state": self.state, "last_error": None})()


@pytest.fixture
def db(tmp_path):
    db = InlineDatabase(f"sqlite:///{tmp_path / 'm.db'}", Clock())
    db.create_all()
    yield db
    db.engine.dispose()


def fetch(resource_map, path):
    root = Resource()
    for name, r in resource_map.items():
        root.putChild(name, r)
    stub = StubTreq(root)
    d = stub.get("http://h" + path)
    stub.flush()
    box = []
    d.addCallback(lambda r: r.content().addCallback(lambda body: box.append((r.code, body))))
    stub.flush()
    return box[0]


def test_readiness_follows_the_ami_link(db):
    """/readyz answers 503 while the AMI link is down, 200 once it is up and the DB answers."""
    status = Status(db, {"ami": FakeLink(False)}, None)
    code, body = fetch(resources(Metrics(status, monitoring, Clock())), "/readyz")
    assert code == 503 and json.loads(body)["checks"] == {"database": "ok",
                                                          "ami": "ami connecting"}
    status.ami_links["ami"] = FakeLink(True)
    code, body = fetch(resources(Metrics(status, monitoring, Clock())), "/readyz")
    assert code == 200 and json.loads(body)["ready"] is True


def test_metrics_expose_links_and_figures(db):
    """The Prometheus page carries link states and the database's figures."""
    status = Status(db, {"ami": FakeLink(True)}, None)
    code, body = fetch(resources(Metrics(status, monitoring, Clock())), "/metrics")
    text = body.decode()
    assert code == 200
    assert 'hotline_link_up{kind="ami",name="ami",state="up"} 1.0' in text
    assert "hotline_sms_queue_depth" in text and "hotline_calls_24h" in text


class Router:
    """The shape of SmppRouter.states(): SMSC -> bind -> snapshot."""

    def states(self):
        return {"cmcc": {"cmcc-1": {"state": "bound", "ready": True, "inflight": 2,
                                    "window": 10},
                         "cmcc-2": {"state": "binding", "ready": False, "inflight": 0,
                                    "window": 10}},
                "cucc": {"cucc-0": {"state": "parked", "ready": True, "inflight": 0,
                                    "window": 16}}}

    def bound_count(self):
        return 1


def test_links_lists_every_bind():
    """Each bind of each SMSC is one link on the dashboard, up when it takes parts: bound,
    or parked by design (SGIP's idle Unbind, not an outage); binding is not up."""
    views = Status(None, None, Router()).links()
    assert views == [LinkView("smpp", "cmcc/cmcc-1", "bound", True, "window 2/10"),
                     LinkView("smpp", "cmcc/cmcc-2", "binding", False, "window 0/10"),
                     LinkView("smpp", "cucc/cucc-0", "parked", True, "window 0/16")]
