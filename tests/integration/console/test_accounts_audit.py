"""Console accounts (roles, lockout counted in the row) and the hash-chained audit log."""
import subprocess
import sys

import pytest
import sqlalchemy as sa

from console import accounts, audit
from console.accounts import Login
from console.tables import AuditEntry, ConsoleUser
from storage.db import Database

CENTERS = ["nj", "sz"]
GOOD = "correct horse battery"


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'c.db'}", reactor=None, threads=1)
    db.create_all()
    yield db
    db.engine.dispose()


def test_add_hashes_the_password_and_audits(db):
    """The password is kept only as a scrypt hash; creating the account is audited."""
    db.run_sync(accounts.add, "zhang", "center", "nj", GOOD, 100.0, "cli:root", CENTERS)
    row = db.run_sync(lambda s: s.get(ConsoleUser, "zhang").password_hash)
    assert row.startswith("scrypt$") and GOOD not in row
    entries = db.run_sync(audit.recent)
    assert [(e.action, e.who, e.center) for e in entries] == [("account.add", "cli:root", "nj")]


@pytest.mark.parametrize("role, center, problem", [
    ("center", None, "needs one of the centers"),
    ("center", "xx", "needs one of the centers"),
    ("boss", None, "role must be"),
])
def test_add_refuses_bad_accounts(db, role, center, problem):
    """A center administrator needs a configured center; roles are a closed set."""
    with pytest.raises(accounts.AccountError, match=problem):
        db.run_sync(accounts.add, "li", role, center, GOOD, 1.0, "cli", CENTERS)


def test_short_password_refused(db):
    with pytest.raises(accounts.AccountError, match="at least"):
        db.run_sync(accounts.add, "li", "province", None, "short", 1.0, "cli", CENTERS)


def test_wrong_passwords_lock_then_lock_expires(db):
    """max_failures wrong passwords lock the account, even for the right one, until it expires."""
    db.run_sync(accounts.add, "wang", "province", None, GOOD, 0.0, "cli", CENTERS)
    assert db.run_sync(accounts.login, "wang", "nope", 10.0, 3, 60)[0] is Login.BAD
    assert db.run_sync(accounts.login, "wang", "nope", 11.0, 3, 60)[0] is Login.BAD
    assert db.run_sync(accounts.login, "wang", "nope", 12.0, 3, 60)[0] is Login.LOCKED
    assert db.run_sync(accounts.login, "wang", GOOD, 13.0, 3, 60)[0] is Login.LOCKED
    result, user = db.run_sync(accounts.login, "wang", GOOD, 73.0, 3, 60)
    assert result is Login.OK and user.role == "province"
    actions = [e.action for e in db.run_sync(audit.recent)]
    assert actions[:2] == ["session.login", "account.locked"]


def test_unknown_account_is_just_bad(db):
    assert db.run_sync(accounts.login, "ghost", GOOD, 1.0, 3, 60) == (Login.BAD, None)


def test_center_admin_sees_only_own_center():
    """Role scoping: center administrators and recorders see their center only."""
    assert accounts.User("a", "center", "nj").centers(CENTERS) == ["nj"]
    assert accounts.User("p", "province", None).centers(CENTERS) == CENTERS
    assert not accounts.User("a", "auditor", None).may_change


def test_verify_passes_then_detects_edit_and_delete(db):
    """The chain verifies; an edited row and a deleted row are each reported."""
    for i in range(5):
        db.run_sync(audit.append, "u", "x.change", f"t{i}", {"v": i}, {"v": i + 1}, float(i))
    assert db.run_sync(audit.verify).ok
    db.run_sync(lambda s: s.execute(sa.update(AuditEntry).where(AuditEntry.id == 2)
                                    .values(new='{"v": 99}')))
    verdict = db.run_sync(audit.verify)
    assert verdict.problems == ["row 2 was changed (digest does not match)"]
    db.run_sync(lambda s: s.execute(sa.update(AuditEntry).where(AuditEntry.id == 2)
                                    .values(new='{"v": 2}')))
    db.run_sync(lambda s: s.execute(sa.delete(AuditEntry).where(AuditEntry.id == 4)))
    assert db.run_sync(audit.verify).problems == [
        "rows 4..4 are missing", "row 5 was changed (digest does not match)"]


def test_cli_adduser_and_verify(tmp_path):
    """`hotline console adduser` creates the first administrator; `hotline audit verify`
    passes, and fails (exit 1) once a row is edited directly in the database."""
    ini = tmp_path / "h.ini"
    ini.write_text(f"[daemon]\nstate_dir = {tmp_path}\n[center:nj]\nname = 南京\nsignature = 南京公积金\n")
    env = {"PATH": "/usr/bin:/bin", "ADMIN_PW": GOOD, "USER": "tester"}

    def run(*args):
        return subprocess.run([sys.executable, "daemon.py", *args], capture_output=True,
                              text=True, env=env)
    assert run("db", "upgrade", "-c", str(ini)).returncode == 0
    r = run("console", "adduser", "-c", str(ini), "admin", "--password-env", "ADMIN_PW")
    assert r.returncode == 0, r.stderr
    assert "account admin created: province" in r.stdout
    r = run("console", "passwd", "-c", str(ini), "admin", "--password-env", "ADMIN_PW")
    assert r.returncode == 0 and "password set" in r.stdout
    r = run("console", "users", "-c", str(ini))
    assert r.stdout.split()[:3] == ["admin", "province", "-"]
    r = run("audit", "verify", "-c", str(ini))
    assert r.returncode == 0 and "2 rows, chain intact" in r.stdout
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'hotline.db'}")
    with engine.begin() as c:
        c.execute(sa.text("UPDATE console_audit SET who = 'someone else'"))
    engine.dispose()
    r = run("audit", "verify", "-c", str(ini))
    assert r.returncode == 1 and "FAIL row 1 was changed" in r.stdout
