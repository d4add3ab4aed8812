"""``hotline bench ivr``: N concurrent sipp calls through the whole balance flow, on the local stack.

Each round places N calls at once (one sipp process) that key the documented
X identity through language, deposits, balance, ID, password, listen, goodbye
and survey, against the real daemon (``sandbox.stack``). Per round it reports
calls completed (closed call records that were served the balance, and sipp's
own verdict), the daemon's CPU from /proc/<pid>/stat, and two latencies taken
on the wire and by a second AMI session that only listens (the sandbox's ``observer``
user: the daemon's own user is never sent keys):

* daemon turnaround: an ``AsyncAGIExec`` event reaching the daemon's AMI
  connection to the next ``Action: AGI`` the daemon sends for that channel, by
  kernel timestamps of a loopback capture (``WireMeter``): the daemon's own
  share, including its core lookups and database writes in between.

* AGI turnaround: ``AsyncAGIExec`` (Asterisk hands a command's result to AMI)
  to the channel's next ``AGIExecStart`` (the next command starts). It holds the
  daemon's work (including its core lookups), both AMI hops and Asterisk's
  AsyncAGI queue pickup (about 20 ms with RTP flowing): what the call waits.
* key to next prompt: the caller's last ``DTMFEnd`` before a command's result to
  the ``AGIExecStart`` of the next command that plays a prompt. Measured at
  Asterisk, not at the caller (RTP to the caller on loopback adds one 20 ms
  frame at most; it is not measured).

Nothing is instrumented in the daemon, so the bench costs nothing when off. The
first round (N = 1) is the baseline. ``--blip N`` adds a round of N calls during
which the daemon's AMI connection is killed (``ss -K``) mid-flow: every call should
resume (none meets the dialplan's fallback, counted from its UserEvent) and
complete. Results go to ``benchmarks/results/ivr.json``.
"""
from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from twisted.internet import task
from twisted.internet.endpoints import TCP4ClientEndpoint

from benchmarks.loopback_capture import TCP, LoopbackCapture

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "ivr.json"
LISTEN_MS = 30000  # the synthesised balance reading is ~20 s, partly without barge-in
# RTP keeps flowing until Asterisk hangs up (without frames its AsyncAGI pickup is ~100 ms)
TAIL_MS = 15000
CUT_AT_S = 25.0  # into a --blip round: callers are keying IDs or hearing their balance


def register_bench(bench_subparsers) -> None:
    p = bench_subparsers.add_parser("ivr", help="N concurrent sipp calls through the balance flow")
    p.add_argument("--calls", default="50,100,200",
                   help="comma-separated concurrent call counts (default 50,100,200)")
    p.add_argument("--no-baseline", action="store_true", help="skip the N = 1 round")
    p.add_argument("--rate", type=float, default=20.0, help="calls started per second")
    p.add_argument("--blip", type=int, metavar="N",
                   help="one more round of N calls with the daemon's AMI socket killed "
                        f"{CUT_AT_S:g} s after the first call (resumption)")
    p.add_argument("--callers", choices=("pcap", "stream"), default="pcap",
                   help="pcap (default): sipp plays one caller's pcap per call, a thread "
                        "each; stream: sipp holds the dialogs and the bench sends every "
                        "caller's RTP from one socket, each call a person of its own "
                        "(benchmarks/rtp_callers.py), light enough for 500 calls")
    p.add_argument("--daemon-nice", type=int, default=0, metavar="N",
                   help="run the daemon at this nice value (e.g. -5): in one process group "
                        "with Asterisk, the daemon's reactor thread competes with a thread "
                        "per call; under systemd each service is a cgroup of its own and "
                        "gets its share as a whole")
    p.add_argument("--state-dir", type=Path, default=REPO / "var" / "bench-ivr")
    p.add_argument("--log-dir", type=Path, help="default: STATE/logs")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--sms", action="store_true",
                   help="SMS on as well (an SMSC, the dispatcher and the alert job running); "
                        "by default off, so that the daemon's CPU is the IVR's alone")
    p.set_defaults(func=cmd_bench)


# ---- the measurement (pure: events in, samples out) ---------------------------------

def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]  # nearest rank


