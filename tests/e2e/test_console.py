"""The console in a real browser against the whole platform: Debian's chromium driven by
Selenium, the daemon with Asterisk 22 and sipp callers (sandbox/stack.py).

One stack serves the module (two centers on one demo core, SMS on); each test says what it
pins.
Screenshots go to the run's log folder (``screenshots/``)."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.sipp import Keys, Pause, SippCall
from sandbox.stack import Stack
from tests.support.run_logs import LOG_DIR
from tests.support.ami_events import AgiCommands
from tests.support.browser import shot, start_browser, wait_text

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "console-e2e-pass"
DOOR_SECRET_ENV, DOOR_SECRET = "DOOR_CITY_LOANS", "console-e2e-door-secret"
SHOTS = LOG_DIR / "screenshots"
NORTH = """
[center:north]
name = 北区住房公积金管理中心
signature = 北区公积金
core = embedded
core_db = {core_db}
dnid = 12329001
"""


@pytest.fixture(scope="module")
def stack(asterisk_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    logs = LOG_DIR / "console-e2e"
    logs.mkdir(parents=True, exist_ok=True)
    state = tmp / "state"
    with pytest.MonkeyPatch.context() as env_patch:
        env_patch.setenv(DOOR_SECRET_ENV, DOOR_SECRET)  # the daemon reads it at its start
        # Every test logs in, some several times: at the default 10 logins a minute from
        # one address a fast run is refused with 429 (that limit has its own test in
        # tests/integration/console/test_web.py).
        with Stack(state, logs, persons=300, shared_core_centers=("north",),
                   extra_ini=NORTH.format(core_db=state / "core-demo.db"),
                   console_logins=120) as stack:
            env = dict(stack.env, CONSOLE_PW=PASSWORD)
            for name, role, center in (("admin", "province", None),
                                       ("demoadmin", "center", "demo"),
                                       ("locky", "center", "north"), ("aud", "auditor", None)):
                args = ["console", "adduser", "-c", str(stack.config_path), name, "--role",
                        role, "--password-env", "CONSOLE_PW"] + (
                    ["--center", center] if center else [])
                done = subprocess.run([sys.executable, str(REPO / "daemon.py"), *args],
                                      cwd=REPO, env=env, capture_output=True, text=True,
                                      timeout=60)
                assert done.returncode == 0, done.stderr
            yield stack


@pytest.fixture
def browser():
    driver = start_browser()
    yield driver
    driver.quit()


def login(driver, stack, name, password=PASSWORD):
    from selenium.webdriver.common.by import By

    driver.get(stack.console_url + "/login")
    driver.find_element(By.ID, "username").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(  # the dashboard, or the form again with its message
        lambda d: d.find_elements(By.ID, "whoami") or d.find_elements(By.ID, "message"))


def text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def place_call(stack, keys: str, tail_ms: int = 4000) -> dict:
    """One sipp call to 12329 keying ``keys`` 2.5 s apart; the call's record once closed."""
    steps = []
    for key in keys:
        steps += [Pause(2500), Keys(key)]
    steps.append(Pause(tail_ms))
    started = time.time()
    workdir = stack.log_dir / f"sipp-{int(started * 1000)}"
    workdir.mkdir(parents=True)
    result = SippCall("127.0.0.1", stack.asterisk.sip_port, "12329", steps=steps, hangup="bye",
                      caller="02584001234", timeout_s=60, workdir=workdir,
                      send_silence=True).run()
    assert result.ok, result.errors[-300:]
    deadline = time.time() + 15
    while time.time() < deadline:
        with sqlite3.connect(stack.state_dir / "hotline.db") as db:
            row = db.execute("SELECT path, outcome, ended_at, center FROM ivr_call "
                             "WHERE started_at >= ? ORDER BY id DESC LIMIT 1",
                             (started - 1,)).fetchone()
        if row and row[2]:
            return {"path": row[0].split(), "outcome": row[1], "center": row[3]}
        time.sleep(0.3)
    raise AssertionError("no closed call record")


