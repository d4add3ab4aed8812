"""The console over HTTP, in memory (treq's StubTreq, an injected Clock, an inline database):
login and lockout, cookies, idle timeout, CSRF, roles and centers, menu switches, audit."""
import re

from twisted.internet.defer import Deferred

from console import audit
from tests.support.console_browser import GOOD, Browser


def test_pages_need_a_session(env):
    """Without a session every page sends the browser to the login form."""
    b = Browser(env[0])
    code, response, _ = b.get("/")
    assert code == 303 and response.headers.getRawHeaders(b"location") == [b"/login"]


def test_login_sets_a_strict_httponly_cookie_and_shows_the_dashboard(env):
    """A right password opens a session whose cookie is HttpOnly and SameSite=Strict."""
    b = Browser(env[0])
    code, response, body = b.login("prov")
    assert code == 303
    cookie = response.headers.getRawHeaders(b"set-cookie")[0].decode()
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    code, _, body = b.get("/")
    assert code == 200 and "监控面板" in body and "南京住房公积金管理中心" in body
    assert "苏州住房公积金管理中心" in body


def test_wrong_passwords_lock_the_account(env):
    """The third wrong password locks the account: then even the right one is refused."""
    b = Browser(env[0])
    assert b.login("prov", "wrong-one")[0] == 403
    assert b.login("prov", "wrong-two")[0] == 403
    code, _, body = b.login("prov", "wrong-three")
    assert code == 403 and "账户已锁定" in body
    code, _, body = b.login("prov")
    assert code == 403 and "账户已锁定" in body


def test_idle_session_expires(env):
    site, _db, clock = env
    b = Browser(site)
    b.login("prov")
    clock.advance(9 * 60)
    assert b.get("/")[0] == 200
    clock.advance(11 * 60)
    assert b.get("/")[0] == 303


def test_center_admin_cannot_see_another_center(env):
    """A center administrator sees only the own center, on the dashboard and by URL."""
    b = Browser(env[0])
    b.login("njadmin")
    code, _, body = b.get("/")
    assert "南京住房公积金管理中心" in body and "苏州住房公积金管理中心" not in body
    assert b.get("/?center=sz")[0] == 403
    assert b.get("/menus?center=sz")[0] == 403
    assert b.post("/menus", {"center": "sz", "node": "loan", "enabled": "0"})[0] == 403
    assert b.get("/audit")[0] == 403


def test_menu_switch_needs_csrf_and_is_audited(env):
    """A form without the session's CSRF token is refused; with it the switch is stored
    and audited with old and new state."""
    site, db, _clock = env
    b = Browser(site)
    b.login("njadmin")
    b.get("/menus")
    assert b.post("/menus", {"center": "nj", "node": "loan", "enabled": "0"}, csrf=False)[0] == 403
    forged = b.post("/menus", {"center": "nj", "node": "loan", "enabled": "0",
                               "csrf": "forged"}, csrf=False)
    assert forged[0] == 403
    from console.menus import switches

    assert db.run_sync(switches, ["nj"]) == {"nj": {}}
    code, _, _ = b.post("/menus", {"center": "nj", "node": "loan", "enabled": "0"})
    assert code == 303
    _, _, body = b.get("/menus")
    assert 'id="toggle-nj-loan">开启' in body
    entry = db.run_sync(audit.recent)[0]
    assert (entry.who, entry.action, entry.old, entry.new) == (
        "njadmin", "menu.switch", '{"days": null, "enabled": true, "hours": null}',
        '{"days": null, "enabled": false, "hours": null}')


