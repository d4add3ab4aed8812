"""Kamailio (Debian ``kamailio``) as the SIP balancer in front of several Asterisk nodes.

``Balancer(workdir, nodes, address, port)`` renders a small kamailio.cfg: the
dispatcher module holds the nodes in set 1, sends each new INVITE to the next
active one (round robin), probes every node with OPTIONS each second and stops
sending to one that does not answer (``ds_probing_mode=1``); an INVITE a node
leaves unanswered is marked down and retried on the next node (failure_route).
In-dialog requests follow Record-Route; callers that ignore it (sipp's scenario
sends ACK and BYE to the balancer's address) are sent to the node their
Call-ID went to, remembered in an htable. ``states()`` reads the dispatcher's
view through kamcmd (``dispatcher.list``).

CLI: ``python -m sandbox.kamailio start --dir D --node 127.0.0.2:5060 --node ...``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.ports import free_port

MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")

CONFIG = """#!KAMAILIO
# Rendered by sandbox/kamailio.py: a stateful balancer over dispatcher set 1.
debug=2
log_stderror=no
log_facility=LOG_LOCAL0
children=2
disable_tcp=yes
listen=udp:{address}:{port}
mpath="{modules}"
alias="{address}:{port}"

loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "htable.so"
loadmodule "ctl.so"
loadmodule "jsonrpcs.so"
loadmodule "dispatcher.so"

modparam("ctl", "binrpc", "unix:{workdir}/kamailio_ctl")
modparam("jsonrpcs", "transport", 0)
modparam("htable", "htable", "calls=>size=10;autoexpire=7200;")
modparam("dispatcher", "list_file", "{workdir}/dispatcher.list")
modparam("dispatcher", "ds_ping_method", "OPTIONS")
modparam("dispatcher", "ds_ping_from", "sip:balancer@{address}:{port}")
modparam("dispatcher", "ds_ping_interval", 1)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_probing_threshold", 1)
modparam("dispatcher", "ds_inactive_threshold", 1)
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 60000)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            t_relay();
            exit;
        }}
        # A caller that ignored Record-Route: the node its Call-ID went to.
        if ($sht(calls=>$ci) != $null) {{
            $du = $sht(calls=>$ci);
            t_relay();
            exit;
        }}
        if (is_method("ACK") && t_check_trans()) {{
            t_relay();
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) t_relay();
        exit;
    }}
    if (is_method("OPTIONS") && uri == myself) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (!is_method("INVITE")) {{
        sl_send_reply("405", "Method Not Allowed");
        exit;
    }}
    record_route();
    if (!ds_select_dst("1", "4")) {{
        xlog("L_WARN", "no Asterisk node active for $ci\\n");
        sl_send_reply("503", "No Asterisk node available");
        exit;
    }}
    $sht(calls=>$ci) = $du;
    xlog("L_INFO", "new call $ci to $du\\n");
    t_on_failure("NEXT_NODE");
    t_relay();
}}

failure_route[NEXT_NODE] {{
    if (t_is_canceled()) exit;
    if (t_check_status("408|500|503") || t_branch_timeout()) {{
        ds_mark_dst("ip");
        if (ds_next_dst()) {{
            $sht(calls=>$ci) = $du;
            xlog("L_WARN", "node did not answer $ci; trying $du\\n");
            t_on_failure("NEXT_NODE");
            t_relay();
        }}
    }}
}}
"""


class KamailioError(Exception):
    """Kamailio is not installed, or did not start."""


@dataclass
class Balancer:
    workdir: Path
    nodes: list[str]  # host:port of each Asterisk node's SIP
    address: str = "127.0.0.1"
    port: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    def render(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.address, kind=socket.SOCK_DGRAM)
        (self.workdir / "dispatcher.list").write_text(
            "".join(f"1 sip:{node}\n" for node in self.nodes))
        cfg = self.workdir / "kamailio.cfg"
        cfg.write_text(CONFIG.format(address=self.address, port=self.port, modules=MODULES,
                                     workdir=self.workdir))
        return cfg

    def start(self, timeout: float = 10.0) -> Balancer:
        if shutil.which("kamailio") is None:
            raise KamailioError("kamailio is not installed (apt-get install kamailio)")
        cfg = self.render()
        check = subprocess.run(["kamailio", "-c", "-f", str(cfg)], capture_output=True, text=True)
        if check.returncode != 0:
            raise KamailioError(f"kamailio.cfg rejected: {check.stderr[-2000:]}")
        log = open(self.workdir / "kamailio.log", "ab")
        # -DD: stay in the foreground with children; -E: log to stderr (our log file).
        self.process = subprocess.Popen(
            ["kamailio", "-DD", "-E", "-f", str(cfg), "-P", str(self.workdir / "kamailio.pid"),
             "-Y", str(self.workdir), "-m", "32", "-M", "8"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise KamailioError(f"kamailio exited; see {self.workdir / 'kamailio.log'}")
            if (self.workdir / "kamailio_ctl").exists():
                try:
                    self.states()
                    return self
                except KamailioError:
                    pass
            time.sleep(0.2)
        raise KamailioError(f"kamailio not ready in {timeout} s")

    def states(self) -> dict[str, str]:
        """Each node's dispatcher flags: ``AP`` active and probed, ``IP``/``TP`` down."""
        done = subprocess.run(["kamcmd", "-s", f"unix:{self.workdir / 'kamailio_ctl'}",
                               "dispatcher.list"], capture_output=True, text=True, timeout=5)
        if done.returncode != 0:
            raise KamailioError(done.stderr.strip() or done.stdout.strip())
        states, uri = {}, None
        for line in done.stdout.splitlines():
            line = line.strip()
            if line.startswith("URI:"):
                uri = line.split("sip:", 1)[1]
            elif line.startswith("FLAGS:") and uri:
                states[uri] = line.split(":", 1)[1].strip()
        return states

    def wait_state(self, node: str, active: bool, timeout: float = 10.0) -> float:
        """Seconds until the dispatcher sees ``node`` active (or not)."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.states().get(node, "").startswith("A") == active:
                return time.monotonic() - start
            time.sleep(0.1)
        raise KamailioError(f"{node} not {'active' if active else 'inactive'} in {timeout} s: "
                            f"{self.states()}")

    def stop(self, timeout: float = 5.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kamailio")
    parser.add_argument("action", choices=("start", "states"))
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--node", action="append", default=[], help="host:port of an Asterisk")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5060)
    args = parser.parse_args(argv)
    balancer = Balancer(args.dir.resolve(), args.node, args.address, args.port)
    if args.action == "states":
        print(json.dumps(balancer.states(), indent=2))
        return 0
    balancer.start()
    print(f"kamailio on udp {args.address}:{balancer.port} in front of {', '.join(args.node)}; "
          f"pid {balancer.process.pid}, log {args.dir / 'kamailio.log'}")
    return balancer.process.wait()


if __name__ == "__main__":
    sys.exit(main())
