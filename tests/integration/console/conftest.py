"""The console over an inline database and a Clock, with every page mounted: ``env``."""
import pytest
from twisted.internet.task import Clock

import console.config
import ivr.config
import prompts.config
from common.config import load
from console import accounts
from console.door_page import DoorPages
from console.optout_page import OptOutPages
from console.prompts_page import PromptPages
from console.reports_page import ReportPages
from console.search_page import SearchPages
from console.templates_page import TemplatePages
from console.users_page import UserPages
from console.web import Console
from sms.outbox.testing import InlineDatabase
from sms.templates import TemplateSet
from tests.support.console_browser import GOOD, INI


@pytest.fixture
def env(tmp_path):
    ini = tmp_path / "h.ini"
    ini.write_text(INI.format(dir=tmp_path), encoding="utf-8")
    config = load(ini, {"ivr": ivr.config, "prompts": prompts.config, "console": console.config},
                  secrets=False, only_these_rooms=True)
    db = InlineDatabase(f"sqlite:///{tmp_path / 'c.db'}", Clock())
    db.create_all()
    clock = Clock()
    clock.advance(1_800_000_000)
    for name, role, center in (("prov", "province", None), ("njadmin", "center", "nj"),
                               ("aud", "auditor", None)):
        db.run_sync(accounts.add, name, role, center, GOOD, clock.seconds(), "test",
                    list(config.centers))
    site = Console(config, db, clock)
    PromptPages(site, clock).mount()
    ReportPages(site).mount()
    SearchPages(site).mount()
    site.sms_templates = TemplateSet({"nj": "南京公积金", "sz": "苏州公积金"})
    TemplatePages(site, site.sms_templates).mount()
    OptOutPages(site).mount()
    DoorPages(site, site.sms_templates).mount()
    UserPages(site).mount()
    yield site, db, clock
    db.engine.dispose()