def summary_ms(samples: list[float]) -> dict:
    """count, p50, p99 and max of samples given in seconds, as milliseconds."""
    def ms(v):
        return None if v is None else round(v * 1000, 1)

    return {"count": len(samples), "p50": ms(_percentile(samples, 50)),
            "p99": ms(_percentile(samples, 99)), "max": ms(max(samples) if samples else None)}


@dataclass
class _Channel:
    result_at: float | None = None  # the last AsyncAGIExec not yet followed by a command
    key_at: float | None = None  # the last DTMFEnd since the last command started
    key_pending: float | None = None  # a key that ended the last command, awaiting a prompt


@dataclass
class TurnaroundMeter:
    """Turns AMI events (arrival time, name, channel, command) into latency samples.

    Only times are kept: digits and AGI results (which hold keyed IDs and passwords)
    are never looked at.
    """

    turnaround: list[float] = field(default_factory=list)
    key_to_prompt: list[float] = field(default_factory=list)
    channels: dict[str, _Channel] = field(default_factory=dict)

    def event(self, at: float, name: str, channel: str, command: str = "") -> None:
        ch = self.channels.setdefault(channel, _Channel())
        if name == "DTMFEnd":
            ch.key_at = at
        elif name == "AsyncAGIExec":
            ch.result_at = at
            if ch.key_at is not None:
                ch.key_pending, ch.key_at = ch.key_at, None
        elif name == "AGIExecStart":
            if ch.result_at is not None:
                self.turnaround.append(at - ch.result_at)
                ch.result_at = None
            if ch.key_pending is not None and plays_prompt(command):
                self.key_to_prompt.append(at - ch.key_pending)
                ch.key_pending = None
            ch.key_at = None
        elif name in ("AsyncAGIEnd", "Hangup"):
            self.channels.pop(channel, None)


def plays_prompt(command: str) -> bool:
    """Whether an AGI command plays audio to the caller (a Read, Playback, GET DATA...)."""
    head = command.upper()[:24]
    return any(word in head for word in ("READ", "PLAYBACK", "GET DATA", "STREAM FILE",
                                         "BACKGROUND", "CONTROL STREAM"))


# ---- the daemon's own share, from the wire ---------------------------------------------

class WireMeter:
    """The daemon's own turnaround, seen on loopback: an ``AsyncAGIExec`` event arriving
    on the daemon's AMI connection to the next ``Action: AGI`` it sends for that channel,
    by kernel timestamps (``capture``). Only event names, channel names and command verbs
    are kept; payloads (results hold keyed digits) are parsed in memory and dropped.
    """

    def __init__(self, ami_port: int):
        self.port = ami_port
        self.samples: list[float] = []
        self._buffers: dict[tuple[int, int], bytes] = {}
        self._pending: dict[tuple[int, str], float] = {}  # (client port, channel) -> time
        self._drivers: set[int] = set()  # client ports that send AGI actions
        self._last: dict[tuple[int, str], str] = {}  # (client port, channel) -> command verb
        self.by_step: dict[str, list[float]] = {}  # "verb -> next verb": turnarounds

    def capture(self) -> LoopbackCapture:
        return LoopbackCapture(TCP, self.port, "wire-meter", self.payload)

    def payload(self, at: float, sport: int, dport: int, payload: bytes) -> None:
        """One TCP payload in capture order; complete AMI messages are matched."""
        key = (sport, dport)
        buffer = self._buffers.get(key, b"") + payload
        *messages, rest = buffer.split(b"\r\n\r\n")
        self._buffers[key] = rest
        from_asterisk = sport == self.port
        client = dport if from_asterisk else sport
        for raw in messages:
            head = raw[:400]
            if from_asterisk:
                if client in self._drivers and _header(head, b"Event") == "AsyncAGIExec":
                    self._pending[(client, _header(head, b"Channel"))] = at
            elif _header(head, b"Action").upper() == "AGI":
                self._drivers.add(client)  # the daemon's session, not the listening one
                channel = (client, _header(head, b"Channel"))
                verb = " ".join(_header(head, b"Command").split()[:2])  # never the arguments
                started = self._pending.pop(channel, None)
                if started is not None:
                    self.samples.append(at - started)
                    step = f"{self._last.get(channel, '?')} -> {verb}"
                    self.by_step.setdefault(step, []).append(at - started)
                self._last[channel] = verb


