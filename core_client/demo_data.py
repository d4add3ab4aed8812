"""The demo core database: deterministic synthetic persons, accounts, details, loans, events.

It stands in for a center's core business system, so it lives in its own SQLite
file, never in the platform database. Column names follow JGJ/T 320-2014
(XINGMING, ZJHM, SJHM, GRZH, GRZHYE, JZNY, DKZH, DKYE, ...). Amounts are stored
in fen (integers). Every person ``i`` draws from its own seeded RNG, so the same
seed always yields the same data and the first persons (the documented demo
identities) can be recomputed without opening the file.

Query passwords are the core's data, stored as salted PBKDF2 hashes whose work
factor is recorded with each hash: generated persons use a low factor so a
million of them can be generated in minutes; a password changed through the
core is re-hashed with ``CHANGED_PASSWORD_ITERATIONS``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from core_client.idnumber import check_digit

DEFAULT_SEED = 12329
DEFAULT_PERSONS = 10_000
DEMO_PASSWORD = "123456"
GENERATED_PASSWORD_ITERATIONS = 32
CHANGED_PASSWORD_ITERATIONS = 100_000
AS_OF = dt.date(2026, 6, 30)  # the demo core's "today": the month the annual interest is credited
MONTHS = 24
# 23:59 in the demo centers' zone, whatever zone the machine generating the core runs in
LOCKED_UNTIL = dt.datetime(2099, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=8)))
ANNUAL_LOAN_RATE = 0.031
ANNUAL_DEPOSIT_RATE = 0.015

# District codes of real prefectures (first six ID digits).
AREAS = (
    "110101", "110105", "120101", "210102", "230102", "310104", "310115", "320102",
    "330106", "340104", "350203", "350206", "360102", "370202", "370212", "410302",
    "410311", "411402", "411403", "420106", "430104", "440106", "440305", "450105",
    "500103", "510104", "510107", "530102", "530111", "610113",
)
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜"
            "叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶")
GIVEN_MALE = "伟强磊军勇杰涛斌超明刚平辉鹏华飞鑫波宇浩凯健俊帆帅旭宁龙林欢阳建国峰志文博"
GIVEN_FEMALE = "芳娜敏静丽艳娟霞燕玲婷雪慧颖琳倩洁晶红梅兰英萍莉华丹宁欣怡佳"
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                   "151", "152", "153", "155", "156", "157", "158", "159", "166", "173",
                   "177", "180", "181", "182", "183", "185", "186", "187", "188", "189",
                   "198", "199")
WITHDRAWAL_REASONS = ("购买自住住房", "租赁自住住房", "偿还购房贷款本息", "离退休", "大修自住住房")
RATES = (0.05, 0.08, 0.10, 0.12, 0.12, 0.12)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE person (
    id INTEGER PRIMARY KEY, XINGMING TEXT NOT NULL, ZJLX TEXT NOT NULL, ZJHM TEXT NOT NULL,
    SJHM TEXT NOT NULL, CSRQ TEXT NOT NULL, XINGBIE TEXT NOT NULL);
CREATE TABLE account (
    GRZH TEXT PRIMARY KEY, person_id INTEGER NOT NULL, GRJCJS INTEGER NOT NULL,
    GRZHZT TEXT NOT NULL, GRZHYE INTEGER NOT NULL, GRYJCE INTEGER NOT NULL,
    DWYJCE INTEGER NOT NULL, JZNY TEXT NOT NULL, CXMM TEXT NOT NULL,
    CXMM_CWCS INTEGER NOT NULL DEFAULT 0, SDJZSJ REAL) WITHOUT ROWID;
CREATE TABLE detail (
    GRZH TEXT NOT NULL, XH INTEGER NOT NULL, JZRQ TEXT NOT NULL, YWLX TEXT NOT NULL,
    FSE INTEGER NOT NULL, YE INTEGER NOT NULL, TQYY TEXT, YWLSH TEXT NOT NULL,
    PRIMARY KEY (GRZH, XH)) WITHOUT ROWID;
CREATE TABLE loan (
    DKZH TEXT PRIMARY KEY, GRZH TEXT NOT NULL, DKFFE INTEGER NOT NULL, DKYE INTEGER NOT NULL,
    DQYHJE INTEGER NOT NULL, YQBJZE INTEGER NOT NULL, LJYQQS INTEGER NOT NULL,
    DKQS INTEGER NOT NULL, HKR INTEGER NOT NULL, DKZT TEXT NOT NULL, FFRQ TEXT NOT NULL,
    JQRQ TEXT);
CREATE TABLE event (
    cursor INTEGER PRIMARY KEY, kind TEXT NOT NULL, GRZH TEXT NOT NULL,
    occurred_at TEXT NOT NULL, fields TEXT NOT NULL);
"""
INDEXES = """
CREATE UNIQUE INDEX ix_person_zjhm ON person (ZJHM);
CREATE UNIQUE INDEX ix_person_sjhm ON person (SJHM);
CREATE INDEX ix_account_person ON account (person_id);
CREATE INDEX ix_loan_grzh ON loan (GRZH);
"""


