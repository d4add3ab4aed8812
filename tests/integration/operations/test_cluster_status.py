"""``hotline cluster status``: instances, leases, SMS connections and calls per node."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import daemon
from storage import cluster
from storage.db import Database
from storage.migrate import upgrade

SAMPLE = Path(__file__).resolve().parents[3] / "hotline.sample.ini"


def test_status_shows_instances_leases_connections_and_calls(tmp_path, capsys):
    """Two daemons heartbeat (one then stops), one holds a job lease: the table and the
    JSON show who is alive, its calls per Asterisk node and SMS connections, and the lease."""
    ini = tmp_path / "hotline.ini"
    shutil.copyfile(SAMPLE, ini)
    (tmp_path / "var").mkdir()
    url = f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"
    upgrade(url)
    db = Database(url, None, 1)
    status = {"ivr": {"127.0.0.2:5038": {"ami": "up", "calls": 3},
                      "127.0.0.3:5038": {"ami": "down", "calls": 0}},
              "sms": {"local": {"connections": 2}}}
    db.run_sync(cluster.heartbeat, "hotline-1", 10, status, True)
    db.run_sync(cluster.heartbeat, "hotline-2", 10, {}, True)
    db.run_sync(cluster.acquire, "sms-alerts-demo", "hotline-1", 10)
    db.run_sync(cluster.leave, "hotline-2")
    db.engine.dispose()

    assert daemon.main(["cluster", "status", "-c", str(ini)]) == 0
    out = capsys.readouterr().out
    assert "hotline-1 on " in out and "alive, heartbeat" in out
    assert "calls per Asterisk node: 127.0.0.2:5038 3 (up), 127.0.0.3:5038 0 (down)" in out
    assert "SMS connections per SMSC: local 2" in out
    assert "hotline-2 on " in out and "DOWN, last heartbeat" in out
    assert "sms-alerts-demo: hotline-1 for 0 s, renewed, expires in" in out

    assert daemon.main(["cluster", "status", "-c", str(ini), "--json"]) == 0
    state = json.loads(capsys.readouterr().out)
    assert [(i["instance"], i["alive"]) for i in state["instances"]] == [
        ("hotline-1", True), ("hotline-2", False)]
    assert state["leases"][0]["holder"] == "hotline-1"
