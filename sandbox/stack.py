"""The whole platform on loopback: Asterisk, an SMSC and the daemon, for ``hotline demo`` and benches.

``Stack(state_dir, log_dir)`` is a context manager. On entry it chooses free
ports, generates the embedded demo core (once), starts an SMSC (the npm
``smpp`` server in ``sandbox/smsc/`` when it is installed, else
``sandbox.smsc_sim``), starts an Asterisk from the cached root with
``state_dir`` bind-mounted at the same path (prompts and recordings are shared),
writes ``state_dir/hotline.ini`` for them, migrates the database, builds the
default prompts when missing, and runs ``daemon.py run`` as a subprocess until
it is ready: ``/healthz`` answers, the AMI link is up, Asterisk holds the
heartbeat and the SMPP bind is bound. On exit (also on Ctrl-C) it stops the
daemon, Asterisk and the SMSC, in that order. Every log goes to ``log_dir``.

This is blocking code for command-line tools and fixtures, never for a reactor.
"""
from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sandbox.asterisk import AsteriskError, AsteriskInstance, is_built, root_path
from sandbox.ports import free_port, free_udp_range, wait_for_port

REPO = Path(__file__).resolve().parents[1]
NPM_SMSC = REPO / "sandbox" / "smsc"
CENTER = "demo"
SMPP_SYSTEM_ID = "hotline"
CMPP_SP_ID = "901234"
ISMG = REPO / "sandbox" / "carriers" / "ismg.js"

CONSOLE_LOGINS = 10  # [console] login_per_minute's default (console/config.py)
CONFIG = """\
; Written by sandbox/stack.py for one local stack; secrets come from the environment.
[daemon]
instance = {instance}
state_dir = {state}
log_format = json
log_file = {log_dir}/daemon.log
log_level = info
shutdown_timeout = 5

[database]
url = sqlite:///{state}/hotline.db
threads = 4

[http]
enabled = yes
listen = tcp:port={http_port}:interface=127.0.0.1

[console]
enabled = yes
listen = tcp:port={console_port}:interface=127.0.0.1
login_per_minute = {console_logins}

[center:{center}]
name = 示例市住房公积金管理中心
signature = 示例公积金
core = embedded
core_db = {core_db}
dnid = 12329
office_hours = 00:00-24:00
office_days = 1, 2, 3, 4, 5, 6, 7

[ami]
enabled = yes
endpoint = {ami_endpoint}
username = hotline
secret = env:HOTLINE_AMI_SECRET
heartbeat_interval = 2

[sms]
enabled = {sms_enabled}
alerts_interval = 1

[sms.quiet_hours]
; the demo runs at any hour
transaction = none
bulk = none

[smsc:local]
endpoint = tcp:host=127.0.0.1:port={smpp_port}
system_id = {system_id}
password = env:HOTLINE_SMPP_PASSWORD_LOCAL
source_addr = 12329

; China Mobile's numbers go to its ISMG over CMPP 3.0 (the local simulator); the SMPP
; SMSC above, with no carriers, is the aggregator route they fail over to.
[smsc:cmcc]
protocol = cmpp3
endpoint = tcp:host=127.0.0.1:port={cmpp_port}
system_id = {cmpp_sp_id}
password = env:HOTLINE_CMPP_SECRET
source_addr = 1069012329
service_id = HPF
carriers = mobile
reconnect_min = 0.5
reconnect_max = 5

[prompts]
library_dir = {state}/prompts
recording_dir = {state}/prompts/incoming
{extra}"""


class StackError(Exception):
    """A part of the local stack could not be prepared or did not become ready in time."""


# ---- the SMSC ------------------------------------------------------------------------

@dataclass
class Smsc:
    """A running SMSC process: ``kind`` is ``npm`` (sandbox/smsc) or ``smsc_sim``; both
    answer ``GET /stats`` on ``control_port`` with their own counters."""

    kind: str
    port: int
    password: str
    process: subprocess.Popen
    control_port: int

    def stop(self, timeout: float = 5.0) -> None:
        _terminate(self.process, timeout)


