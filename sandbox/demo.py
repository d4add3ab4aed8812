"""``hotline demo``: the whole platform on loopback, shown end to end.

It starts the local stack (sandbox/stack.py: Asterisk, an SMSC, the daemon),
then shows two things with what the platform itself recorded:

1. A SIP call from sipp to 12329 pressing RFC 4733 keys through the balance
   flow with a documented demo identity whose ID ends in X (keyed as ``*``):
   the call record from the database (masked caller, menu path, outcome) and the
   balance reading the caller heard, taken from Asterisk's AGIExecStart events
   (the prompt files played) with each file's Mandarin catalog text.
2. A deposit alert: the embedded core posts a deposit, the daemon's alerts job
   turns it into an SMS to a China Mobile number, which the router sends by its
   number segment over CMPP 3.0 to the ISMG simulator, and the ISMG's status report
   settles it; the text (masked destination), its state changes and the report
   come from the outbox tables.

It ends with the administrators' console: its address and the demo
administrator's login (a fresh password each run). With ``--stay`` (the default
on a terminal) the platform keeps running for the console until Ctrl-C.

Exit 0 only if both went through.
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import sys
import time
from pathlib import Path

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.selectreactor import SelectReactor
from twisted.internet.threads import deferToThreadPool

from common.masking import mask_account, mask_id_number, mask_mobile

REPO = Path(__file__).resolve().parents[1]
DEPOSIT_ACCOUNT = 4  # index in demo_identities(): a settled loan, a China Mobile mobile (135)
# The synthesised balance reading lasts about 20 s and is partly a Playback (no barge-in).
LISTEN_MS = 30000


class DemoFailed(Exception):
    """A step of the demo did not go through; the message says which and why."""


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the platform on loopback and show a call and an SMS")
    p.add_argument("--state-dir", type=Path, default=REPO / "var" / "demo",
                   help="state folder, kept between runs (core, prompts, database)")
    p.add_argument("--log-dir", type=Path, help="where every log goes (default: STATE/logs)")
    p.add_argument("--smsc", choices=("auto", "npm", "sim"), default="auto",
                   help="auto: the npm SMSC when installed, else sandbox.smsc_sim")
    p.add_argument("--stay", action=argparse.BooleanOptionalAction, default=sys.stdin.isatty(),
                   help="keep the platform running for the console until Ctrl-C "
                        "(default: when run from a terminal)")
    p.set_defaults(func=cmd_demo)
    from sandbox.door_demo import register as register_door_demo

    register_door_demo(subparsers)


def interrupt_on_sigterm() -> None:
    """SIGTERM stops a command like Ctrl-C does (the stack's ``with`` block cleans up)."""
    def raise_interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, raise_interrupt)


def cmd_demo(args) -> int:
    from sandbox.stack import Stack, StackError

    interrupt_on_sigterm()
    log_dir = args.log_dir or args.state_dir / "logs"
    say("starting the local platform (Asterisk 22, SMSC, hotline daemon) on 127.0.0.1")
    try:
        with Stack(args.state_dir, log_dir, say=say,
                   smsc_kind={"sim": "smsc_sim"}.get(args.smsc, args.smsc)) as stack:
            ok = run_on_fresh_reactor(lambda reactor: show(reactor, stack), timeout=150)
            show_console(stack)
            if args.stay:
                say("the platform keeps running for the console; Ctrl-C stops everything")
                while True:
                    time.sleep(3600)
        say("stopped everything" + ("" if ok else "; the demo did not fully go through"))
        say(f"logs: {log_dir}")
        return 0 if ok else 1
    except StackError as e:
        print(f"hotline demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hotline demo: interrupted; everything was stopped", file=sys.stderr)
        return 130


DEMO_ADMIN = "admin"


def show_console(stack) -> None:
    """Create the demo administrator (a provincial one, a fresh password) and say where the
    console is."""
    password = secrets.token_urlsafe(9)
    os.environ["HOTLINE_DEMO_ADMIN_PASSWORD"] = password
    known = stack.hotline("console", "users", "--config", str(stack.config_path))
    command = "passwd" if DEMO_ADMIN in known.split() else "adduser"
    try:
        stack.hotline("console", command, "--config", str(stack.config_path), DEMO_ADMIN,
                      "--password-env", "HOTLINE_DEMO_ADMIN_PASSWORD")
    finally:
        del os.environ["HOTLINE_DEMO_ADMIN_PASSWORD"]
    say()
    say("== 3. the administrators' console ==")
    say(f"console: {stack.console_url}/  (中文; English at the top right)")
    say(f"login:   {DEMO_ADMIN} / {password}  (demo provincial administrator)")