def test_login_and_the_dashboard_shows_a_call_made_now(stack, browser):
    """The provincial administrator logs in and sees both centers; a call placed during the
    test appears in today's calls of its center."""
    from selenium.webdriver.common.by import By

    login(browser, stack, "admin")
    assert "监控面板" in text(browser) and "北区住房公积金管理中心" in text(browser)
    before = int(browser.find_element(By.CSS_SELECTOR, "#center-demo .calls").text)
    record = place_call(stack, "1")
    assert record["center"] == "demo"
    browser.get(stack.console_url + "/")
    after = int(browser.find_element(By.CSS_SELECTOR, "#center-demo .calls").text)
    assert after == before + 1
    assert "ami" in browser.find_element(By.ID, "links").text
    shot(browser, SHOTS, "dashboard")


def test_wrong_passwords_lock_the_account(stack, browser):
    """Five wrong passwords lock the account; the right one is then refused too."""
    for i in range(5):
        login(browser, stack, "locky", f"wrong-password-{i}")
    assert "账户已锁定" in text(browser)
    login(browser, stack, "locky")
    assert "账户已锁定" in text(browser)
    shot(browser, SHOTS, "locked")


def test_center_admin_cannot_see_another_center(stack, browser):
    """A center administrator sees the own center only, and a URL naming another is refused."""
    login(browser, stack, "demoadmin")
    body = text(browser)
    assert "示例市住房公积金管理中心" in body and "北区住房公积金管理中心" not in body
    browser.get(stack.console_url + "/?center=north")
    assert "无权访问" in text(browser)
    browser.get(stack.console_url + "/audit")
    assert "无权访问" in text(browser)


def test_menu_item_switched_off_is_not_heard_on_the_next_call(stack, browser):
    """Switching the loan item off in the browser applies to the next real call at once:
    keying 2 no longer enters the loan menu. Switched back on, it does again."""
    from selenium.webdriver.common.by import By

    assert "loan" in place_call(stack, "12")["path"]
    login(browser, stack, "demoadmin")
    browser.get(stack.console_url + "/menus")
    browser.find_element(By.ID, "toggle-demo-loan").click()
    assert wait_text(browser, By.ID, "toggle-demo-loan", lambda t: t == "开启") == "开启"
    shot(browser, SHOTS, "menus")
    assert "loan" not in place_call(stack, "12")["path"]
    browser.find_element(By.ID, "toggle-demo-loan").click()
    assert "loan" in place_call(stack, "12")["path"]


def test_forged_csrf_post_is_refused(stack, browser):
    """A form posted with a token that is not the session's is refused and changes nothing."""
    login(browser, stack, "demoadmin")
    browser.get(stack.console_url + "/menus")
    browser.execute_script("""
        const f = document.createElement('form');
        f.method = 'post'; f.action = '/menus';
        for (const [k, v] of [['csrf', 'forged'], ['center', 'demo'], ['node', 'policy'],
                              ['enabled', '0']]) {
          const i = document.createElement('input');
          i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
        }
        document.body.appendChild(f); f.submit();""")
    time.sleep(0.5)
    assert "表单已失效" in text(browser)
    from selenium.webdriver.common.by import By

    browser.get(stack.console_url + "/menus")
    assert browser.find_element(By.ID, "toggle-demo-policy").text == "关闭"  # still on


