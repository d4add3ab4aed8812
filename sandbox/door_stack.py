"""The daemon with its SMS door on loopback, without Asterisk: for the door's e2e tests,
the README demo of a city system and the door benches.

``DoorStack(state_dir, log_dir, smsc_port)`` writes a configuration (HTTP API, SMS with one
SMSC link, ``[sms.door]`` with an SMPP server), migrates the database, adds a client with
``hotline door client add`` (its secrets in the daemon's environment only), and runs
``daemon.py run`` until ``/healthz`` answers and the SMSC link is bound. ``CallbackReceiver``
is a city system's callback URL that can refuse its first answers. Blocking code, for
fixtures and command-line tools.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sandbox.ports import free_port

REPO = Path(__file__).resolve().parents[1]
CLIENT = "city-loans"
SYSTEM_ID = "cityloans"

CONFIG = """\
; Written by sandbox/door_stack.py; secrets come from the environment.
[daemon]
instance = door{tag}
state_dir = {state}
log_format = json
log_file = {log_dir}/daemon.log
log_level = info
shutdown_timeout = 5
[database]
url = {db_url}
threads = 4
[http]
enabled = yes
listen = tcp:port={http_port}:interface=127.0.0.1
[center:demo]
name = 示例市住房公积金管理中心
signature = 示例公积金
core = embedded
core_db = {state}/core-demo.db
[ami]
enabled = no
[sms]
alerts_interval = 3600
per_destination_per_hour = 1000000
[sms.quiet_hours]
transaction = none
bulk = none
[sms.door]
smpp_listen = tcp:{smpp_port}:interface=127.0.0.1
duplicate_window = {duplicate_window}
callback_retry_base = 0.2
callback_retry_max = 1
callback_timeout = 2
[smsc:local]
endpoint = tcp:host=127.0.0.1:port={smsc_port}
system_id = hotline
password = env:HOTLINE_SMPP_PASSWORD_LOCAL
source_addr = 12329
window = 64
reconnect_min = 0.1
reconnect_max = 1
"""


class DoorStack:
    """The daemon with the door, one client, and the way to call it as that client."""

    def __init__(self, state_dir: Path, log_dir: Path, smsc_port: int, *,
                 smsc_password: str = "secret", db_url: str | None = None,
                 callback_url: str | None = None, duplicate_window: float = 86400,
                 rate: int = 100_000, quota: int = 10_000_000, persons: int = 50):
        self.state_dir, self.log_dir = Path(state_dir).resolve(), Path(log_dir).resolve()
        self.http_port, self.smpp_port = free_port(), free_port()
        self.secret = secrets.token_hex(16)
        self.smpp_password = secrets.token_hex(4)  # SMPP passwords are at most 8 characters
        self.smsc_port, self.smsc_password = smsc_port, smsc_password
        self.db_url = db_url or f"sqlite:///{self.state_dir}/hotline.db"
        self.callback_url, self.rate, self.quota = callback_url, rate, quota
        self.duplicate_window, self.persons = duplicate_window, persons
        self.config_path = self.state_dir / "hotline.ini"
        self.daemon: subprocess.Popen | None = None

    @property
    def env(self) -> dict:
        env = dict(os.environ, PYTHONUNBUFFERED="1", DOOR_CITY_LOANS=self.secret,
                   DOOR_CITY_LOANS_SMPP=self.smpp_password,
                   HOTLINE_SMPP_PASSWORD_LOCAL=self.smsc_password)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        return env

    def hotline(self, *args: str) -> str:
        done = subprocess.run([sys.executable, str(REPO / "daemon.py"), *args], cwd=REPO,
                              env=self.env, capture_output=True, text=True, timeout=300)
        with open(self.log_dir / "commands.log", "a") as log:
            log.write(f"$ hotline {' '.join(args)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise RuntimeError(f"hotline {' '.join(args[:3])} failed: {done.stderr[-800:]}")
        return done.stdout

    def prepare(self) -> None:
        """Config, migrations, the demo core and the client; the daemon is not started."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        from core_client.demo_data import generate

        if not (self.state_dir / "core-demo.db").exists():
            generate(self.state_dir / "core-demo.db", persons=self.persons)
        self.config_path.write_text(CONFIG.format(
            tag=secrets.token_hex(3), state=self.state_dir, log_dir=self.log_dir,
            db_url=self.db_url, http_port=self.http_port, smpp_port=self.smpp_port,
            smsc_port=self.smsc_port, duplicate_window=self.duplicate_window), "utf-8")
        self.hotline("db", "upgrade", "--config", str(self.config_path))
        args = ["door", "client", "add", CLIENT, "--center", "demo", "--secret-env",
                "DOOR_CITY_LOANS", "--system-id", SYSTEM_ID, "--free-text", "--exts", "01",
                "--daily-quota", str(self.quota), "--rate", str(self.rate),
                "--config", str(self.config_path), "--actor", "e2e"]
        if self.callback_url:
            args += ["--callback-url", self.callback_url]
        self.hotline(*args)

    def start(self) -> None:
        out = open(self.log_dir / "daemon.out", "ab")
        self.daemon = subprocess.Popen(
            [sys.executable, str(REPO / "daemon.py"), "run", "--config", str(self.config_path)],
            cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited ({self.daemon.returncode}): see "
                                   f"{self.log_dir / 'daemon.out'}")
            if self._healthy() and self._bound():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the daemon was not ready in {timeout} s; see {self.log_dir}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/healthz",
                                        timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _bound(self) -> bool:
        try:
            text = (self.log_dir / "daemon.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return '"new": "bound"' in text or '"new":"bound"' in text

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait(10)
            self.daemon = None

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.terminate()
            try:
                self.daemon.wait(15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(5)
            self.daemon = None

    # -- the client's side -------------------------------------------------------------
    def call(self, method: str, path: str, body=None, *, signed: bool = False,
             bearer: str | None = None, timeout: float = 120) -> tuple[int, dict]:
        """One request as the client; (status, JSON body). Never raises for an HTTP status."""
        raw = b"" if body is None else (body if isinstance(body, bytes)
                                        else json.dumps(body, ensure_ascii=False).encode())
        uri = "/v1/messages" + path
        headers = {"content-type": "application/json"}
        if signed:
            stamp, nonce = str(int(time.time())), secrets.token_hex(8)
            message = b"\n".join([method.encode(), uri.encode(), stamp.encode(),
                                  nonce.encode(), raw])
            headers.update({"X-Client-Id": CLIENT, "X-Timestamp": stamp, "X-Nonce": nonce,
                            "X-Signature": hmac.new(self.secret.encode(), message,
                                                    hashlib.sha256).hexdigest()})
        else:
            headers["Authorization"] = f"Bearer {bearer or self.secret}"
        request = urllib.request.Request(f"http://127.0.0.1:{self.http_port}{uri}",
                                         data=raw or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class CallbackReceiver:
    """A city system's callback URL on loopback: answers 503 to its first ``fail`` POSTs,
    then 200; ``events`` keeps each accepted event by id (a list, to see repeats), and
    ``bad_signatures`` counts POSTs whose signature did not verify with ``secret``."""

    def __init__(self, secret: str = "", fail: int = 0):
        self.secret, self.fail = secret, fail
        self.events: dict[str, list] = {}
        self.posts = self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.handle(self, body)

            def log_message(self, *_args):  # the requests carry mobiles: not logged
                return

        Handler.protocol_version = "HTTP/1.1"  # keep-alive: the platform posts on a pool

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default 5 resets a pool's parallel connects
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, handler, body: bytes) -> None:
        with self.lock:
            self.posts += 1
            h = handler.headers
            message = b"\n".join([b"POST", b"/hook", h.get("x-timestamp", "").encode(),
                                  h.get("x-nonce", "").encode(), body])
            expected = hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()
            if self.secret and not hmac.compare_digest(expected, h.get("x-signature", "")):
                self.bad_signatures += 1
            refuse = self.fail > 0
            if refuse:
                self.fail -= 1
            else:
                event = json.loads(body)
                self.events.setdefault(event["id"], []).append(event)
        handler.send_response(503 if refuse else 200)
        handler.send_header("content-length", "0")
        handler.end_headers()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
