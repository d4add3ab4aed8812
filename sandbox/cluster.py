"""The platform as a cluster on loopback: PostgreSQL primary and synchronous standby, two
Asterisk nodes behind Kamailio, one SMSC, and two daemons that both drive both nodes.

``Cluster(state_dir, log_dir)`` is a context manager, like ``sandbox.stack.Stack``:

- PostgreSQL: ``sandbox.postgres.ReplicatedPostgres`` (under /tmp, which the
  ``postgres`` user can reach); the daemons use its multi-host URL.
- Asterisk node A on 127.0.0.2 and node B on 127.0.0.3, sharing one AMI secret;
  node A's calls go to daemon ``hotline-a`` while its heartbeat is fresh, else to
  ``hotline-b``, node B's the other way round (the dialplan's ``instances``), each
  daemon with its own heartbeat variable, written every second and stale after 3 s;
  with neither fresh, new callers go to the fallback instead of an AGI nobody drives.
  A daemon killed mid-call has its calls adopted by the other (ivr.asterisk.adoption)
  once its lease lapsed.
- Kamailio on 127.0.0.1 (``sandbox.kamailio.Balancer``): where callers dial.
- Daemons ``hotline-a`` and ``hotline-b``: one INI each (own state folder, send
  journal and HTTP port), the same database, prompt library, demo core and SMSC,
  ``[ami] endpoint`` listing both nodes, ``lease_ttl = 1.5`` (a dead daemon's calls are
  adopted within 3 s of its death); the SMSC's one bind is a connection slot only one
  of them holds at a time.

Ready means: each daemon's /healthz answers and the database's ``cluster_instance``
shows both alive with both AMI links up. CLI: ``python -m sandbox.cluster --dir D``
starts it and prints how to reach each part, until Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.asterisk import AsteriskInstance, is_built, root_path
from sandbox.kamailio import Balancer
from sandbox.ports import free_port, free_udp_range
from sandbox.postgres import ReplicatedPostgres
from sandbox.stack import (CENTER, CONFIG, CONSOLE_LOGINS, REPO, Smsc, StackError, _terminate, ami_blocks,
                           latest_event, start_smsc)

NODES = {"a": "127.0.0.2", "b": "127.0.0.3"}
# A dead daemon's heartbeat is stale (new calls go to the other) within 3-4 s; before
# that the daemon adopting its calls takes them (ivr.asterisk.adoption).
HEARTBEAT_INTERVAL = 1
HEARTBEAT_MAX_AGE = 3


class EventTap:
    """AMI events of the kinds asked for, from every node, as (monotonic time, node, headers),
    read by one thread per node on its own manager session: what callers hear, as Asterisk
    saw it, for tests that measure silence and takeovers."""

    def __init__(self, cluster: Cluster, kinds: set[str]):
        self.kinds = {k.lower() for k in kinds}
        self.events: list[tuple[float, str, dict[str, str]]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._read, daemon=True,
                                          args=(node, inst, cluster.ami_secret))
                         for node, inst in cluster.asterisks.items()]
        self._ready = threading.Barrier(len(self._threads) + 1, timeout=10)

    def __enter__(self) -> EventTap:
        for thread in self._threads:
            thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)

    def _read(self, node: str, inst: AsteriskInstance, secret: str) -> None:
        with socket.create_connection((inst.address, inst.ami_port), timeout=5) as s:
            s.sendall(f"Action: Login\r\nUsername: {inst.ami_username}\r\nSecret: {secret}"
                      "\r\nEvents: agi,user\r\n\r\n".encode())
            s.settimeout(0.2)
            self._ready.wait()
            buffer = b""
            while not self._stop.is_set():
                try:
                    chunk = s.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                buffer += chunk
                *blocks, buffer = buffer.split(b"\r\n\r\n")
                now = time.monotonic()
                for block in blocks:
                    headers = dict(line.split(": ", 1) for line in
                                   block.decode(errors="replace").split("\r\n") if ": " in line)
                    if headers.get("Event", "").lower() in self.kinds:
                        self.events.append((now, node, headers))


@dataclass
class Daemon:
    name: str
    config: Path
    http_port: int
    heartbeat_variable: str
    process: subprocess.Popen | None = None


@dataclass
class Cluster:
    state_dir: Path
    log_dir: Path
    persons: int = 2000
    lease_ttl: float = 1.5
    smsc_kind: str = "auto"  # sandbox.stack.start_smsc: "sim" counts duplicates
    say: object = print
    pg: ReplicatedPostgres | None = None
    smsc: Smsc | None = None
    asterisks: dict[str, AsteriskInstance] = field(default_factory=dict)
    balancer: Balancer | None = None
    daemons: dict[str, Daemon] = field(default_factory=dict)
    ami_secret: str = field(default_factory=lambda: secrets.token_hex(12))

    def __post_init__(self):
        self.state_dir = Path(self.state_dir).resolve()
        self.log_dir = Path(self.log_dir).resolve()
        self.shared = self.state_dir / "shared"
        self.core_db = self.shared / "core-demo.db"

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def db_url(self) -> str:
        return self.pg.url()

    # ---- start -------------------------------------------------------------------------
    def start(self) -> None:
        if os.geteuid() != 0:
            raise StackError("the cluster needs root (Asterisk runs chrooted with bind mounts)")
        if not is_built(root_path()):
            raise StackError(f"no Asterisk root at {root_path()}: run sandbox/setup.sh")
        for folder in (self.shared / "prompts" / "incoming", self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.core_db.exists():
            from core_client.demo_data import generate

            self.say(f"generating the demo core ({self.persons} synthetic persons)")
            generate(self.core_db, persons=self.persons)
        self.pg = ReplicatedPostgres.start()
        self.say(f"PostgreSQL: primary :{self.pg.primary.port}, synchronous standby "
                 f":{self.pg.standby.port} ({self.pg.primary.datadir.parent})")
        self.smsc = start_smsc(self.log_dir, self.smsc_kind)
        self.say(f"SMSC: {self.smsc.kind} on 127.0.0.1:{self.smsc.port}")
        for node, address in NODES.items():
            # This node's own daemon first, then the others: each daemon drives its own
            # node's calls while it lives.
            order = [node] + [n for n in NODES if n != node]
            instances = "&".join(f"hotline-{n}/{self.heartbeat_variable(n)}" for n in order)
            inst = AsteriskInstance(
                root_path(), self.state_dir / f"asterisk-{node}", ami_port=free_port(address),
                sip_port=free_port(address, kind=socket.SOCK_DGRAM),
                rtp_range=free_udp_range(400, address), address=address,
                bind_mounts=[str(self.shared)], ami_secret=self.ami_secret, owner=os.getpid(),
                variables={"instance": f"hotline-{node}", "center": CENTER,
                           "caller_match": "127.0.0.1", "office_hours": "*,*,*,*",
                           "instances": instances,
                           "heartbeat_max_age": str(HEARTBEAT_MAX_AGE)})
            self.asterisks[node] = inst.start()
            self.say(f"Asterisk node {node}: AMI {inst.endpoint}, SIP udp {address}:{inst.sip_port}")
        self.balancer = Balancer(self.state_dir / "kamailio",
                                 [self.sip_node(n) for n in NODES]).start()
        for node in NODES:
            self.balancer.wait_state(self.sip_node(node), True)
        self.say(f"Kamailio: callers dial udp 127.0.0.1:{self.balancer.port}")
        for node in NODES:
            self.daemons[node] = self._write_config(node)
        first = self.daemons["a"].config
        self.hotline("db", "upgrade", "--config", str(first))
        self._start_alerts_at_the_journal_end()
        self.say("default prompts: building what is missing (espeak-ng)")
        self.hotline("prompts", "build-defaults", "--config", str(first))
        for node in NODES:
            self.start_daemon(node)
        self.wait_ready()

    def _start_alerts_at_the_journal_end(self) -> None:
        """As in the single stack: the generated history is not texted out."""
        from sms.tables import SmsAlertCursor
        from storage.db import Database

        db = Database(self.db_url, None, 1)
        try:
            db.run_sync(lambda s: s.merge(SmsAlertCursor(center=CENTER,
                                                         cursor=latest_event(self.core_db),
                                                         updated_at=time.time())))
        finally:
            db.engine.dispose()

    @staticmethod
    def heartbeat_variable(node: str) -> str:
        return f"HOTLINE_HEARTBEAT_{node.upper()}"

    def sip_node(self, node: str) -> str:
        return f"{NODES[node]}:{self.asterisks[node].sip_port}"

    def _write_config(self, node: str) -> Daemon:
        state = self.state_dir / f"daemon-{node}"
        state.mkdir(parents=True, exist_ok=True)
        daemon = Daemon(f"hotline-{node}", state / "hotline.ini", free_port(),
                        self.heartbeat_variable(node))
        endpoints = "\n  ".join(inst.endpoint for inst in self.asterisks.values())
        text = CONFIG.format(
            instance=daemon.name, state=state, log_dir=self.log_dir, http_port=daemon.http_port,
            center=CENTER, core_db=self.core_db, ami_endpoint=endpoints, system_id="hotline",
            sms_enabled="yes", smpp_port=self.smsc.port, console_port=free_port(), extra="",
            cmpp_port=free_port(), cmpp_sp_id="", console_logins=CONSOLE_LOGINS)
        # The cluster sends through its one SMPP SMSC: no carrier link in this configuration.
        text = text[:text.index("; China Mobile's numbers")] + text[text.index("[prompts]"):]
        text = text.replace(f"log_file = {self.log_dir}/daemon.log",
                            f"log_file = {self.log_dir}/daemon-{node}.log")
        text = text.replace(f"url = sqlite:///{state}/hotline.db", f"url = {self.db_url}")
        text = text.replace("shutdown_timeout = 5",
                            f"shutdown_timeout = 5\nlease_ttl = {self.lease_ttl:g}")
        text = text.replace("heartbeat_interval = 2", f"heartbeat_interval = {HEARTBEAT_INTERVAL}\n"
                            f"heartbeat_variable = {daemon.heartbeat_variable}")
        # A bind whose slot another daemon holds retries often enough to take it over
        # within seconds of that daemon's lease lapsing.
        text = text.replace("source_addr = 12329", "source_addr = 12329\nreconnect_max = 1")
        text = text.replace(f"library_dir = {state}/prompts",
                            f"library_dir = {self.shared}/prompts")
        text = text.replace(f"recording_dir = {state}/prompts/incoming",
                            f"recording_dir = {self.shared}/prompts/incoming")
        daemon.config.write_text(text, "utf-8")
        return daemon

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ, PYTHONUNBUFFERED="1", HOTLINE_AMI_SECRET=self.ami_secret,
                   HOTLINE_SMPP_PASSWORD_LOCAL=self.smsc.password)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        return env

    def hotline(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run([sys.executable, str(REPO / "daemon.py"), *args], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=timeout)
        with open(self.log_dir / "commands.log", "a") as log:
            log.write(f"$ hotline {' '.join(args)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise StackError(f"hotline {' '.join(args[:2])} failed ({done.returncode}): "
                             f"{done.stderr.strip()[-800:]}")
        return done.stdout

    def start_daemon(self, node: str) -> None:
        daemon = self.daemons[node]
        out = open(self.log_dir / f"daemon-{node}.out", "ab")
        daemon.process = subprocess.Popen(
            [sys.executable, str(REPO / "daemon.py"), "run", "--config", str(daemon.config)],
            cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.say(f"daemon {daemon.name}: pid {daemon.process.pid}, HTTP :{daemon.http_port}")

    def kill_daemon(self, node: str) -> None:
        """SIGKILL, as a lost machine: no clean leave, its leases lapse."""
        daemon = self.daemons[node]
        daemon.process.kill()
        daemon.process.wait(10)
        daemon.process = None

    def channel_owners(self, variable: str = "HOTLINE_AGI") -> dict[tuple[str, str], str]:
        """(node, uniqueid) of every channel on the live nodes -> the daemon its HOTLINE_AGI
        names ('' when none drives it), or another of manager.conf's channelvars, over one
        blocking AMI session per node."""
        owners = {}
        for node, inst in self.asterisks.items():
            if inst.process is None or inst.process.poll() is not None:
                continue
            blocks = ami_blocks(inst.address, inst.ami_port, inst.ami_username,
                                self.ami_secret, "Action: CoreShowChannels\r\n\r\n",
                                b"CoreShowChannelsComplete", timeout=5)
            for block in blocks:
                headers = dict(block)
                if headers.get("Event") == "CoreShowChannel":
                    held = [value.partition("=")[2] for name, value in block
                            if name == "ChanVariable" and value.startswith(f"{variable}=")]
                    owners[(node, headers.get("Uniqueid", ""))] = held[0] if held else ""
        return owners

    def smsc_stats(self) -> dict:
        """The SMSC's own counters (GET /stats on its control port)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.smsc.control_port}/stats",
                                    timeout=5) as r:
            return json.loads(r.read())

    def status(self):
        """The cluster as the database sees it (storage.cluster.read_state)."""
        from storage.cluster import read_state
        from storage.db import Database

        db = Database(self.db_url, None, 1, reconnect_for=60)
        try:
            return db.run_sync(read_state)
        finally:
            db.engine.dispose()

    def ready(self) -> dict[str, bool]:
        states = {}
        alive = {i.instance: i for i in self.status().instances if i.alive}
        for node, daemon in self.daemons.items():
            if daemon.process is None:
                continue
            if daemon.process.poll() is not None:
                raise StackError(f"daemon {daemon.name} exited ({daemon.process.returncode}): "
                                 f"see {self.log_dir / f'daemon-{node}.out'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{daemon.http_port}/healthz",
                                            timeout=1) as r:
                    http = r.status == 200
            except (urllib.error.URLError, OSError):
                http = False
            row = alive.get(daemon.name)
            links = row.status.get("ivr", {}).values() if row else ()
            states[daemon.name] = http and len(links) == len(NODES) and all(
                link["ami"] == "up" for link in links)
        return states

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        states: dict[str, bool] = {}
        while time.monotonic() < deadline:
            states = self.ready()
            if states and all(states.values()):
                self.say("cluster ready: " + ", ".join(states) + " alive, AMI up on both nodes")
                return
            time.sleep(0.5)
        raise StackError(f"cluster not ready in {timeout:g} s: {states}")

    # ---- stop --------------------------------------------------------------------------
    def stop(self) -> None:
        for daemon in self.daemons.values():
            if daemon.process is not None:
                _terminate(daemon.process, 15)
                daemon.process = None
        if self.balancer is not None:
            self.balancer.stop()
            self.balancer = None
        for node, inst in list(self.asterisks.items()):
            inst.stop()
            target = self.log_dir / f"asterisk-{node}"
            target.mkdir(exist_ok=True)
            for path in [inst.host_dir / "asterisk.out", *inst.log_dir.glob("*")]:
                if path.is_file():
                    shutil.copyfile(path, target / path.name)
        self.asterisks.clear()
        if self.smsc is not None:
            self.smsc.stop()
            self.smsc = None
        if self.pg is not None:
            for server in (self.pg.primary, self.pg.standby):
                log = server.datadir / "server.log"
                if log.exists():
                    shutil.copyfile(log, self.log_dir / f"postgres-{server.datadir.name}.log")
            self.pg.stop(remove=True)
            self.pg = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.cluster",
                                     description="the loopback cluster, until Ctrl-C")
    parser.add_argument("--dir", type=Path, default=REPO / "var" / "cluster")
    args = parser.parse_args(argv)
    with Cluster(args.dir, args.dir / "logs") as cluster:
        print(f"database URL: {cluster.db_url}")
        for daemon in cluster.daemons.values():
            print(f"{daemon.name}: hotline cluster status -c {daemon.config}")
        print("Ctrl-C stops everything")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