def test_uploaded_prompt_is_what_the_next_call_plays(stack, browser, tmp_path):
    """An MP3 uploaded in the browser goes through the import pipeline into a new version of
    the center's main menu prompt, and the next real call plays that file (Asterisk's
    AGIExecStart events)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    mp3 = tmp_path / "main-menu.mp3"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", "-ar", "44100", str(mp3)], check=True)
    login(browser, stack, "demoadmin")
    browser.get(stack.console_url + "/prompts?center=demo&lang=zh")
    Select(browser.find_element(By.ID, "upload-id")).select_by_value("ivr/main-menu")
    browser.find_element(By.ID, "upload-file").send_keys(str(mp3))
    browser.find_element(By.ID, "upload-submit").click()
    installed = wait_text(browser, By.CSS_SELECTOR, "#prompt-ivr-main-menu .installed",
                          lambda t: t == "v1")
    assert installed == "v1"
    shot(browser, SHOTS, "prompts")
    with AgiCommands(stack.asterisk) as agi:
        place_call(stack, "1")
    assert any("current/demo/zh/ivr/main-menu" in c for c in agi.commands), agi.commands[:5]


def test_readiness_and_metrics_reflect_the_links(stack):
    """/readyz is 200 with the database, the AMI link and the bind up; /metrics shows them,
    the IVR's reply times of a real call and the HTTP answers of each door."""
    import json
    import re
    import urllib.error
    import urllib.request

    place_call(stack, "1")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(stack.console_url + "/no-such-page", timeout=5)
    base = f"http://127.0.0.1:{stack.http_port}"
    with urllib.request.urlopen(base + "/readyz", timeout=5) as r:
        assert r.status == 200
        assert json.loads(r.read()) == {"ready": True, "checks": {
            "database": "ok", "ami": "ok", "smpp": "ok"}}
    with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
        metrics = r.read().decode()
    ami = f'hotline_link_up{{kind="ami",name="127.0.0.1:{stack.asterisk.ami_port}",state="up"}}'
    assert ami + " 1.0" in metrics
    assert 'hotline_link_up{kind="smpp",name="local/local-0",state="bound"} 1.0' in metrics
    assert 'hotline_calls_24h{center="demo"' in metrics
    replies = re.search(r"^hotline_ivr_reply_seconds_count (\S+)$", metrics, re.M)
    assert replies and float(replies.group(1)) >= 1  # the menu after the language menu
    assert 'hotline_http_responses_total{code="2xx",listener="api"}' in metrics  # /readyz
    assert 'hotline_http_responses_total{code="4xx",listener="console"}' in metrics


def fetch_text(driver, url: str) -> str:
    """GET ``url`` with the browser's session (a download, read as text)."""
    return driver.execute_async_script(
        "fetch(arguments[0]).then(r => r.text()).then(arguments[1])", url)


def test_report_csv_equals_the_database(stack, browser):
    """The daily hotline report's CSV for the demo center equals the call records' figures."""
    import csv
    import io

    login(browser, stack, "admin")
    body = fetch_text(browser, stack.console_url + "/reports?kind=calls&by=day&center=demo"
                      "&first=2000-01-01&last=2100-01-01&format=csv")
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))[1:]
    with sqlite3.connect(stack.state_dir / "hotline.db") as db:
        calls = db.execute("SELECT outcome FROM ivr_call WHERE center = 'demo' AND "
                           "ended_at IS NOT NULL").fetchall()
    outcomes = [o for (o,) in calls]
    assert len(rows) == 1 and rows[0][1] == "demo"
    assert [int(v) for v in rows[0][2:6]] == [
        len(outcomes), outcomes.count("ivr_handled"), outcomes.count("transferred"),
        outcomes.count("abandoned")]
    browser.get(stack.console_url + "/reports?kind=calls&by=day&first=2000-01-01"
                "&last=2100-01-01")
    shot(browser, SHOTS, "reports")