def say(line: str = "") -> None:
    print(line, flush=True)


def run_on_fresh_reactor(main, timeout: float):
    """``await main(reactor)`` on a new SelectReactor (no global reactor); its result.

    Ctrl-C or SIGTERM cancels ``main`` (its ``finally`` blocks run, e.g. to end sipp)
    and raises KeyboardInterrupt here: the reactor's main loop would swallow it.
    """
    from twisted.internet.defer import CancelledError

    reactor = SelectReactor()
    outcome: list = []
    running: list[Deferred] = []
    interrupted: list[int] = []

    def start():
        d = Deferred.fromCoroutine(main(reactor))
        running.append(d)
        d.addTimeout(timeout, reactor)
        d.addBoth(lambda result: (outcome.append(result), reactor.callLater(0, reactor.stop)))

    def interrupt(signum, frame):
        interrupted.append(signum)
        reactor.callFromThread(lambda: running[0].cancel() if running else reactor.stop())

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        reactor.callWhenRunning(start)
        reactor.run(installSignalHandlers=False)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    result = outcome[0] if outcome else None
    if interrupted:
        if hasattr(result, "check") and not result.check(CancelledError):
            result.printTraceback(file=sys.stderr)
        raise KeyboardInterrupt
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


async def show(reactor, stack) -> bool:
    ok = True
    for title, part in (("1. a call to 12329: the balance", show_call),
                        ("2. a deposit alert SMS", show_sms)):
        say()
        say(f"== {title} ==")
        try:
            await part(reactor, stack)
        except DemoFailed as e:
            say(f"FAILED: {e}")
            ok = False
    say()
    say("demo: both went through" if ok else "demo: FAILED")
    return ok


# ---- the call ----------------------------------------------------------------------

class AgiObserver:
    """A second AMI session recording the AGI commands Asterisk runs (prompt files only).

    A reading longer than one AMI line runs as ``Exec`` over channel variables
    (``ivr.asterisk.agi``): their values are fetched at once, while the reading plays,
    and written into the recorded command."""

    def __init__(self, reactor, asterisk):
        from ivr.asterisk.ami_link import AmiLink

        self.commands: list[tuple[float, str, str]] = []  # (time, channel, command)
        self.link = AmiLink(TCP4ClientEndpoint(reactor, asterisk.address, asterisk.ami_port),
                            asterisk.ami_username, asterisk.ami_secret, reactor,
                            action_timeout=5, ping_interval=10, initial_delay=0.2, max_delay=2)
        self.link.subscribe("AGIExecStart", lambda e: self._started(
            reactor.seconds(), e.get("Channel") or "", e.get("Command") or ""))

    def _started(self, at: float, channel: str, command: str) -> None:
        self.commands.append((at, channel, command))
        names = re.findall(r"\$\{(HOTLINE_PROMPTS\d+)\}", command)
        if names:
            Deferred.fromCoroutine(self._unpark(len(self.commands) - 1, channel, names))

    async def _unpark(self, index: int, channel: str, names: list[str]) -> None:
        from ivr.asterisk.ami_protocol import AmiError

        values = {}
        for name in names:
            try:
                reply = await self.link.action("Getvar", {"Channel": channel, "Variable": name})
            except AmiError:
                return  # the call ended already: the command stays as Asterisk logged it
            values[name] = reply.get("Value") or ""
        at, channel, command = self.commands[index]
        self.commands[index] = (at, channel, re.sub(r"\$\{(\w+)\}",
                                                    lambda m: values.get(m.group(1), ""),
                                                    command))


def heard_files(command: str, library: Path) -> list[str]:
    """The prompt ids an AGI command plays (GET DATA, STREAM FILE, EXEC Read or Playback),
    in order: every path under the library's installed tree, as center/language/id."""
    prefix = re.escape(str(library / "current") + "/")
    return [m.split("/", 2)[2] for m in re.findall(prefix + r"([^&,\"\s]+)", command)
            if m.count("/") >= 2]


