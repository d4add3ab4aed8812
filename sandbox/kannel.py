"""Kannel (Debian ``kannel``: bearerbox + smsbox) as a real ESME binding to the door's SMPP
server, for e2e tests and the door bench's anchor. The city system's side: ``send`` is
smsbox's ``sendsms`` HTTP interface with a ``dlr-url``; ``DlrCollector`` receives Kannel's
delivery-report calls. Blocking code, for fixtures and command-line tools."""
from __future__ import annotations

import secrets
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox.ports import free_port, wait_for_port

TEMPLATE = Path(__file__).with_name("kannel") / "door.conf.template"


def available() -> bool:
    return bool(shutil.which("bearerbox") or Path("/usr/sbin/bearerbox").exists())


class DlrCollector:
    """Kannel's dlr-url target: records (ref, type) for each report it is sent."""

    def __init__(self):
        self.reports: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                with collector.lock:
                    collector.reports.append((query.get("ref", [""])[0],
                                              int(query.get("type", ["0"])[0])))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args):
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Kannel:
    """bearerbox and smsbox with a configuration binding to ``smpp_port`` as ``system_id``."""

    def __init__(self, work_dir: Path, log_dir: Path, smpp_port: int, system_id: str,
                 password: str, sender: str = "1232901", window: int = 10):
        self.work_dir, self.log_dir = Path(work_dir), Path(log_dir)
        self.admin_port, self.smsbox_port, self.sendsms_port = free_port(), free_port(), \
            free_port()
        self.admin_password = secrets.token_hex(6)
        self.sendsms_password = secrets.token_hex(6)
        self.config = self.work_dir / "kannel.conf"
        self.config.write_text(TEMPLATE.read_text().format(
            admin_port=self.admin_port, admin_password=self.admin_password,
            smsbox_port=self.smsbox_port, sendsms_port=self.sendsms_port,
            work_dir=self.work_dir, smpp_port=smpp_port, system_id=system_id,
            password=password, window=window, sender=sender,
            sendsms_password=self.sendsms_password))
        self.processes: list[subprocess.Popen] = []

    def start(self, timeout: float = 30) -> None:
        for box in ("bearerbox", "smsbox"):
            out = open(self.log_dir / f"kannel-{box}.out", "ab")
            self.processes.append(subprocess.Popen(
                [shutil.which(box) or f"/usr/sbin/{box}", "-v", "4", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True))
            out.close()
            if box == "bearerbox" and not wait_for_port("127.0.0.1", self.smsbox_port, timeout):
                raise RuntimeError(f"bearerbox did not start; see {self.log_dir}")
        if not wait_for_port("127.0.0.1", self.sendsms_port, timeout):
            raise RuntimeError(f"smsbox did not start; see {self.log_dir}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "online" in self.status():
                return
            time.sleep(0.3)
        raise RuntimeError(f"Kannel's SMSC link to the door did not come online: "
                           f"{self.status()[-400:]}")

    def status(self) -> str:
        url = (f"http://127.0.0.1:{self.admin_port}/status.txt?"
               f"password={self.admin_password}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def send(self, to: str, text: str, dlr_port: int, ref: str) -> int:
        """sendsms as UCS2 with a delivery report to ``dlr_port``; the HTTP status."""
        dlr = f"http://127.0.0.1:{dlr_port}/dlr?ref={ref}&type=%d"
        query = urllib.parse.urlencode({
            "username": "city", "password": self.sendsms_password, "to": to, "text": text,
            "charset": "UTF-8", "coding": "2", "dlr-mask": "3", "dlr-url": dlr})
        url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms?{query}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        self.processes = []