def _header(message: bytes, name: bytes) -> str:
    for line in message.split(b"\r\n"):
        if line.startswith(name + b": "):
            return line[len(name) + 2:].decode(errors="replace")
    return ""


# ---- one round ------------------------------------------------------------------------

def cut_daemon_ami(pid: int, ami_port: int) -> int:
    """Kill the daemon's own AMI connections (not the bench's listening one) with
    ``ss -K``, as a network blip would; how many were found."""
    import re
    import subprocess

    listing = subprocess.run(["ss", "-tnp", "state", "established", "dport", f"= :{ami_port}"],
                             capture_output=True, text=True, check=True).stdout
    ports = [m.group(1) for line in listing.splitlines() if f"pid={pid}," in line
             for m in [re.search(rf":(\d+)\s+\S+:{ami_port}\b", line)] if m]
    for port in ports:
        subprocess.run(["ss", "-K", "sport", f"= :{port}", "dport", f"= :{ami_port}"],
                       capture_output=True, check=True)
    return len(ports)


async def run_round(reactor, stack, calls: int, rate: float, cut_at: float | None = None,
                    callers: str = "pcap") -> dict:
    from ivr.asterisk.ami_link import AmiLink
    from sandbox.asterisk import OBSERVER
    from sandbox.sipp import Pause, SippCall, Step, caller_stream
    from sandbox.stack import balance_call, cpu_seconds
    from core_client.demo_data import demo_identities

    person = demo_identities()[0]
    meter = TurnaroundMeter()
    inst = stack.asterisk
    link = AmiLink(TCP4ClientEndpoint(reactor, inst.address, inst.ami_port), OBSERVER,
                   inst.observer_secret, reactor, action_timeout=10, ping_interval=20,
                   initial_delay=0.2, max_delay=2)
    for name in ("DTMFEnd", "AsyncAGIExec", "AGIExecStart", "AsyncAGIEnd", "Hangup"):
        link.subscribe(name, lambda e, name=name: meter.event(
            reactor.seconds(), name, e.get("Channel") or "", e.get("Command") or ""))
    fallbacks = []
    link.subscribe("UserEvent", lambda e: fallbacks.append(1)
                   if e.get("UserEvent") == "HotlineFallback" else None)
    link.start()
    await link.when_up()
    workdir = stack.log_dir / f"sipp-{calls}"
    workdir.mkdir(parents=True, exist_ok=True)
    presses = balance_call(person.id_number.replace("X", "*"), person.password,
                           listen_ms=LISTEN_MS)
    streams = None
    if callers == "stream":
        streams = await start_stream_callers(reactor, inst.sip_port, stack.core_db, calls)
        script: Step = Pause(script_ms(presses, TAIL_MS))
    else:
        script = caller_stream(presses, workdir / "caller.pcap", tail_ms=TAIL_MS)
    sipp = SippCall("127.0.0.1", inst.sip_port, "12329", steps=[script], hangup="wait",
                    caller="02584001234", calls=calls, rate=max(1.0, min(rate, calls)),
                    wait_bye_ms=120000, timeout_s=60 + calls / rate + 120, workdir=workdir)
    wire = WireMeter(inst.ami_port)
    wire_capture = wire.capture()
    wire_capture.start()
    started, cpu0 = time.time(), cpu_seconds(stack.daemon.pid)
    asterisk_cpu0 = cpu_seconds(inst.process.pid)
    t0 = reactor.seconds()
    sipp.start()
    sipp_cpu = 0.0
    cut = []
    if cut_at is not None:
        from twisted.internet.threads import deferToThreadPool

        reactor.callLater(cut_at, lambda: deferToThreadPool(
            reactor, reactor.getThreadPool(), cut_daemon_ami, stack.daemon.pid,
            inst.ami_port).addCallback(cut.append))
    try:
        while sipp.process.poll() is None:
            try:
                sipp_cpu = cpu_seconds(sipp.process.pid)  # the last reading before it exits
            except OSError:
                pass
            await task.deferLater(reactor, 0.5)
        result = sipp.finish(timeout=5)
        records = await _records(reactor, stack, started, calls)
        wall = reactor.seconds() - t0
        cpu = cpu_seconds(stack.daemon.pid) - cpu0
        asterisk_cpu = cpu_seconds(inst.process.pid) - asterisk_cpu0
    finally:
        if sipp.process.poll() is None:  # cancelled (Ctrl-C)
            sipp.process.terminate()
        wire_capture.stop()
        streamed = stop_stream_callers(streams) if streams is not None else None
        await link.stop()
    handled = sum(1 for r in records if r["outcome"] == "ivr_handled" and r["served"])
    return {
        "calls": calls, "rate_per_s": sipp.rate, "sipp_ok": result.ok, "callers": callers,
        **({"caller_streams": streamed} if streamed is not None else {}),
        **({"ami_cut_at_s": cut_at, "ami_connections_cut": sum(cut),
            "met_the_fallback": len(fallbacks)} if cut_at is not None else {}),
        "completed": handled, "records": len(records),
        "outcomes": {o: sum(1 for r in records if r["outcome"] == o)
                     for o in sorted({r["outcome"] for r in records})},
        "wall_s": round(wall, 1), "daemon_cpu_s": round(cpu, 2),
        "daemon_cpu_percent_of_one_core": round(100 * cpu / wall, 1) if wall else None,
        # The rest of the machine: is the bound the daemon, Asterisk or the callers?
        "asterisk_cpu_s": round(asterisk_cpu, 2), "sipp_cpu_s": round(sipp_cpu, 2),
        "daemon_turnaround_ms": summary_ms(wire.samples),
        # Where the tail is: by the command answered and the one that followed.
        "daemon_turnaround_by_step_ms": {step: summary_ms(v) for step, v in sorted(
            wire.by_step.items(), key=lambda kv: -max(kv[1]))},
        "agi_turnaround_ms": summary_ms(meter.turnaround),
        "key_to_next_prompt_ms": summary_ms(meter.key_to_prompt),
    }