def balance_reading(commands: list[str], library: Path) -> list[str]:
    """The files from ivr/balance-is up to the deposit menu, across the commands that
    played them (a long reading is split over several Playbacks and the next Read)."""
    files = [f for c in commands for f in heard_files(c, library)]
    if "ivr/balance-is" not in files:
        return []
    start = files.index("ivr/balance-is")
    end = files.index("ivr/deposit-menu", start) if "ivr/deposit-menu" in files[start:] \
        else len(files)
    return files[start:end]


async def show_call(reactor, stack) -> None:
    from core_client.demo_data import demo_identities
    from prompts import catalog
    from sandbox.sipp import SippCall, caller_stream
    from sandbox.stack import balance_call

    person = demo_identities()[0]
    if not person.id_number.endswith("X"):
        raise DemoFailed("the first demo identity no longer ends in X")
    keyed = person.id_number.replace("X", "*")
    say(f"caller 025****1234 dials 12329 and keys: 1 (普通话), 1 (缴存), 1 (余额), "
        f"ID {mask_id_number(keyed)}# (X keyed as *), password ******#, later 5 and survey 1")
    observer = AgiObserver(reactor, stack.asterisk)
    observer.link.start()
    await observer.link.when_up()
    started = time.time()
    workdir = stack.log_dir / "sipp-demo"
    workdir.mkdir(parents=True, exist_ok=True)
    audio = caller_stream(balance_call(keyed, person.password, listen_ms=LISTEN_MS),
                          workdir / "caller.pcap", tail_ms=15000)
    sipp = SippCall("127.0.0.1", stack.asterisk.sip_port, "12329", steps=[audio],
                    hangup="wait", caller="02584001234", wait_bye_ms=90000, timeout_s=90,
                    workdir=workdir, send_silence=False)
    sipp.start()
    try:
        while sipp.process.poll() is None:
            await task.deferLater(reactor, 0.2)
    finally:
        if sipp.process.poll() is None:  # cancelled (Ctrl-C): the caller hangs up too
            sipp.process.terminate()
    result = sipp.finish(timeout=5)
    try:
        record = await _closed_call(reactor, stack, started)
    finally:
        await observer.link.stop()
    say(f"sipp: {'call completed' if result.ok else 'call FAILED'}")
    if record is None:
        raise DemoFailed("no closed call record in the database")
    say("call record (from the database):")
    for key in ("uniqueid", "caller", "center", "language", "path", "keys", "identified",
                "served", "outcome", "seconds"):
        say(f"  {key:<10} {record[key]}")
    cat = catalog.load()
    balance = balance_reading([c for _t, _ch, c in observer.commands], stack.library_dir)
    if not balance:
        raise DemoFailed("the caller never heard ivr/balance-is (see the daemon log)")
    say("the balance reading the caller heard (Asterisk's AGIExecStart, in order):")
    say("  files: " + " ".join(balance))
    say("  text:  " + "".join(cat.prompts[p].text["zh"] if p in cat.prompts else f"[{p}]"
                              for p in balance))
    if not result.ok:
        raise DemoFailed(f"sipp reported an error: {result.errors.strip()[-300:]}")
    if record["outcome"] != "ivr_handled" or not record["served"]:
        raise DemoFailed(f"the call ended {record['outcome']}, served {record['served']}")


async def _closed_call(reactor, stack, since: float, limit: float = 15.0) -> dict | None:
    from sqlalchemy import select

    from ivr.tables import IvrCall
    from storage.db import Database

    db = Database(stack.db_url, reactor, 1)
    db.startService()

    def latest(session):
        row = session.scalars(select(IvrCall).where(
            IvrCall.instance == stack.instance, IvrCall.started_at >= since - 1)
            .order_by(IvrCall.id.desc())).first()
        if row is None or row.ended_at is None:
            return None
        return {"uniqueid": row.uniqueid, "caller": row.caller, "center": row.center,
                "language": row.language, "path": row.path, "keys": row.keys,
                "identified": bool(row.identified), "served": row.served,
                "outcome": row.outcome, "seconds": f"{row.ended_at - row.started_at:.1f}"}

    try:
        deadline = reactor.seconds() + limit
        while reactor.seconds() < deadline:
            row = await db.run(latest)
            if row is not None:
                return row
            await task.deferLater(reactor, 0.3)
        return None
    finally:
        db.stopService()


# ---- the SMS -----------------------------------------------------------------------