def npm_smsc_entry() -> Path | None:
    """The npm SMSC's script when its packages are installed, else None."""
    package = NPM_SMSC / "package.json"
    if not package.is_file() or not (NPM_SMSC / "node_modules").is_dir():
        return None
    main = json.loads(package.read_text()).get("main", "server.js")
    entry = NPM_SMSC / main
    return entry if entry.is_file() and shutil.which("node") else None


def start_smsc(log_dir: Path, prefer: str = "auto") -> Smsc:
    """The npm server when present (``prefer`` auto or npm), else the project's simulator."""
    port, password = free_port(), secrets.token_hex(4)
    entry = npm_smsc_entry() if prefer in ("auto", "npm") else None
    if prefer == "npm" and entry is None:
        raise StackError(f"the npm SMSC is not installed in {NPM_SMSC} (run sandbox/setup.sh)")
    control = free_port()
    out = open(log_dir / "smsc.log", "ab")
    if entry is not None:
        cmd = ["node", str(entry), "--host", "127.0.0.1", "--port", str(port),
               "--control-port", str(control), "--system-id", SMPP_SYSTEM_ID,
               "--password", password]
        kind = "npm"
    else:
        cmd = [sys.executable, "-m", "sandbox.smsc_sim", "--port", str(port),
               "--control-port", str(control), "--system-id", SMPP_SYSTEM_ID,
               "--password", password]
        kind = "smsc_sim"
    process = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    smsc = Smsc(kind, port, password, process, control)
    if not (wait_for_port("127.0.0.1", port, 20) and wait_for_port("127.0.0.1", control, 5)) \
            or process.poll() is not None:
        smsc.stop()
        raise StackError(f"the {kind} SMSC did not listen: see {log_dir / 'smsc.log'}")
    return smsc