def test_menu_item_hours_reach_the_ivr(env):
    """Service hours set for an item are what the IVR's switch reader hands each call; a bad
    window is refused and nothing is stored."""
    import datetime as dt

    from console.menus import MenuBook, SwitchReader

    site, db, clock = env
    b = Browser(site)
    b.login("njadmin")
    b.get("/menus")
    assert b.post("/menus", {"center": "nj", "node": "agent", "hours": "25:00-26:00",
                             "days": "1"})[0] == 400
    assert b.post("/menus", {"center": "nj", "node": "agent", "hours": "09:00-12:00",
                             "days": "1,2"})[0] == 303
    out = []
    Deferred.fromCoroutine(SwitchReader(db, MenuBook(site.config), clock)("nj")).addCallback(
        out.append)
    switch = out[0]["agent"]
    assert switch.enabled is True
    monday_10 = dt.datetime(2026, 11, 30, 10, 0)
    assert switch.hours.contains(monday_10)
    assert not switch.hours.contains(monday_10.replace(hour=13))
    assert not switch.hours.contains(dt.datetime(2026, 12, 2, 10, 0))  # a Wednesday


def test_auditor_reads_the_audit_log_but_changes_nothing(env):
    b = Browser(env[0])
    b.login("aud")
    code, _, body = b.get("/audit")
    assert code == 200 and "哈希链完整" in body and "session.login" in body
    b.get("/menus")
    assert b.post("/menus", {"center": "nj", "node": "loan", "enabled": "0"})[0] == 403


def test_english_on_request(env):
    b = Browser(env[0])
    b.get("/lang?to=en")
    code, _, body = b.get("/login")
    assert "Log in" in body


def test_logout_ends_the_session(env):
    b = Browser(env[0])
    b.login("prov")
    b.get("/")
    assert b.post("/logout", {})[0] == 303
    assert b.get("/")[0] == 303


def test_rate_limit_per_peer(env):
    """Login attempts beyond the per-minute limit of one address are refused (429)."""
    site, _db, _clock = env
    b = Browser(site)
    codes = [b.login("nobody", "x")[0] for _ in range(52)]
    assert codes[:50] == [403] * 50 and codes[50:] == [429, 429]


def test_prompt_library_page_lists_the_catalog(env):
    """The prompt page lists every catalog prompt with its text; a center administrator may
    not open another center's prompts."""
    b = Browser(env[0])
    b.login("njadmin")
    code, _, body = b.get("/prompts")
    assert code == 200 and "ivr/main-menu" in body and 'enctype="multipart/form-data"' in body
    assert b.get("/prompts?center=sz")[0] == 403
    assert b.post("/prompts/upload?center=sz&lang=zh", {"id": "ivr/main-menu"})[0] == 403


def test_auditor_may_not_upload(env):
    b = Browser(env[0])
    b.login("aud")
    b.get("/prompts?center=nj")
    assert b.post("/prompts/rollback?center=nj&lang=zh", {"id": "ivr/main-menu"})[0] == 403


def test_report_csv_and_center_scoping(env):
    """The report page offers CSV of the rollups; a center administrator gets only the own
    center, and asking for another is refused."""
    site, db, _clock = env
    from console.rollup import CallRollup

    from ivr.records import CallRecord

    add = CallRollup({"nj": "Asia/Shanghai", "sz": "Asia/Shanghai"})
    for center, outcome, survey in (("nj", "ivr_handled", 1), ("sz", "abandoned", None)):
        record = CallRecord.start(instance="i", center=center, uniqueid=center,
                                  caller_id="02584001234", dnid="12329", language="zh",
                                  now=1_799_990_000.0)
        record.survey = survey
        record.key("main", "1")
        db.run_sync(add, record, 1_799_990_060.0, outcome)
    b = Browser(site)
    b.login("njadmin")
    code, response, body = b.get("/reports?kind=calls&by=day&first=2027-01-01&last=2027-01-31"
                                 "&format=csv")
    assert code == 200 and response.headers.getRawHeaders(b"content-type")[0].startswith(
        b"text/csv")
    lines = body.lstrip("\ufeff").splitlines()
    assert lines[1] == "2027-01-15,nj,1,1,0,0,0,0,0,0,0,,0.0,60.0,1.0" and len(lines) == 2
    assert b.get("/reports?center=sz")[0] == 403
    code, _, body = b.get("/reports?first=2027-01-01&last=2027-01-31")
    assert code == 200 and "自助完成" in body
    code, _, body = b.get("/reports?kind=keys&first=2027-01-01&last=2027-01-31&format=csv")
    assert body.lstrip("\ufeff").splitlines()[1] == "2027-01-01..2027-01-31,nj,main,1,1"