def renice(pid: int, nice: int) -> None:
    """Every thread of ``pid`` at ``nice`` (Linux sets it per thread; threads started
    later inherit their starter's)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.setpriority(os.PRIO_PROCESS, int(tid), nice)


def script_ms(presses: list[tuple[int, str]], tail_ms: int) -> int:
    """How long a caller's script lasts (each key's wait, 160 ms a key, the tail)."""
    return sum(after for after, _ in presses) + 160 * len(presses) + tail_ms


async def start_stream_callers(reactor, sip_port: int, core_db: Path, calls: int):
    """``benchmarks.rtp_callers`` in a process of its own, once it listens."""
    import subprocess

    from twisted.internet.threads import deferToThreadPool

    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.rtp_callers", "--sip-port", str(sip_port),
         "--core-db", str(core_db), "--calls", str(calls), "--listen-ms", str(LISTEN_MS),
         "--tail-ms", str(TAIL_MS)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = await deferToThreadPool(reactor, reactor.getThreadPool(), process.stdout.readline)
    if line.strip() != "ready":
        process.kill()
        raise SystemExit(f"the stream callers did not start: {line!r}")
    return process


def stop_stream_callers(process) -> dict:
    """SIGTERM, then what the callers sent (their last line)."""
    process.terminate()
    out, _ = process.communicate(timeout=10)
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


async def _records(reactor, stack, since: float, calls: int, limit: float = 30.0) -> list[dict]:
    """This round's call records, once all are closed (or after ``limit`` seconds)."""
    from sqlalchemy import select

    from ivr.tables import IvrCall
    from storage.db import Database

    db = Database(stack.db_url, reactor, 1)
    db.startService()

    def rows(session):
        return [{"outcome": r.outcome, "served": r.served, "ended_at": r.ended_at}
                for r in session.scalars(select(IvrCall).where(
                    IvrCall.instance == stack.instance, IvrCall.started_at >= since - 1))]

    try:
        deadline = reactor.seconds() + limit
        while True:
            found = await db.run(rows)
            closed = [r for r in found if r["ended_at"] is not None]
            if len(closed) >= calls or reactor.seconds() > deadline:
                return closed
            await task.deferLater(reactor, 0.5)
    finally:
        db.stopService()