def start_ismg(log_dir: Path) -> Smsc:
    """The CMPP ISMG simulator (node, no npm packages) with a fresh shared secret."""
    port, control, secret = free_port(), free_port(), secrets.token_hex(4)
    if shutil.which("node") is None:
        raise StackError("node is not installed (run sandbox/setup.sh)")
    out = open(log_dir / "ismg.log", "ab")
    process = subprocess.Popen(
        ["node", str(ISMG), "--port", str(port), "--control-port", str(control),
         "--sp-id", CMPP_SP_ID, "--secret", secret], cwd=REPO, stdin=subprocess.DEVNULL,
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    ismg = Smsc("ismg", port, secret, process, control)
    if not (wait_for_port("127.0.0.1", port, 20) and wait_for_port("127.0.0.1", control, 5)) \
            or process.poll() is not None:
        ismg.stop()
        raise StackError(f"the CMPP ISMG did not listen: see {log_dir / 'ismg.log'}")
    return ismg


# ---- the demo core -------------------------------------------------------------------

def latest_event(core_db: Path) -> int:
    with sqlite3.connect(core_db) as conn:
        return conn.execute("SELECT COALESCE(MAX(cursor), 0) FROM event").fetchone()[0]


def credit_deposit(core_db: Path, account_no: str, today: date | None = None) -> dict:
    """Play the core posting this month's deposit: balance, detail row and journal event
    in one transaction (what a center's core does; the alerts job turns it into an SMS)."""
    today = today or date.today()
    conn = sqlite3.connect(core_db, timeout=10)
    try:
        with conn:
            row = conn.execute(
                "SELECT a.GRZHYE, a.GRYJCE + a.DWYJCE, p.XINGMING FROM account a "
                "JOIN person p ON p.id = a.person_id WHERE a.GRZH = ?", (account_no,)).fetchone()
            if row is None:
                raise StackError("no such demo account")
            balance, monthly, name = row[0] + row[1], row[1], row[2]
            xh = conn.execute("SELECT COALESCE(MAX(XH), 0) + 1 FROM detail WHERE GRZH = ?",
                              (account_no,)).fetchone()[0]
            conn.execute("UPDATE account SET GRZHYE = ?, JZNY = ? WHERE GRZH = ?",
                         (balance, f"{today:%Y%m}", account_no))
            conn.execute("INSERT INTO detail VALUES (?,?,?,?,?,?,?,?)",
                         (account_no, xh, today.isoformat(), "deposit", monthly, balance, None,
                          f"{today:%Y%m%d}{random.randrange(10**10):010d}"))
            fields = {"name": name, "amount": f"{monthly / 100:.2f}",
                      "balance": f"{balance / 100:.2f}", "month": f"{today:%Y%m}"}
            cursor = conn.execute(
                "INSERT INTO event (kind, GRZH, occurred_at, fields) VALUES (?,?,?,?)",
                ("deposit_credited", account_no, f"{today.isoformat()}T09:30:00",
                 json.dumps(fields, ensure_ascii=False))).lastrowid
    finally:
        conn.close()
    return {"cursor": cursor, "amount": fields["amount"], "balance": fields["balance"]}


# ---- helpers ---------------------------------------------------------------------------

def _terminate(process: subprocess.Popen | None, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def ami_blocks(host: str, port: int, username: str, secret: str, actions: str, until: bytes,
               timeout: float = 2.0) -> list[list[tuple[str, str]]]:
    """Over one blocking AMI session (logged in, events off): send ``actions`` (raw AMI
    text) and read until ``until`` arrives; every block as its headers, in order (a name
    may come more than once: ChanVariable). OSError when unreachable."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\n"
                  f"Events: off\r\nActionID: l\r\n\r\n{actions}".encode())
        data = b""
        while until not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return [[(name, value) for name, _, value in (line.partition(": ")
                                                  for line in block.split("\r\n")) if value]
            for block in data.decode(errors="replace").split("\r\n\r\n")]


def ami_getvar(host: str, port: int, username: str, secret: str, variable: str,
               timeout: float = 2.0) -> str | None:
    """A global variable's value over one blocking AMI session (None when unreachable)."""
    try:
        blocks = ami_blocks(host, port, username, secret,
                            f"Action: Getvar\r\nVariable: {variable}\r\nActionID: g\r\n\r\n"
                            "Action: Logoff\r\nActionID: o\r\n\r\n", b"ActionID: o", timeout)
    except OSError:
        return None
    for headers in map(dict, blocks):
        if headers.get("ActionID") == "g" and headers.get("Response") == "Success":
            return headers.get("Value", "")
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc/<pid>/stat."""
    fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields_[11]) + int(fields_[12])) / os.sysconf("SC_CLK_TCK")


# ---- the stack -------------------------------------------------------------------------

@dataclass
class Stack:
    """Asterisk + SMSC + daemon on loopback. Use as ``with Stack(state, logs) as stack:``."""

    state_dir: Path
    log_dir: Path
    persons: int = 10000
    smsc_kind: str = "auto"
    rtp_ports: int = 1000
    sms: bool = True  # False: no SMSC and [sms] enabled = no (an IVR-only platform)
    ready_timeout: float = 90.0
    say: object = print  # progress lines for the terminal
    instance: str = field(default_factory=lambda: "demo" + secrets.token_hex(3))
    asterisk: AsteriskInstance | None = None
    smsc: Smsc | None = None
    ismg: Smsc | None = None  # the CMPP ISMG simulator China Mobile's numbers go to
    daemon: subprocess.Popen | None = None
    http_port: int = 0
    console_port: int = 0
    extra_ini: str = ""  # more sections (another center) appended to the generated INI
    console_logins: int = CONSOLE_LOGINS  # [console] login_per_minute, more for a test
    shared_core_centers: tuple[str, ...] = ()  # centers of extra_ini on the same demo core
    code_pepper: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self):
        self.state_dir = Path(self.state_dir).resolve()
        self.log_dir = Path(self.log_dir).resolve()
        self.config_path = self.state_dir / "hotline.ini"
        self.core_db = self.state_dir / "core-demo.db"
        self.db_url = f"sqlite:///{self.state_dir}/hotline.db"
        self.library_dir = self.state_dir / "prompts"
        self.daemon_log = self.log_dir / "daemon.log"

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- start -------------------------------------------------------------------------
    def start(self) -> None:
        if os.geteuid() != 0:
            raise StackError("the local stack needs root (Asterisk runs chrooted with bind mounts)")
        if not is_built(root_path()):
            raise StackError(f"no Asterisk root at {root_path()}: run sandbox/setup.sh")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.library_dir / "incoming").mkdir(parents=True, exist_ok=True)
        if not self.core_db.exists():
            from core_client.demo_data import generate

            self.say(f"generating the demo core ({self.persons} synthetic persons)")
            generate(self.core_db, persons=self.persons)  # atomic: a temporary file renamed
        if self.sms:
            self.smsc = start_smsc(self.log_dir, self.smsc_kind)
            why = " (fallback: the npm SMSC in sandbox/smsc is not installed)" \
                if self.smsc.kind == "smsc_sim" and self.smsc_kind == "auto" else ""
            self.say(f"SMSC: {self.smsc.kind} on 127.0.0.1:{self.smsc.port}{why}")
            self.ismg = start_ismg(self.log_dir)
            self.say(f"CMPP ISMG: sandbox/carriers/ismg.js on 127.0.0.1:{self.ismg.port}")
        self.asterisk = AsteriskInstance(
            root_path(), self.state_dir / "asterisk", ami_port=free_port(),
            sip_port=free_port(kind=socket.SOCK_DGRAM), rtp_range=free_udp_range(self.rtp_ports),
            bind_mounts=[str(self.state_dir)], owner=os.getpid(),
            variables={"instance": self.instance, "center": CENTER,
                       "office_hours": "*,*,*,*",
                       "prompt_library": str(self.library_dir)})
        try:
            self.asterisk.start()
        except AsteriskError as e:
            raise StackError(str(e)) from e
        self.say(f"Asterisk: AMI 127.0.0.1:{self.asterisk.ami_port}, "
                 f"SIP udp 127.0.0.1:{self.asterisk.sip_port}")
        self.http_port, self.console_port = free_port(), free_port()
        self.config_path.write_text(CONFIG.format(
            instance=self.instance, state=self.state_dir, log_dir=self.log_dir,
            http_port=self.http_port, console_port=self.console_port, extra=self.extra_ini,
            console_logins=self.console_logins,
            center=CENTER, core_db=self.core_db,
            ami_endpoint=self.asterisk.endpoint, system_id=SMPP_SYSTEM_ID,
            sms_enabled="yes" if self.sms else "no",
            smpp_port=self.smsc.port if self.smsc else free_port(),
            cmpp_port=self.ismg.port if self.ismg else free_port(),
            cmpp_sp_id=CMPP_SP_ID), "utf-8")
        self.hotline("db", "upgrade", "--config", str(self.config_path))
        self._start_alerts_at_the_journal_end()
        self.say("default prompts: building what is missing (espeak-ng)")
        self.hotline("prompts", "build-defaults", "--config", str(self.config_path))
        self._start_daemon()

    def _keep_asterisk_logs(self) -> None:
        """Copy Asterisk's logs of this run into log_dir (the privacy scan reads them there)."""
        target = self.log_dir / "asterisk"
        target.mkdir(exist_ok=True)
        sources = [self.asterisk.host_dir / "asterisk.out", *self.asterisk.log_dir.glob("*")]
        for path in sources:
            if path.is_file():
                shutil.copyfile(path, target / path.name)

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1",
                   HOTLINE_AMI_SECRET=self.asterisk.ami_secret,
                   HOTLINE_SMPP_PASSWORD_LOCAL=self.smsc.password if self.smsc else "unused",
                   HOTLINE_CMPP_SECRET=self.ismg.password if self.ismg else "unused",
                   HOTLINE_CODE_PEPPER=self.code_pepper)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        return env

    def hotline(self, *args: str, timeout: float = 300) -> str:
        """Run one ``hotline`` subcommand against this stack's config; its output is logged."""
        done = subprocess.run([sys.executable, str(REPO / "daemon.py"), *args], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        with open(self.log_dir / "commands.log", "a") as log:
            log.write(f"$ hotline {' '.join(args)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise StackError(f"hotline {args[0]} {args[1]} failed ({done.returncode}): "
                             f"{done.stderr.strip()[-800:]}")
        return done.stdout

    def _start_alerts_at_the_journal_end(self) -> None:
        """A fresh platform database starts its alert cursor at the end of the demo core's
        journal: the generated history (tens of thousands of events) is not texted out."""
        from sqlalchemy import select

        from sms.tables import SmsAlertCursor
        from storage.db import Database

        end = latest_event(self.core_db)

        def start_cursor(session):
            for center in (CENTER, *self.shared_core_centers):
                if session.scalar(select(SmsAlertCursor).where(SmsAlertCursor.center == center)):
                    continue
                session.add(SmsAlertCursor(center=center, cursor=end, updated_at=time.time()))

        db = Database(self.db_url, None, 1)
        try:
            db.run_sync(start_cursor)
        finally:
            db.engine.dispose()

    def _start_daemon(self) -> None:
        self.daemon_log.touch()
        self._log_offset = self.daemon_log.stat().st_size
        out = open(self.log_dir / "daemon.out", "ab")
        self.daemon = subprocess.Popen(
            [sys.executable, str(REPO / "daemon.py"), "run", "--config", str(self.config_path)],
            cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.say(f"daemon: pid {self.daemon.pid}, waiting until it is ready")
        self.wait_ready()

    def readiness(self) -> dict[str, bool]:
        """What is ready now: HTTP /healthz, AMI link up, heartbeat in Asterisk, SMPP bound."""
        states = {"http": False, "ami": False, "heartbeat": False, "smpp": not self.sms,
                  "cmpp": not self.sms}
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz",
                                        timeout=1) as r:
                states["http"] = r.status == 200
        except (urllib.error.URLError, OSError):
            pass
        for record in self.daemon_events():
            link = str(record.get("link") or "")  # common.link logs every state change
            if link == "AMI link" and record.get("new") == "up":
                states["ami"] = True
            if link.startswith("SMPP ") and record.get("new") == "bound":
                states["smpp"] = True
            if link.startswith("CMPP ") and record.get("new") == "up":
                states["cmpp"] = True
        value = ami_getvar(self.asterisk.address, self.asterisk.ami_port,
                           self.asterisk.ami_username, self.asterisk.ami_secret,
                           "HOTLINE_HEARTBEAT")
        states["heartbeat"] = bool(value and value.strip())
        return states

    def daemon_events(self) -> list[dict]:
        """The daemon's JSON log records written since this stack started it."""
        out = []
        with open(self.daemon_log, encoding="utf-8", errors="replace") as f:
            f.seek(self._log_offset)
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        states: dict[str, bool] = {}
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise StackError(f"the daemon exited ({self.daemon.returncode}): see "
                                 f"{self.log_dir / 'daemon.out'} and {self.daemon_log}")
            states = self.readiness()
            if all(states.values()):
                self.say("daemon ready: HTTP /healthz ok, AMI up, heartbeat set"
                         + (", SMPP bound, CMPP up" if self.sms else " (SMS off)"))
                return
            time.sleep(0.3)
        missing = ", ".join(k for k, v in states.items() if not v)
        raise StackError(f"the daemon was not ready within {self.ready_timeout:g} s "
                         f"(not ready: {missing}); see {self.daemon_log}")

    # ---- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        """Daemon, then Asterisk, then the SMSC; safe to call twice and after a failed start.
        Ctrl-C while stopping is held off so nothing is left running."""
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) \
            if _main_thread() else None
        try:
            if self.daemon is not None:
                _terminate(self.daemon, 15)
                self.daemon = None
            if self.asterisk is not None:
                self.asterisk.stop()
                self._keep_asterisk_logs()
                self.asterisk = None
            if self.smsc is not None:
                self.smsc.stop()
                self.smsc = None
            if self.ismg is not None:
                self.ismg.stop()
                self.ismg = None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# ---- what a caller sends ------------------------------------------------------------

def balance_call(keyed_id: str, password: str, listen_ms: int = 12000) -> list[tuple[int, str]]:
    """The key presses of a caller walking to the balance: 1 (Mandarin), 1 (deposits),
    1 (balance), the ID and #, the password and #, listening, then 5 (goodbye) and a
    survey score of 1."""
    def keys(digits: str, first_ms: int, gap_ms: int = 500) -> list[tuple[int, str]]:
        return [(first_ms if i == 0 else gap_ms, k) for i, k in enumerate(digits)]

    return (keys("1", 2000) + keys("1", 2500) + keys("1", 2500) + keys(keyed_id + "#", 2500)
            + keys(password + "#", 2500) + keys("5", listen_ms) + keys("1", 3000))