@dataclass(frozen=True)
class DemoIdentity:
    """A documented person for trying the hotline; the data is synthetic."""

    label: str
    account_no: str
    id_number: str
    name: str
    mobile: str
    password: str
    status: str
    loan: str | None  # repaying / overdue / settled / None
    locked: bool


# Fixed profiles for the first persons: what each documented identity demonstrates.
# (label, ID ends in X?, status, loan, locked)
PROFILES = (
    ("ID ending in X, repaying loan", True, "normal", "repaying", False),
    ("ID ending in a digit, no loan", False, "normal", None, False),
    ("overdue loan", False, "normal", "overdue", False),
    ("self-service locked in the core", False, "normal", None, True),
    ("settled loan", True, "normal", "settled", False),
    ("sealed account (deposits stopped)", False, "sealed", None, False),
)


def hash_password(password: str, salt: bytes, iterations: int) -> str:
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${dk.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check against a ``pbkdf2_sha256$iterations$salt$hash`` string."""
    scheme, iterations, salt, expected = stored.split("$")
    if scheme != "pbkdf2_sha256":
        raise ValueError(f"unknown password scheme {scheme!r}")
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(dk.hex(), expected)


def _months(as_of: dt.date) -> list[tuple[int, int]]:
    y, m = as_of.year, as_of.month
    out = []
    for _ in range(MONTHS):
        out.append((y, m))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out[::-1]


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _monthly_payment(principal: int, months: int) -> int:
    r = ANNUAL_LOAN_RATE / 12
    f = (1 + r) ** months
    return round(principal * r * f / (f - 1))


def _loan_balance(principal: int, months: int, paid: int) -> int:
    """Remaining principal after ``paid`` equal instalments (等额本息)."""
    r = ANNUAL_LOAN_RATE / 12
    f, fk = (1 + r) ** months, (1 + r) ** paid
    return max(0, round(principal * (f - fk) / (f - 1)))


class _Generator:
    """Builds person ``i`` and its rows; uniqueness of ID numbers is tracked across persons."""

    def __init__(self, seed: int, as_of: dt.date):
        self.seed, self.as_of = seed, as_of
        self.months = _months(as_of)
        self.month_info = [(k, y, m, f"{y:04d}-{m:02d}-", f"{y:04d}{m:02d}")
                           for k, (y, m) in enumerate(self.months)]
        self.ids: set[str] = set()
        self.serial = 0

    def rng(self, i: int) -> random.Random:
        return random.Random(self.seed * 10_000_019 + i)

    def identity(self, i: int, r: random.Random, want_x: bool | None) -> tuple:
        male = r.random() < 0.5
        while True:
            birth = dt.date(1962, 1, 1) + dt.timedelta(days=r.randrange(15_330))
            seq = r.randrange(0, 500) * 2 + (1 if male else 0)
            body = f"{r.choice(AREAS)}{birth:%Y%m%d}{seq:03d}"
            id_number = body + check_digit(body)
            if want_x is not None and (id_number[-1] == "X") != want_x:
                continue
            if id_number not in self.ids:
                self.ids.add(id_number)
                break
        given = GIVEN_MALE if male else GIVEN_FEMALE
        name = r.choice(SURNAMES) + "".join(r.choice(given) for _ in range(r.choice((1, 2, 2))))
        body = (i * 7_919_371 + 20_240_611) % 100_000_000  # injective: gcd(7919371, 10^8) = 1
        mobile = MOBILE_PREFIXES[i % len(MOBILE_PREFIXES)] + f"{body:08d}"
        return name, id_number, mobile, birth, ("1" if male else "2")

    def person(self, i: int, profile: tuple | None = None) -> dict:
        """Everything about person ``i`` as row tuples, plus its journal events."""
        r = self.rng(i)
        want_x = profile[1] if profile else None
        name, id_number, mobile, birth, sex = self.identity(i, r, want_x)
        grzh = f"2{i + 1:011d}"
        wage = int(min(35_000, max(2_360, r.lognormvariate(8.8, 0.45))))
        rate = r.choice(RATES)
        per_side = round(wage * rate) * 100  # fen, whole yuan per side
        monthly = per_side * 2
        roll = r.random()
        status = profile[2] if profile else ("normal" if roll < 0.93 else "sealed")
        last_paid = MONTHS - 1 if status == "normal" else MONTHS - 1 - r.randrange(1, 18)
        balance = r.randrange(0, monthly * 96 + 1)
        deposit_day = r.randrange(5, 26)
        withdraw_month = r.randrange(MONTHS) if r.random() < 0.12 else -1
        details, events = [], []
        when_last = None
        dd = f"{deposit_day:02d}"
        serial = self.serial
        for k, y, m, prefix, compact in self.month_info:  # the hot loop: 24 M rows per million
            if k <= last_paid:
                balance += monthly
                date = prefix + dd
                serial += 1
                details.append((grzh, len(details) + 1, date, "deposit", monthly, balance, None,
                                f"{compact}{dd}{serial:010d}"))
                when_last = (y, m)
                if k == MONTHS - 1:
                    events.append(("deposit_credited", grzh, f"{date}T09:30:00", {
                        "name": name, "amount": _yuan(monthly), "balance": _yuan(balance),
                        "month": f"{y:04d}{m:02d}"}))
            if k == withdraw_month and balance > 0:
                amount = r.randrange(balance // 4, balance + 1) // 100 * 100
                reason = r.choice(WITHDRAWAL_REASONS)
                balance -= amount
                date = f"{y:04d}-{m:02d}-{min(28, deposit_day + 3):02d}"
                serial += 1
                details.append((grzh, len(details) + 1, date, "withdrawal", amount, balance,
                                reason, f"{date.replace('-', '')}{serial:010d}"))
                if k == MONTHS - 1:
                    events.append(("withdrawal", grzh, f"{date}T14:10:00", {
                        "name": name, "amount": _yuan(amount), "balance": _yuan(balance),
                        "reason": reason}))
            if m == 6:
                interest = round(balance * ANNUAL_DEPOSIT_RATE)
                balance += interest
                date = f"{y:04d}-06-30"
                serial += 1
                details.append((grzh, len(details) + 1, date, "interest", interest, balance, None,
                                f"{y:04d}0630{serial:010d}"))
                if k == MONTHS - 1:
                    events.append(("interest_credited", grzh, f"{date}T23:00:00", {
                        "name": name, "interest": _yuan(interest), "balance": _yuan(balance),
                        "year": str(y)}))
        self.serial = serial
        jzny = f"{when_last[0]:04d}{when_last[1]:02d}"
        salt = r.randbytes(16)
        locked = profile[4] if profile else False
        account = (grzh, i + 1, wage * 100, status, balance, per_side, per_side, jzny,
                   hash_password(DEMO_PASSWORD, salt, GENERATED_PASSWORD_ITERATIONS), 0,
                   LOCKED_UNTIL.timestamp() if locked else None)
        age = self.as_of.year - birth.year
        if profile:
            loan_kind = profile[3]
        elif age >= 25 and r.random() < 0.18:
            loan_kind = r.choices(("repaying", "overdue", "settled"), (80, 5, 15))[0]
        else:
            loan_kind = None
        loan = self.loan(i, r, grzh, loan_kind, events) if loan_kind else None
        if r.random() < 0.005:
            events.append(("account_changed", grzh, f"{self.as_of:%Y-%m}-20T10:00:00",
                           {"name": name, "what": r.choice(("mobile", "base", "status"))}))
        person = (i + 1, name, "01", id_number, mobile, birth.isoformat(), sex)
        return {"person": person, "account": account, "details": details, "loan": loan,
                "events": events, "loan_kind": loan_kind}

    def loan(self, i: int, r: random.Random, grzh: str, kind: str, events: list) -> tuple:
        dkzh = f"4{i + 1:018d}"
        tail = dkzh[-4:]
        term = r.choice((120, 180, 240, 300, 360))
        principal = r.randrange(2_000, 12_000) * 10_000  # 200,000-1,200,000 yuan in fen
        ago = r.randrange(0, min(term, 240))  # months since disbursement
        y, m = self.as_of.year, self.as_of.month - ago
        while m < 1:
            y, m = y - 1, m + 12
        day = r.randrange(1, 29)
        disbursed = f"{y:04d}-{m:02d}-{day:02d}"
        payment = _monthly_payment(principal, term)
        if ago == 0:
            events.append(("loan_disbursed", grzh, f"{disbursed}T11:00:00", {
                "amount": _yuan(principal), "term_months": str(term), "loan_tail": tail,
                "monthly_repayment": _yuan(payment)}))
        if kind == "settled":
            settled = f"{self.as_of:%Y-%m}-{min(day, 28):02d}"
            if r.random() < 0.3 or i < len(PROFILES):
                events.append(("loan_settled", grzh, f"{settled}T15:00:00",
                               {"loan_tail": tail, "settled_on": settled}))
            else:
                earlier = f"{self.as_of.year - 1:04d}-{r.randrange(1, 13):02d}-{min(day, 28):02d}"
                settled = max(disbursed, earlier)
            return (dkzh, grzh, principal, 0, 0, 0, 0, term, day, "settled", disbursed, settled)
        periods = r.randrange(1, 7) if kind == "overdue" else 0
        balance = _loan_balance(principal, term, max(0, ago - periods))
        overdue = 0
        if periods:
            overdue = sum(payment - round(_loan_balance(principal, term, k) * ANNUAL_LOAN_RATE / 12)
                          for k in range(ago - periods, ago))
        due_day = f"{self.as_of.year + self.as_of.month // 12:04d}-" \
                  f"{self.as_of.month % 12 + 1:02d}-{day:02d}"
        events.append(("repayment_due", grzh, f"{self.as_of:%Y-%m-%d}T08:00:00", {
            "amount": _yuan(payment), "due_date": due_day, "loan_tail": tail,
            "method": r.choice(("hpf_deduct", "hpf_insufficient", "bank_debit"))}))
        if ago > 0 and not periods:
            interest = round(_loan_balance(principal, term, ago - 1) * ANNUAL_LOAN_RATE / 12)
            events.append(("repayment_posted", grzh, f"{self.as_of:%Y-%m}-{day:02d}T06:00:00", {
                "principal": _yuan(payment - interest), "interest": _yuan(interest),
                "penalty": "0.00", "overdue_periods": "0", "loan_balance": _yuan(balance),
                "loan_tail": tail}))
        return (dkzh, grzh, principal, balance, payment, overdue, periods, term, day,
                "repaying", disbursed, None)


def demo_identities(seed: int = DEFAULT_SEED, as_of: dt.date = AS_OF) -> list[DemoIdentity]:
    """The documented identities: the first persons of any database generated with ``seed``."""
    gen = _Generator(seed, as_of)
    out = []
    for i, profile in enumerate(PROFILES):
        p = gen.person(i, profile)
        _, name, _, id_number, mobile, _, _ = p["person"]
        out.append(DemoIdentity(label=profile[0], account_no=p["account"][0],
                                id_number=id_number, name=name, mobile=mobile,
                                password=DEMO_PASSWORD, status=p["account"][3],
                                loan=p["loan_kind"], locked=profile[4]))
    return out


def generate(out: str | os.PathLike, persons: int = DEFAULT_PERSONS, seed: int = DEFAULT_SEED,
             as_of: dt.date = AS_OF, chunk: int = 5_000) -> dict:
    """Write a demo core database to ``out`` (atomically, via a temporary file); blocking.

    Returns counts and the elapsed seconds. Same ``persons`` and ``seed``, same file content.
    """
    if persons < len(PROFILES):
        raise ValueError(f"at least {len(PROFILES)} persons (the demo identities)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    started = time.monotonic()
    conn = sqlite3.connect(tmp)
    counts = {"persons": 0, "details": 0, "loans": 0, "events": 0}
    try:
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-200000",
                       "locking_mode=EXCLUSIVE", "temp_store=MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        conn.executescript(SCHEMA)
        gen = _Generator(seed, as_of)
        for start in range(0, persons, chunk):
            rows: dict[str, list] = {"person": [], "account": [], "detail": [], "loan": [],
                                     "event": []}
            for i in range(start, min(persons, start + chunk)):
                p = gen.person(i, PROFILES[i] if i < len(PROFILES) else None)
                rows["person"].append(p["person"])
                rows["account"].append(p["account"])
                rows["detail"].extend(p["details"])
                if p["loan"]:
                    rows["loan"].append(p["loan"])
                rows["event"].extend((k, g, at, json.dumps(f, ensure_ascii=False))
                                     for k, g, at, f in p["events"])
            conn.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?)", rows["person"])
            conn.executemany("INSERT INTO account VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows["account"])
            conn.executemany("INSERT INTO detail VALUES (?,?,?,?,?,?,?,?)", rows["detail"])
            conn.executemany("INSERT INTO loan VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows["loan"])
            conn.executemany("INSERT INTO event (kind, GRZH, occurred_at, fields) "
                             "VALUES (?,?,?,?)", rows["event"])
            conn.commit()
            counts["persons"] += len(rows["person"])
            counts["details"] += len(rows["detail"])
            counts["loans"] += len(rows["loan"])
            counts["events"] += len(rows["event"])
        conn.executescript(INDEXES)
        conn.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("seed", str(seed)), ("persons", str(persons)), ("as_of", as_of.isoformat()),
            ("schema", "1")])
        conn.commit()
        conn.execute("PRAGMA locking_mode=NORMAL")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    os.replace(tmp, out)
    counts["seconds"] = round(time.monotonic() - started, 2)
    return counts
