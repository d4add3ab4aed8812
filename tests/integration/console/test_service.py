"""The console's service: its own listener from [console] listen, and the timer that folds
SMS into the rollups and applies template texts published by another daemon."""
from twisted.internet.testing import MemoryReactorClock

import console.config
import ivr.config
import prompts.config
from common.config import load
from console import rollup, templates_page
from common.web import GuardedSite
from console.service import ROLLUP_INTERVAL, make_service
from console.tables import RollupMark
from console.web import MAX_BODY
from sms.outbox.testing import InlineDatabase
from sms.templates import TemplateSet

INI = """[daemon]
state_dir = {dir}
[console]
listen = tcp:port=18330:interface=127.0.0.1
[center:nj]
name = 南京住房公积金管理中心
signature = 南京公积金
"""
NEW = "{signature}尾号{account}于{date}入账{amount}元，余额{balance}元。"


def test_listener_and_rollup_timer(tmp_path):
    """Started, it listens on its own port; each tick folds SMS and applies a text another
    daemon published, so this daemon's next SMS carries it too."""
    ini = tmp_path / "h.ini"
    ini.write_text(INI.format(dir=tmp_path), encoding="utf-8")
    config = load(ini, {"ivr": ivr.config, "prompts": prompts.config,
                        "console": console.config}, secrets=False, only_these_rooms=True)
    reactor = MemoryReactorClock()
    reactor.advance(1_800_000_000)
    db = InlineDatabase(f"sqlite:///{tmp_path / 's.db'}", reactor)
    db.create_all()
    templates = TemplateSet({"nj": "南京公积金"})
    service = make_service(config, reactor, db, None, None, templates)
    db.run_sync(templates_page.save_draft, "nj", "deposit_credited", NEW, "a", 1.0, "old")
    db.run_sync(templates_page.publish, "nj", "deposit_credited", "b", 2.0, "old")
    service.startService()
    try:
        assert [p[0] for p in reactor.tcpServers] == [18330]
        site = reactor.tcpServers[0][1]  # the API's protections, a prompt's upload size
        assert isinstance(site, GuardedSite) and site.max_body == MAX_BODY
        reactor.advance(ROLLUP_INTERVAL)
        mark = db.run_sync(lambda s: s.get(RollupMark, rollup.SMS_MARK).value)
        assert mark == reactor.seconds() - rollup.SMS_LAG
        assert templates.get("nj", "deposit_credited").text == NEW
    finally:
        service.stopService()
        db.engine.dispose()
