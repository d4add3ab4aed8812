"""The HTTP API of the real daemon on loopback, attacked as an intruder would (issue 12).

The daemon runs as a subprocess (``hotline run``) with the codes API mounted (an
SMSC that is never reached is fine: nothing here needs a code sent). Requests go
out over real sockets from threads, so concurrency is real.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core_client import demo_data
from sandbox.ports import free_port, wait_for_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SECRET = "portal-secret-for-the-http-tests"

INI = """
[daemon]
instance = httptest
state_dir = {tmp}/var
log_format = json
log_file = {log_dir}/daemon.log
[http]
listen = {listen}
read_timeout = 2
idle_timeout = 5
max_body = 16384
per_peer_connections = 32
per_peer_requests_per_second = 50
[http.clients]
portal = env:HOTLINE_TEST_CLIENT_SECRET
[center:demo]
name = 示例市住房公积金管理中心
signature = 示例公积金
core_db = {tmp}/core-demo.db
[ami]
enabled = no
[sms]
enabled = yes
[smsc:nowhere]
endpoint = tcp:host=127.0.0.1:port={dead_port}
system_id = hotline
password = env:HOTLINE_TEST_CLIENT_SECRET
"""


def start_daemon(tmp_path: Path, log_dir: Path, listen: str, port: int) -> subprocess.Popen:
    demo_data.generate(tmp_path / "core-demo.db", persons=20)
    ini = tmp_path / "hotline.ini"
    ini.write_text(INI.format(tmp=tmp_path, log_dir=log_dir, listen=listen,
                              dead_port=free_port()), "utf-8")
    env = dict(os.environ, HOTLINE_TEST_CLIENT_SECRET=SECRET,
               HOTLINE_CODE_PEPPER=secrets.token_hex(32))
    out = open(log_dir / "daemon.out", "ab")
    proc = subprocess.Popen([sys.executable, str(REPO / "daemon.py"), "run", "--config",
                             str(ini)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    if not wait_for_port("127.0.0.1", port, timeout=60):
        proc.kill()
        pytest.fail("the daemon never listened: "
                    + (log_dir / "daemon.out").read_text(errors="replace")[-2000:])
    return proc


@pytest.fixture
def daemon(tmp_path, log_dir):
    port = free_port()
    proc = start_daemon(tmp_path, log_dir, f"tcp:port={port}:interface=127.0.0.1", port)
    yield port
    proc.terminate()
    proc.wait(10)


def raw(port: int, request: bytes, timeout: float = 5.0, wrap=None) -> bytes:
    """Send ``request`` on a fresh connection; everything the server sends until it closes
    (or the first complete response, when it keeps the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        if wrap is not None:
            s = wrap(s)
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
        return data


def post(path: str, body: bytes, headers: dict[str, bytes]) -> bytes:
    lines = [f"POST {path} HTTP/1.1".encode(), b"Host: 127.0.0.1",
             f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    lines += [k.encode() + b": " + v for k, v in headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0


def signed(path: str, body: bytes, stamp: str, nonce: str, secret: str = SECRET) -> dict:
    message = "\n".join(["POST", path, stamp, nonce]).encode() + b"\n" + body
    return {"X-Client-Id": b"portal", "X-Timestamp": stamp.encode(), "X-Nonce": nonce.encode(),
            "X-Signature": hmac.new(secret.encode(), message, hashlib.sha256)
            .hexdigest().encode(), "Content-Type": b"application/json"}


BODY = json.dumps({"center": "demo", "account_no": "123456789012", "purpose": "login",
                   "code": "000000"}).encode()


def test_non_ascii_signatures_all_answered_401_and_healthz_stays_fast(daemon):
    """20 concurrent requests with a non-ASCII X-Signature (a client id is all it takes) each
    get 401 and their connection closed; /healthz answers within 100 ms right after."""
    headers = {"X-Client-Id": b"portal", "X-Timestamp": str(int(time.time())).encode(),
               "X-Nonce": b"n1", "X-Signature": "签名".encode() + b"\xff"}
    request = post("/v1/codes/verify", BODY, headers)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: raw(daemon, request), range(20)))
    assert [status(a) for a in answers] == [401] * 20
    started = time.monotonic()
    health = raw(daemon, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status(health) == 200 and time.monotonic() - started < 0.1


def test_a_huge_declared_body_is_refused_before_it_is_sent(daemon):
    """A 1 GiB Content-Length gets 413 at once, without the body being read or spooled."""
    request = (b"POST /v1/codes HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n"
               b"Authorization: Bearer " + SECRET.encode() + b"\r\n\r\n" + b"{" * 1000)
    started = time.monotonic()
    assert status(raw(daemon, request)) == 413
    assert time.monotonic() - started < 1.0


def test_a_chunked_body_over_the_cap_is_refused(daemon):
    """Chunked bodies are counted as they arrive and cut off at the cap with 413."""
    chunk = b"4000\r\n" + b"a" * 0x4000 + b"\r\n"
    request = (b"POST /v1/codes HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunk * 3)
    assert status(raw(daemon, request)) == 413


def test_trickling_headers_and_bodies_are_cut_off(daemon):
    """A client that sends headers (or its body) one byte at a time is disconnected once the
    read timeout (2 s here) has passed, however steadily it trickles."""
    with socket.create_connection(("127.0.0.1", daemon), timeout=10) as s:
        started = time.monotonic()
        closed_after = None
        for byte in b"POST /v1/codes HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 100:
            try:
                s.sendall(bytes([byte]))
                time.sleep(0.2)
            except OSError:
                closed_after = time.monotonic() - started
                break
            s.setblocking(False)
            try:
                if s.recv(1024) == b"":
                    closed_after = time.monotonic() - started
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_after = time.monotonic() - started
                break
            finally:
                s.setblocking(True)
        assert closed_after is not None and closed_after < 4.0


def test_nan_timestamp_and_replayed_nonce_are_refused(daemon):
    """X-Timestamp: nan is not fresh; a signed request is accepted once, its replay is 401."""
    path = "/v1/codes/verify"
    assert status(raw(daemon, post(path, BODY, signed(path, BODY, "nan", "a1")))) == 401
    assert status(raw(daemon, post(path, BODY, signed(path, BODY, "inf", "a2")))) == 401
    headers = signed(path, BODY, str(int(time.time())), secrets.token_hex(8))
    first = status(raw(daemon, post(path, BODY, headers)))
    assert first not in (401, 0)
    assert status(raw(daemon, post(path, BODY, headers))) == 401
    no_nonce = {k: v for k, v in signed(path, BODY, str(int(time.time())), "").items()
                if k != "X-Nonce"}
    assert status(raw(daemon, post(path, BODY, no_nonce))) == 401


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway key and certificate for 127.0.0.1, made with cryptography."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_the_sample_ssl_endpoint_serves_tls(tmp_path, log_dir):
    """The ``ssl:`` listen example of hotline.sample.ini, with a fresh self-signed pair,
    serves /healthz over TLS (certificate verified) and a bearer-authenticated 401 too."""
    sample = (REPO / "hotline.sample.ini").read_text(encoding="utf-8")
    example = next(line for line in sample.splitlines() if line.startswith("; listen = ssl:"))
    key, cert = _self_signed(tmp_path)
    port = free_port()
    listen = (example[len("; listen = "):].replace("8443", str(port))
              .replace("/etc/hotline/tls/key.pem", str(key))
              .replace("/etc/hotline/tls/cert.pem", str(cert)))
    proc = start_daemon(tmp_path, log_dir, listen, port)
    try:
        context = ssl.create_default_context(cafile=str(cert))

        def wrap(s):
            return context.wrap_socket(s, server_hostname="127.0.0.1")

        health = raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     wrap=wrap)
        assert status(health) == 200
        bad = post("/v1/codes", BODY, {"Authorization": b"Bearer wrong"})
        assert status(raw(port, bad, wrap=wrap)) == 401
    finally:
        proc.terminate()
        proc.wait(10)
