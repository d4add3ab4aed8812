"""The start-up sequence both roots share: systemd notification and the stop order."""

from twisted.application.service import Service
from twisted.internet.defer import Deferred

from common.startup import Platform




def test_platform_stops_newest_first_waiting_for_each():
    """The database (first part) stops only after every later part has finished stopping."""
    order, pending = [], Deferred()

    class Part(Service):
        def __init__(self, name, result=None):
            self.name, self.result = name, result

        def stopService(self):
            order.append(self.name)
            return self.result

    top = Platform()
    for part in (Part("database"), Part("sms", pending), Part("http")):
        part.setServiceParent(top)
    top.startService()
    done = top.stopService()
    assert order == ["http", "sms"] and not done.called
    pending.callback(None)
    assert order == ["http", "sms", "database"] and done.called


def test_no_room_imports_the_composition_root():
    """daemon.py hands the rooms what they need (ROOMS, load_config); no product module
    imports it back (sms/cli.py and the outbox worker did)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    pattern = re.compile(r"^\s*(from daemon import|import daemon\b)", re.M)
    offenders = [str(path.relative_to(root))
                 for package in ("common", "core_client", "ivr", "operations", "prompts", "sms",
                                 "storage", "benchmarks", "sandbox")
                 for path in (root / package).rglob("*.py")
                 if "node_modules" not in path.parts and pattern.search(path.read_text("utf-8"))]
    assert offenders == []