# ---- the command ------------------------------------------------------------------------

def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(
            f"hotline bench ivr: --calls takes numbers like 50,100,200, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise SystemExit("hotline bench ivr: --calls needs positive numbers")
    return counts


def format_table(rounds: list[dict]) -> str:
    head = (f"{'calls':>5} {'done':>5} {'sipp':>4} {'wall s':>7} {'cpu s':>6} {'cpu %':>6} "
            f"{'dmn p50':>8} {'dmn p99':>8} {'agi p50':>8} {'agi p99':>8} "
            f"{'key p50':>8} {'key p99':>8}")
    lines = [head, "-" * len(head)]
    for r in rounds:
        d, a, k = (r["daemon_turnaround_ms"], r["agi_turnaround_ms"],
                   r["key_to_next_prompt_ms"])
        lines.append(f"{r['calls']:>5} {r['completed']:>5} {'ok' if r['sipp_ok'] else 'err':>4} "
                     f"{r['wall_s']:>7} {r['daemon_cpu_s']:>6} "
                     f"{r['daemon_cpu_percent_of_one_core']:>6} {d['p50']!s:>8} {d['p99']!s:>8} "
                     f"{a['p50']!s:>8} {a['p99']!s:>8} {k['p50']!s:>8} {k['p99']!s:>8}"
                     + (f"  AMI cut at {r['ami_cut_at_s']:g} s ({r['ami_connections_cut']}), "
                        f"{r['met_the_fallback']} met the fallback"
                        if "ami_cut_at_s" in r else ""))
    lines.append("latencies in ms; dmn = AsyncAGIExec reaching the daemon -> its next AGI "
                 "action (loopback capture); agi = AsyncAGIExec -> next AGIExecStart and key = "
                 "last DTMFEnd -> next prompt's AGIExecStart (a listening AMI session)")
    return "\n".join(lines)


def cmd_bench(args) -> int:
    from sandbox.demo import interrupt_on_sigterm, run_on_fresh_reactor
    from sandbox.stack import Stack, StackError

    interrupt_on_sigterm()
    counts = ([] if args.no_baseline else [1]) + _counts(args.calls)
    log_dir = args.log_dir or args.state_dir / "logs"

    async def main(reactor):
        rounds = []
        for n, cut_at in [(n, None) for n in counts] + ([(args.blip, CUT_AT_S)]
                                                       if args.blip else []):
            print(f"round: {n} concurrent calls"
                  + (f", the daemon's AMI socket killed at {cut_at:g} s" if cut_at else ""),
                  flush=True)
            rounds.append(await run_round(reactor, stack, n, args.rate, cut_at,
                                          callers=args.callers))
            print(format_table(rounds[-1:]).splitlines()[2], flush=True)
        return rounds

    try:
        # SMS off by default: the IVR alone is measured.
        biggest = max(counts + ([args.blip] if args.blip else []))
        with Stack(args.state_dir, log_dir, rtp_ports=max(1000, 4 * biggest + 200),
                   sms=args.sms, say=lambda line: print(line, flush=True)) as stack:
            if args.daemon_nice:
                renice(stack.daemon.pid, args.daemon_nice)
            rounds = run_on_fresh_reactor(main, timeout=sum(180 + n for n in counts)
                                          + (180 + args.blip if args.blip else 0))
    except StackError as e:
        print(f"hotline bench ivr: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("hotline bench ivr: interrupted; everything was stopped", file=sys.stderr)
        return 130
    report = {
        "benchmark": "ivr", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "sms": "on" if args.sms else "off",
        "callers": args.callers, "daemon_nice": args.daemon_nice,
        "call": "language 1, deposits 1, balance 1, ID (X as *) #, password #, "
                f"{LISTEN_MS // 1000} s listening, 5 goodbye, survey 1",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "rounds": rounds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n")
    print(format_table(rounds))
    print(f"written to {args.out}")
    return 0 if all(r["completed"] == r["calls"] and not r.get("met_the_fallback")
                    for r in rounds) else 1
