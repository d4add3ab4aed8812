"""The service install of README.md ("Install as a service"), run as written: the wheel
built from this tree goes into a fresh venv through contrib/systemd/install.sh (a
throwaway system user, the /etc, /opt and /var/lib layout under a prefix), then the
installed unit's command line runs as that user with the unit's environment and a
notify socket: READY=1 arrives, /healthz answers, SIGTERM stops it with exit 0 within
the unit's TimeoutStopSec."""
from __future__ import annotations

import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from sandbox.ports import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix():
    """A folder every user may traverse (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="hotline-install-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def service_user():
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("the service install needs root and useradd")
    name = f"hltest{secrets.token_hex(3)}"
    yield name
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)


def test_readme_gives_these_commands():
    """README's "Install as a service" names the commands this test runs."""
    readme = (REPO / "README.md").read_text("utf-8")
    section = readme[readme.index("## Install as a service"):readme.index("## Backups")]
    assert "python3 -m pip wheel --no-deps -w dist .\n" in section
    assert "contrib/systemd/install.sh dist/hotline12329-0.1.0-py3-none-any.whl\n" in section


def build_wheel(out: Path) -> Path:
    """The wheel of this working tree (tracked and new files), built in a copy, as the
    README says: pip wheel --no-deps -w dist ."""
    src = out / "src"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if name.startswith("sandbox/smsc/node_modules/") or not (REPO / name).is_file():
            continue
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w",
                    str(out / "dist"), str(src)], check=True, timeout=300)
    [wheel] = (out / "dist").glob("hotline12329-*.whl")
    return wheel


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def unit_environment(settings: dict, notify: Path) -> dict[str, str]:
    """What systemd gives the process: a clean PATH, Environment= and EnvironmentFile=."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "NOTIFY_SOCKET": str(notify), "LANG": "C.UTF-8"}
    for item in settings.get("Environment", []):
        key, _, value = item.partition("=")
        env[key] = value
    for item in settings.get("EnvironmentFile", []):
        for line in Path(item.lstrip("-")).read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
    return env


def test_install_then_start_and_stop_as_the_service_user(prefix, service_user, tmp_path,
                                                        log_dir):
    """install.sh (twice: an upgrade keeps the operator's edits) then the unit's ExecStart
    as the unprivileged user: ready, serving, stopped cleanly by SIGTERM."""
    wheel = build_wheel(tmp_path)
    subprocess.run([str(REPO / "contrib" / "systemd" / "install.sh"), str(wheel)], check=True,
                   env=dict(os.environ, HOTLINE_ROOT=str(prefix), HOTLINE_USER=service_user),
                   timeout=900)
    etc, state = prefix / "etc" / "hotline", prefix / "var" / "lib" / "hotline"
    assert (state / "hotline.db").is_file() and (state / "prompts" / "current").is_dir()
    assert state.stat().st_uid == pwd.getpwnam(service_user).pw_uid
    assert oct((etc / "hotline.ini").stat().st_mode & 0o777) == "0o640"

    # The operator's edits: ports of this machine, the secrets file.
    http_port = free_port()
    ini = etc / "hotline.ini"
    ini.write_text(ini.read_text("utf-8")
                   .replace("tcp:port=8329:", f"tcp:port={http_port}:")
                   .replace("port=5038", f"port={free_port()}")
                   .replace("port=2775", f"port={free_port()}"), "utf-8")
    (etc / "hotline.env").write_text(f"HOTLINE_AMI_SECRET={secrets.token_hex(8)}\n"
                                     f"HOTLINE_SMPP_PASSWORD_LOCAL={secrets.token_hex(4)}\n")
    edited = ini.read_text("utf-8"), (etc / "hotline.env").read_text()
    # Running the install again (an upgrade) keeps the operator's files.
    subprocess.run([str(REPO / "contrib" / "systemd" / "install.sh"), str(wheel)], check=True,
                   env=dict(os.environ, HOTLINE_ROOT=str(prefix), HOTLINE_USER=service_user),
                   capture_output=True, timeout=900)
    assert (ini.read_text("utf-8"), (etc / "hotline.env").read_text()) == edited
    hotline = prefix / "opt" / "hotline" / "bin" / "hotline"
    subprocess.run(["runuser", "-u", service_user, "--", str(hotline), "core", "generate",
                    "--persons", "200", "--out", str(state / "core-demo.db")],
                   check=True, capture_output=True, timeout=120)

    settings = unit_settings(prefix / "etc" / "systemd" / "system" / "hotline.service")
    assert settings["Type"] == ["notify"] and settings["User"] == [service_user]
    for hardening in ("ProtectSystem", "PrivateTmp", "NoNewPrivileges"):
        assert hardening in settings
    notify = prefix / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    notify.chmod(0o777)
    listener.settimeout(120)
    argv = shlex.split(settings["ExecStart"][0])
    with open(log_dir / "service.log", "wb") as out:
        proc = subprocess.Popen(["setpriv", f"--reuid={service_user}",
                                 f"--regid={service_user}", "--init-groups", "--no-new-privs",
                                 "--", *argv], cwd=settings["WorkingDirectory"][0],
                                env=unit_environment(settings, notify), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        assert listener.recv(4096) == b"READY=1"
        uid_line = next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                        if line.startswith("Uid:"))
        assert uid_line.split()[1] == str(pwd.getpwnam(service_user).pw_uid)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5) as r:
            assert r.status == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=float(settings["TimeoutStopSec"][0]))
        assert listener.recv(4096) == b"STOPPING=1"
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    log = (log_dir / "service.log").read_text(errors="replace")
    assert code == 0, log[-3000:]
    assert time.monotonic() - started < float(settings["TimeoutStopSec"][0])
    assert "hotline stopped" in log