def test_template_edited_by_one_published_by_another_is_the_next_sms(stack, browser):
    """The center administrator edits the deposit alert; the provincial administrator
    publishes it; the next deposit's SMS carries the new text."""
    from selenium.webdriver.common.by import By

    from core_client.demo_data import demo_identities
    from sandbox.stack import credit_deposit

    new = "{signature}【控制台测试】尾号{account}于{date}入账{amount}元，余额{balance}元。"
    login(browser, stack, "demoadmin")
    browser.get(stack.console_url + "/templates?center=demo")
    browser.find_element(By.CSS_SELECTOR, "#template-deposit_credited summary").click()
    area = browser.find_element(By.ID, "text-deposit_credited")
    area.clear()
    area.send_keys(new)
    browser.find_element(By.ID, "save-deposit_credited").click()
    assert "控制台测试" in wait_text(browser, By.CSS_SELECTOR, "#template-deposit_credited .draft",
                                  lambda t: "控制台测试" in t)
    assert not browser.find_elements(By.ID, "publish-deposit_credited")  # not by its author
    browser.delete_all_cookies()
    login(browser, stack, "admin")
    browser.get(stack.console_url + "/templates?center=demo")
    browser.find_element(By.ID, "publish-deposit_credited").click()
    current = wait_text(browser, By.CSS_SELECTOR, "#template-deposit_credited .current",
                        lambda t: "控制台测试" in t)
    assert "控制台测试" in current
    shot(browser, SHOTS, "templates")
    since = time.time()
    credit_deposit(stack.core_db, demo_identities()[1].account_no)
    deadline = time.time() + 30
    text = None
    while time.time() < deadline and text is None:
        with sqlite3.connect(stack.state_dir / "hotline.db") as db:
            row = db.execute("SELECT text FROM sms_message WHERE center = 'demo' AND "
                             "template = 'deposit_credited' AND created_at >= ?",
                             (since - 1,)).fetchone()
        text = row[0] if row else None
        time.sleep(0.5)
    assert text is not None and text.startswith("【示例公积金】【控制台测试】尾号")