async def show_sms(reactor, stack) -> None:
    from core_client.demo_data import demo_identities
    from sandbox.stack import credit_deposit

    person = demo_identities()[DEPOSIT_ACCOUNT]
    since = time.time()
    posted = await deferToThreadPool(reactor, reactor.getThreadPool(), credit_deposit,
                                     stack.core_db, person.account_no)
    say(f"the demo core posts a deposit of {posted['amount']} yuan to account "
        f"{mask_account(person.account_no)} (journal event {posted['cursor']}); the registered "
        f"mobile is {mask_mobile(person.mobile)}")
    seen = await _follow_message(reactor, stack, since, person.mobile)
    if seen is None:
        raise DemoFailed("no alert reached a final state within 40 s (see the daemon log)")
    message, parts = seen
    counters = await deferToThreadPool(reactor, reactor.getThreadPool(), smsc_counters,
                                       stack.ismg)
    say("the CMPP ISMG (sandbox/carriers/ismg.js) counted: " + ", ".join(
        f"{k} {v}" for k, v in counters.items()))
    if message["state"] != "delivered":
        raise DemoFailed(f"the alert ended {message['state']} ({message['error']})")


async def _follow_message(reactor, stack, since: float, mobile: str, limit: float = 40.0):
    """Print the alert's state changes as the outbox records them, until a final state."""
    from sqlalchemy import select

    from sms.tables import SmsMessage, SmsPart
    from storage.db import Database

    db = Database(stack.db_url, reactor, 1)
    db.startService()

    def snapshot(session):
        m = session.scalars(select(SmsMessage).where(
            SmsMessage.created_at >= since - 1, SmsMessage.destination == mobile)
            .order_by(SmsMessage.id.desc())).first()
        if m is None:
            return None
        parts = [{"seq": p.seq, "state": p.state, "smpp_id": p.smpp_id, "smsc": p.smsc,
                  "error": p.error_code, "submitted_at": p.submitted_at, "done_at": p.done_at}
                 for p in session.scalars(select(SmsPart).where(SmsPart.message_id == m.id)
                                          .order_by(SmsPart.seq))]
        return ({"id": m.id, "template": m.template, "text": m.text, "state": m.state,
                 "klass": m.klass, "error": m.error, "created_at": m.created_at,
                 "submitted_at": m.submitted_at, "final_at": m.final_at,
                 "destination": m.destination, "part_count": m.part_count}, parts)

    try:
        start = reactor.seconds()
        last_state, shown = None, False
        while reactor.seconds() - start < limit:
            seen = await db.run(snapshot)
            if seen is not None:
                message, parts = seen
                if not shown:
                    say(f"alert accepted by the outbox: message {message['id']}, template "
                        f"{message['template']}, class {message['klass']}, to "
                        f"{mask_mobile(message['destination'])}")
                    say(f"  text: {message['text']}")
                    shown = True
                if message["state"] != last_state:
                    say(f"  +{reactor.seconds() - start:5.2f} s  message state: {message['state']}")
                    last_state = message["state"]
                if message["final_at"] is not None:
                    _print_timeline(message, parts)
                    return seen
            await task.deferLater(reactor, 0.05)
        return None
    finally:
        db.stopService()


def _print_timeline(message: dict, parts: list[dict]) -> None:
    t0 = message["created_at"]

    def at(t):
        return "-" if t is None else f"+{t - t0:.3f} s"

    say(f"state changes recorded by the outbox: queued {at(t0)}, submitted "
        f"{at(message['submitted_at'])}, {message['state']} {at(message['final_at'])}")
    for p in parts:
        say(f"  part {p['seq'] + 1}/{message['part_count']}: submitted to {p['smsc']} "
            f"{at(p['submitted_at'])}, message id {p['smpp_id']}")
        done = "-" if p["done_at"] is None else \
            time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(p["done_at"]))
        say(f"  status report for message id {p['smpp_id']}: part {p['state']}, error "
            f"{p['error'] or 'none'}, done {done}")


def smsc_counters(peer) -> dict:
    """A peer's own counters from its control API (submits, reports sent and acknowledged)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{peer.control_port}/stats",
                                timeout=2) as r:
        stats = json.loads(r.read())
    keys = ("submits", "accepted", "dlrs_sent", "dlrs_acked", "reports_sent", "reports_acked")
    return {k: stats[k] for k in keys if k in stats}