MOBILE = "139" + "00001234"  # synthetic; written split so no whole number sits in the source


def _sms(db, clock, center):
    from sqlalchemy import insert

    from sms.outbox.sql import M

    now = clock.seconds()
    db.run_sync(lambda s: s.execute(insert(M), [dict(
        center=center, klass="transaction", priority=20, template="deposit_credited",
        params="{}", text="【南京公积金】您尾号0002的账户入账。", sensitive=0, destination=MOBILE,
        idem_key=f"k{center}", part_count=1, state="delivered", attempts=1,
        possible_duplicates=0, next_attempt_at=now, valid_until=now + 86400, smsc="cmcc",
        created_at=now - 60, submitted_at=now - 59, final_at=now - 50)]))


def test_sms_search_masks_numbers_and_audits_full_views(env):
    """Destinations are masked; a provincial administrator may see them whole, and that view
    is audited; a center administrator never can, nor see another center's messages."""
    site, db, clock = env
    _sms(db, clock, "nj")
    _sms(db, clock, "sz")
    b = Browser(site)
    b.login("njadmin")
    code, _, body = b.get("/sms?full=1")
    assert code == 200 and "139****1234" in body and MOBILE not in body
    assert body.count('class="mobile"') == 1
    assert b.get("/sms?center=sz")[0] == 403
    p = Browser(site)
    p.login("prov")
    code, _, body = p.get("/sms")
    assert body.count('class="mobile"') == 2 and MOBILE not in body
    code, _, body = p.get("/sms?full=1")
    assert body.count(MOBILE) == 2 and "139****1234" not in body
    entry = db.run_sync(audit.recent)[0]
    assert (entry.who, entry.action) == ("prov", "sms.view_full_numbers")
    assert MOBILE not in (entry.new or "")


def test_call_search_shows_masked_callers(env):
    site, db, clock = env
    from ivr.tables import IvrCall

    db.run_sync(lambda s: s.add(IvrCall(
        instance="i", center="nj", uniqueid="u1", caller="025****1234", dnid="12329",
        language="zh", started_at=clock.seconds() - 100, ended_at=clock.seconds() - 40,
        path="language zh main", keys="", identified=0, served=0, outcome="abandoned")))
    b = Browser(site)
    b.login("njadmin")
    code, _, body = b.get("/calls")
    assert code == 200 and "025****1234" in body and "language zh main" in body


NEW_TEXT = "{signature}尾号{account}的账户{date}入账{amount}元，余额{balance}元。"
PARAMS = {"account": "1234", "date": "2026-11-30", "amount": "10", "balance": "20"}


def test_template_edited_by_one_published_by_another(env):
    """A center administrator's edit waits as a draft; its author cannot publish it; a second
    administrator publishes it and the running TemplateSet renders the new text at once."""
    site, db, _clock = env
    templates = site.sms_templates
    editor = Browser(site)
    editor.login("njadmin")
    editor.get("/templates")
    assert editor.post("/templates/edit?center=nj", {"name": "deposit_credited",
                                                     "text": NEW_TEXT})[0] == 303
    assert "尾号1234的账户" not in templates.render("nj", "deposit_credited", PARAMS).text
    code, _, body = editor.post("/templates/publish?center=nj", {"name": "deposit_credited"})
    assert "another administrator" in body
    reviewer = Browser(site)
    reviewer.login("prov")
    code, _, body = reviewer.get("/templates?center=nj")
    assert 'id="publish-deposit_credited"' in body
    assert reviewer.post("/templates/publish?center=nj", {"name": "deposit_credited"})[0] == 303
    text = templates.render("nj", "deposit_credited", PARAMS).text
    assert text == "【南京公积金】尾号1234的账户2026-11-30入账10.00元，余额20.00元。"
    assert "尾号1234的账户" not in templates.render("sz", "deposit_credited", PARAMS).text
    actions = [e.action for e in db.run_sync(audit.recent)][:2]
    assert actions == ["sms_template.publish", "session.login"]


