"""The demo core generator: valid, realistic, deterministic synthetic data."""
from __future__ import annotations

import hashlib
import sqlite3

from hypothesis import given, strategies as st

from core_client import demo_data, idnumber


def test_check_digit_known_examples():
    """GB 11643 check digits, including the X case, match the standard's worked example."""
    assert idnumber.check_digit("11010519491231002") == "X"
    assert idnumber.is_valid("11010519491231002X")
    assert idnumber.is_valid("11010519491231002*")  # keypad star stands for X
    assert not idnumber.is_valid("110105194912310021")
    assert not idnumber.is_valid("110105194913310028")  # month 13


@given(st.text(alphabet="0123456789", min_size=17, max_size=17).filter(lambda s: s[0] != "0"))
def test_a_single_changed_digit_is_always_caught(body):
    """Changing any one of the first 17 digits changes the check digit (typos are rejected)."""
    full = body + idnumber.check_digit(body)
    for pos in range(17):
        changed = body[:pos] + str((int(body[pos]) + 1) % 10) + body[pos + 1:]
        assert idnumber.check_digit(changed) != full[17]


def test_generated_persons_are_valid_and_unique(demo_path):
    """Every ID number is valid with a real area code, some end in X; mobiles are unique."""
    conn = sqlite3.connect(demo_path)
    ids = [r[0] for r in conn.execute("SELECT ZJHM FROM person")]
    mobiles = [r[0] for r in conn.execute("SELECT SJHM FROM person")]
    assert all(idnumber.is_valid(i) for i in ids)
    assert all(i[:6] in demo_data.AREAS for i in ids)
    assert any(i.endswith("X") for i in ids) and any(i[-1].isdigit() for i in ids)
    assert len(set(ids)) == len(ids) and len(set(mobiles)) == len(mobiles)
    assert all(len(m) == 11 and m.startswith("1") for m in mobiles)


def test_accounts_have_24_months_and_consistent_balances(demo_path):
    """Normal accounts have 24 monthly deposits; the last detail's balance is the account's."""
    conn = sqlite3.connect(demo_path)
    rows = conn.execute(
        "SELECT a.GRZH, a.GRZHYE, a.GRYJCE + a.DWYJCE, "
        "(SELECT count(*) FROM detail d WHERE d.GRZH = a.GRZH AND d.YWLX = 'deposit'), "
        "(SELECT YE FROM detail d WHERE d.GRZH = a.GRZH ORDER BY XH DESC LIMIT 1) "
        "FROM account a WHERE a.GRZHZT = 'normal'").fetchall()
    assert rows
    for _grzh, balance, monthly, deposits, last in rows:
        assert deposits == 24
        assert balance == last and monthly > 0


def test_journal_covers_every_event_kind_with_increasing_cursor(demo_path):
    """The journal holds the event kinds alerts need, in strictly increasing cursor order."""
    conn = sqlite3.connect(demo_path)
    kinds = {r[0] for r in conn.execute("SELECT DISTINCT kind FROM event")}
    assert {"deposit_credited", "interest_credited", "repayment_due", "repayment_posted",
            "loan_settled"} <= kinds
    cursors = [r[0] for r in conn.execute("SELECT cursor FROM event ORDER BY rowid")]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    statuses = {r[0] for r in conn.execute("SELECT DISTINCT DKZT FROM loan")}
    assert statuses == {"repaying", "settled"}
    assert conn.execute("SELECT count(*) FROM loan WHERE LJYQQS > 0").fetchone()[0] > 0


def test_passwords_are_stored_salted_and_hashed(demo_path):
    """No query password is stored in clear, and equal passwords get different hashes."""
    conn = sqlite3.connect(demo_path)
    hashes = [r[0] for r in conn.execute("SELECT CXMM FROM account")]
    assert all(h.startswith("pbkdf2_sha256$") for h in hashes)
    assert len(set(hashes)) == len(hashes)
    assert all(demo_data.DEMO_PASSWORD not in h for h in hashes)
    assert demo_data.check_password(demo_data.DEMO_PASSWORD, hashes[0])
    assert not demo_data.check_password("654321", hashes[0])


def test_generation_is_deterministic(tmp_path):
    """The same seed and size produce a byte-identical database."""
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    demo_data.generate(a, 50)
    demo_data.generate(b, 50)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_demo_identities_match_the_database_and_their_profiles(demo_path):
    """Each documented identity exists in a generated database with the promised traits."""
    conn = sqlite3.connect(demo_path)
    idents = demo_data.demo_identities()
    assert idents[0].id_number.endswith("X") and idents[1].id_number[-1].isdigit()
    assert {i.loan for i in idents} >= {"repaying", "overdue", "settled"}
    assert any(i.locked for i in idents)
    for ident in idents:
        row = conn.execute("SELECT p.ZJHM, p.SJHM, a.GRZHZT FROM person p JOIN account a "
                           "ON a.person_id = p.id WHERE a.GRZH = ?", (ident.account_no,)).fetchone()
        assert row == (ident.id_number, ident.mobile, ident.status)


def test_demo_identities_document_is_current():
    """DEMO_IDENTITIES.md lists exactly what demo_identities() returns for the default seed."""
    from pathlib import Path

    from core_client.cli import identities_markdown

    doc = Path(demo_data.__file__).with_name("DEMO_IDENTITIES.md").read_text(encoding="utf-8")
    assert identities_markdown() in doc