def door_batch(stack, items: list[dict]) -> tuple[int, dict]:
    """POST a batch to the SMS door's REST API with the client's bearer secret."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.http_port}/v1/messages/batch",
        data=json.dumps({"messages": items}).encode(), method="POST",
        headers={"content-type": "application/json",
                 "authorization": f"Bearer {DOOR_SECRET}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_door_client_added_in_the_browser_sends_and_its_refusals_are_reported(stack, browser):
    """The provincial administrator adds a door client in the browser and limits it to one
    template and a daily quota of 2; the daemon takes it within seconds: a batch from it is
    accepted or refused by those rules, and the report of SMS filtered by reason (and its
    CSV) shows each refusal as the door counted it, as does the dashboard. Disabled in the
    browser, the client can no longer send."""
    import csv
    import io

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    login(browser, stack, "admin")
    browser.get(stack.console_url + "/door")
    browser.find_element(By.ID, "new-name").send_keys("city-loans")
    Select(browser.find_element(By.ID, "new-center")).select_by_value("demo")
    browser.find_element(By.ID, "new-secret_env").send_keys(DOOR_SECRET_ENV)
    quota = browser.find_element(By.ID, "new-daily_quota")
    quota.clear()
    quota.send_keys("2")
    browser.find_element(By.ID, "add-client-submit").click()
    assert wait_text(browser, By.ID, "client-name", lambda t: t == "city-loans") == "city-loans"
    assert "$" + DOOR_SECRET_ENV in browser.find_element(By.ID, "secret-howto").text
    assert DOOR_SECRET not in text(browser)
    templates = browser.find_element(By.ID, "templates")
    templates.clear()
    templates.send_keys("deposit_credited")
    save = browser.find_element(By.ID, "save-client")
    save.click()
    # The save is committed once its answer replaced the page: only then does the
    # daemon's next reload (within 5 s) see it, so the wait starts there.
    WebDriverWait(browser, 15).until(staleness_of(save))
    assert browser.find_element(By.ID, "templates").get_attribute("value") == "deposit_credited"
    shot(browser, SHOTS, "door-client")
    deposit = {"template": "deposit_credited",
               "params": {"account": "1234", "date": "2026-11-30", "amount": "10",
                          "balance": "20"}}
    mobiles = ["139" + f"{n:08d}" for n in (71, 72, 73, 74)]
    items = [{"to": mobiles[0], **deposit}, {"to": "1390000", **deposit},
             {"to": mobiles[1], "template": "loan_settled", "params": {}},
             {"to": mobiles[0], **deposit}, {"to": mobiles[2], **deposit},
             {"to": mobiles[3], **deposit}]
    time.sleep(5.5)  # the daemon reloads its clients within 5 s (sms.door.clients)
    status, answer = door_batch(stack, items)
    assert status == 200, answer
    reasons = [r.get("reason") for r in answer["results"]]
    assert reasons == [None, "invalid_number", "template_not_enabled", "duplicate", None,
                       "quota_exceeded"]
    body = fetch_text(browser, stack.console_url + "/reports?kind=filtered&by=day&center=demo"
                      "&first=2000-01-01&last=2100-01-01&detail=1&format=csv")
    rows = [r for r in csv.DictReader(io.StringIO(body.lstrip("\ufeff")))
            if r["接入方 client"] == "city-loans"]
    with sqlite3.connect(stack.state_dir / "hotline.db") as db:
        tallies = dict(db.execute("SELECT what, sum(n) FROM door_tally WHERE client = "
                                  "'city-loans' GROUP BY what").fetchall())
    assert sum(int(r["推送 pushed"]) for r in rows) == tallies["pushed"] == 6
    for column, reason in (("号头不正确 invalid number", "invalid_number"),
                           ("模板未开通 template not enabled", "template_not_enabled"),
                           ("重复 duplicate", "duplicate"), ("超出日配额 quota", "quota_exceeded")):
        assert sum(int(r[column]) for r in rows) == tallies[reason] == 1, reason
    browser.get(stack.console_url + "/reports?kind=filtered&by=day&first=2000-01-01"
                "&last=2100-01-01&detail=1")
    assert "city-loans" in browser.find_element(By.ID, "report").text
    shot(browser, SHOTS, "sms-filtered")
    browser.get(stack.console_url + "/")
    dashboard = browser.find_element(By.ID, "filtered-demo").text
    assert "重复 duplicate" in dashboard and "超出日配额 quota" in dashboard
    browser.get(stack.console_url + "/door/client?name=city-loans")
    browser.find_element(By.ID, "disable-client").click()
    assert wait_text(browser, By.ID, "client-state", lambda t: t == "关闭") == "关闭"
    deadline = time.time() + 15
    while door_batch(stack, items[:1])[0] != 403 and time.time() < deadline:
        time.sleep(1)
    status, answer = door_batch(stack, items[:1])
    assert (status, answer.get("error")) == (403, "client_disabled")


def test_audit_log_verifies_then_fails_after_a_direct_edit(stack, browser):
    """The auditor reads the audit log of this run; `hotline audit verify` passes on it and
    fails once a row is edited directly in the database."""
    login(browser, stack, "aud")
    browser.get(stack.console_url + "/audit")
    assert "哈希链完整" in text(browser) and "menu.switch" in text(browser)
    assert "prompt.import" in text(browser) and "sms_template.publish" in text(browser)
    assert "door.client_change" in text(browser)
    shot(browser, SHOTS, "audit")
    browser.get(stack.console_url + "/")
    shot(browser, SHOTS, "dashboard-end")  # the day's calls and SMS of the whole run
    verify = [sys.executable, str(REPO / "daemon.py"), "audit", "verify", "-c",
              str(stack.config_path)]
    ok = subprocess.run(verify, cwd=REPO, env=stack.env, capture_output=True, text=True)
    assert ok.returncode == 0 and "chain intact" in ok.stdout
    with sqlite3.connect(stack.state_dir / "hotline.db") as db:
        db.execute("UPDATE console_audit SET who = 'intruder' WHERE id = 2")
    bad = subprocess.run(verify, cwd=REPO, env=stack.env, capture_output=True, text=True)
    assert bad.returncode == 1 and "FAIL row 2 was changed" in bad.stdout
    browser.get(stack.console_url + "/audit")
    assert "哈希链异常" in text(browser)