def test_template_draft_must_keep_the_placeholders(env):
    site, _db, _clock = env
    b = Browser(site)
    b.login("njadmin")
    b.get("/templates")
    code, _, body = b.post("/templates/edit?center=nj", {"name": "deposit_credited",
                                                         "text": "{signature}余额{balance}"})
    assert code == 200 and "must start with" in body


def test_opt_out_list_masked_and_audited(env):
    """An administrator adds a number to the center's opt-out list; it is listed masked, the
    change audited with the masked number, and removing it is audited too."""
    site, db, _clock = env
    b = Browser(site)
    b.login("njadmin")
    b.get("/optout")
    assert b.post("/optout?center=nj", {"mobile": MOBILE})[0] == 303
    code, _, body = b.get("/optout")
    assert "139****1234" in body and MOBILE not in body
    entry = db.run_sync(audit.recent)[0]
    assert (entry.action, entry.target) == ("sms.opt_out", "optout:nj:139****1234")
    row_id = re.search(r'name="remove" value="(\d+)"', body).group(1)
    assert b.post("/optout?center=nj", {"remove": row_id})[0] == 303
    assert "139****1234" not in b.get("/optout")[2]
    assert db.run_sync(audit.recent)[0].action == "sms.opt_in"
    assert b.post("/optout?center=sz", {"mobile": MOBILE})[0] == 403


def test_holiday_closes_the_agents_for_the_ivr(env):
    """A holiday added for a center closes its agent item (and items with hours) in what the
    IVR's switch reader hands calls on that day, not on other days."""
    import datetime as dt

    from console.menus import CLOSED, MenuBook, SwitchReader

    site, db, clock = env
    b = Browser(site)
    b.login("njadmin")
    b.get("/menus")
    today = dt.datetime.fromtimestamp(clock.seconds(), dt.timezone(dt.timedelta(hours=8)))
    assert b.post("/menus/holiday", {"center": "nj", "day": today.date().isoformat(),
                                     "name": "测试假日"})[0] == 303
    assert "测试假日" in b.get("/menus")[2]
    reader = SwitchReader(db, MenuBook(site.config), clock)
    out = []
    Deferred.fromCoroutine(reader("nj")).addCallback(out.append)
    assert out[0]["agent"].hours == CLOSED and "deposit" not in out[0]
    Deferred.fromCoroutine(reader("sz")).addCallback(out.append)
    assert out[1] == {}
    assert db.run_sync(audit.recent)[0].action == "menu.holiday_add"


def test_provincial_admin_manages_accounts(env):
    """A provincial administrator adds a center administrator, unlocks a locked account and
    disables one (its open session ends); others may not open the page."""
    site, db, _clock = env
    center_admin = Browser(site)
    center_admin.login("njadmin")
    assert center_admin.get("/users")[0] == 403
    for i in range(3):
        Browser(site).login("aud", f"wrong-{i}")
    b = Browser(site)
    b.login("prov")
    code, _, body = b.get("/users")
    assert code == 200 and 'id="unlock-aud"' in body
    assert b.post("/users", {"action": "add", "name": "szadmin", "role": "center",
                             "center": "sz", "password": GOOD})[0] == 303
    assert b.post("/users", {"action": "unlock", "name": "aud"})[0] == 303
    assert Browser(site).login("aud")[0] == 303
    assert b.post("/users", {"action": "disable", "name": "njadmin"})[0] == 303
    assert center_admin.get("/")[0] == 303  # its session ended
    assert Browser(site).login("njadmin")[0] == 403
    assert b.post("/users", {"action": "disable", "name": "prov"})[0] == 400
    actions = [e.action for e in db.run_sync(audit.recent)]
    assert {"account.add", "account.unlock", "account.disable"} <= set(actions)
