"""A real Asterisk 22 for tests and the demo: a cached Debian sid root, run with chroot.

Debian 12 has no Asterisk package and sid must never enter the host's apt
sources, so ``build`` makes a separate sid root with mmdebstrap (once; a marker
file is written only after success, so a half-built root is rebuilt).
``AsteriskInstance`` renders the project's ``dialplans/`` into a per-instance
folder with its own run/spool/log/db directories, so several instances run at
once on different ports, and bind-mounts /proc, /dev and the given host folders
into the root at the same absolute path (the daemon's prompt and recording
folders are then visible to Asterisk under the daemon's paths).

Mounts are shared between instances and recorded in a registry inside the
root, under a lock: a mount is removed when no live instance needs it, and
``cleanup_stale`` removes what a crashed run left behind.

CLI: ``python -m sandbox.asterisk build|start|stop|status|render``.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator

import dialplans

DEFAULT_ROOT = Path("/var/cache/hotline/asterisk-root")
PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-wav",
            "asterisk-moh-opsound-wav")
MARKER = ".hotline-root-complete"
REGISTRY = "run/hotline-instances"
LOCK = ".hotline-mounts.lock"


class AsteriskError(Exception):
    """The Asterisk root could not be built, or an instance failed to start or stop."""


def root_path() -> Path:
    return Path(os.environ.get("HOTLINE_ASTERISK_ROOT", str(DEFAULT_ROOT)))


# ---- the root ----------------------------------------------------------------

def is_built(root: Path) -> bool:
    marker = root / MARKER
    return marker.is_file() and marker.read_text().split() == list(PACKAGES)


def build(root: Path | None = None, force: bool = False) -> Path:
    """Build the sid root with mmdebstrap unless a complete one is already there."""
    root = root or root_path()
    if is_built(root) and not force:
        return root
    if shutil.which("mmdebstrap") is None:
        raise AsteriskError("mmdebstrap is not installed (apt-get install mmdebstrap)")
    if root.exists():
        cleanup_stale(root)
        if _mounts_under(root):
            raise AsteriskError(f"{root} still has mounts in use; stop its instances first")
        shutil.rmtree(root)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(PACKAGES),
           "--aptopt=APT::Install-Recommends \"false\"",
           "--aptopt=Acquire::Check-Valid-Until \"false\"", "sid", str(partial)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise AsteriskError(f"mmdebstrap failed ({done.returncode}): {done.stderr[-2000:]}")
    partial.rename(root)
    (root / MARKER).write_text("\n".join(PACKAGES) + "\n")
    return root


# ---- mounts ------------------------------------------------------------------

def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            points.append(line.split()[4].replace("\\040", " "))
    return points


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    return [p for p in _mount_points() if p.startswith(prefix)]


def _target(root: Path, host_path: str) -> Path:
    return root / host_path.lstrip("/")


def _mount(root: Path, host_path: str) -> None:
    target = _target(root, host_path)
    if str(target) in _mount_points():
        return
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", host_path, str(target)], check=True,
                   capture_output=True)


def _umount(target: str) -> None:
    if subprocess.run(["umount", target], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", target], capture_output=True)


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(pid: int | None, needle: str | None = None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if needle is None:
        return True
    try:
        return needle in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _entries(root: Path) -> dict[str, dict]:
    folder = root / REGISTRY
    out = {}
    for path in folder.glob("*.json") if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            out[path.stem] = {}
    return out


def _entry_alive(entry: dict) -> bool:
    owner = entry.get("owner")
    return _alive(entry.get("pid"), "asterisk") and (owner is None or _alive(owner))


def _release_unused(root: Path, keep: set[str]) -> None:
    for point in sorted(_mounts_under(root), key=len, reverse=True):
        host = "/" + point[len(str(root.resolve())) + 1:]
        if host not in keep:
            _umount(point)


def cleanup_stale(root: Path) -> None:
    """Stop Asterisks whose owner died, forget dead instances, unmount what nobody needs."""
    with _locked(root):
        _cleanup_stale_locked(root)


def _cleanup_stale_locked(root: Path) -> None:
    keep: set[str] = set()
    for name, entry in _entries(root).items():
        if _entry_alive(entry):
            keep.update(entry.get("mounts", []))
            continue
        if _alive(entry.get("pid"), "asterisk"):
            os.kill(entry["pid"], signal.SIGKILL)
        (root / REGISTRY / f"{name}.json").unlink(missing_ok=True)
    _release_unused(root, keep)


# ---- an instance -------------------------------------------------------------

def _ami_login(host: str, port: int, username: str, secret: str, timeout: float = 2.0) -> bool:
    """One blocking AMI login (for fixtures and the CLI, never in the reactor)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(f"Action: Login\r\nUsername: {username}\r\nSecret: {secret}\r\n"
                      f"Events: off\r\nActionID: probe\r\n\r\n".encode())
            data = b""
            while b"ActionID: probe" not in data or not data.endswith(b"\r\n\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    return False
                data += chunk
            return b"Response: Success" in data
    except OSError:
        return False


OBSERVER = "observer"  # the sandbox's listening AMI user (benches): events only


class AsteriskInstance:
    """One running Asterisk inside the shared root, with its own config, ports and folders."""

    def __init__(self, root: Path, workdir: Path, ami_port: int, sip_port: int,
                 rtp_range: tuple[int, int], address: str = "127.0.0.1",
                 bind_mounts: list[str] | tuple[str, ...] = (),
                 variables: dict[str, str] | None = None, ami_secret: str | None = None,
                 owner: int | None = None):
        self.root = Path(root)
        self.workdir = Path(workdir).resolve()
        self.ami_port, self.sip_port, self.rtp_range = ami_port, sip_port, rtp_range
        self.address = address
        self.bind_mounts = [str(Path(p).resolve()) for p in bind_mounts]
        self.variables = dict(variables or {})
        self.ami_username = self.variables.get("ami_username", "hotline")
        self.ami_secret = ami_secret or secrets.token_hex(12)
        self.observer_secret = secrets.token_hex(12)  # OBSERVER's, see render
        self.owner = owner
        self.name = f"{self.workdir.name}-{ami_port}"
        self.process: subprocess.Popen | None = None
        inside_root = str(self.workdir).startswith(str(self.root.resolve()) + "/")
        self.inside = ("/" + str(self.workdir.relative_to(self.root.resolve()))
                       if inside_root else str(self.workdir))
        self.host_dir = self.workdir
        self.mounts = ["/proc", "/dev"] + ([] if inside_root else [str(self.workdir)]) \
            + self.bind_mounts

    @property
    def config_path(self) -> str:
        return f"{self.inside}/etc/asterisk.conf"

    @property
    def log_dir(self) -> Path:
        return self.host_dir / "log"

    def render(self) -> None:
        """Write the project's dialplans into this instance's etc folder."""
        values = {
            "etcdir": f"{self.inside}/etc", "rundir": f"{self.inside}/run",
            "spooldir": f"{self.inside}/spool", "logdir": f"{self.inside}/log",
            "dbdir": f"{self.inside}/db", "cachedir": f"{self.inside}/cache",
            "system_name": self.name, "ami_address": self.address,
            "ami_port": str(self.ami_port), "ami_secret": self.ami_secret,
            "sip_address": self.address, "sip_port": str(self.sip_port),
            "caller_match": self.address, "rtp_start": str(self.rtp_range[0]),
            "rtp_end": str(self.rtp_range[1]),
        }
        values.update(self.variables)
        for sub in ("etc", "run", "spool", "log", "db", "cache"):
            (self.host_dir / sub).mkdir(parents=True, exist_ok=True)
        dialplans.render(values, self.host_dir / "etc")
        # The shipped AMI user never sees keys (no dtmf); a bench timing key to prompt
        # listens as this sandbox-only user, which may read events and do nothing else.
        with (self.host_dir / "etc" / "manager.conf").open("a") as conf:
            conf.write(f"\n[{OBSERVER}]\nsecret = {self.observer_secret}\n"
                       f"deny = 0.0.0.0/0.0.0.0\npermit = {self.address}/255.255.255.255\n"
                       "read = agi,dtmf,call,user\nwrite =\n")

    def start(self, timeout: float = 60.0) -> AsteriskInstance:
        if not is_built(self.root):
            raise AsteriskError(f"no Asterisk root at {self.root}: run python -m sandbox.asterisk build")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.render()
        out = open(self.host_dir / "asterisk.out", "ab")
        with _locked(self.root):
            _cleanup_stale_locked(self.root)
            for path in self.mounts:
                _mount(self.root, path)
            self.process = subprocess.Popen(
                ["chroot", str(self.root), "/usr/sbin/asterisk", "-f", "-C", self.config_path],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)
            registry = self.root / REGISTRY
            registry.mkdir(parents=True, exist_ok=True)
            (registry / f"{self.name}.json").write_text(json.dumps(
                {"pid": self.process.pid, "owner": self.owner, "mounts": self.mounts}))
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                self.stop()
                raise AsteriskError(f"Asterisk exited ({code}): {self._tail()}")
            if _ami_login(self.address, self.ami_port, self.ami_username, self.ami_secret):
                return self
            time.sleep(0.2)
        self.stop()
        raise AsteriskError(f"Asterisk AMI did not accept a login within {timeout:g}s: "
                            f"{self._tail()}")

    def _tail(self) -> str:
        texts = []
        for path in (self.host_dir / "asterisk.out", self.log_dir / "messages"):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-1500:])
        return "\n".join(texts)

    def cli(self, command: str, timeout: float = 10.0) -> str:
        """Run an Asterisk CLI command on this instance (``core show channels`` ...)."""
        done = subprocess.run(["chroot", str(self.root), "/usr/sbin/asterisk", "-C",
                               self.config_path, "-rx", command],
                              capture_output=True, text=True, timeout=timeout)
        return done.stdout

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; then release mounts nobody else needs."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.process = None
        with _locked(self.root):
            (self.root / REGISTRY / f"{self.name}.json").unlink(missing_ok=True)
            _cleanup_stale_locked(self.root)

    @property
    def endpoint(self) -> str:
        """The AMI endpoint string for ``[ami] endpoint``."""
        return f"tcp:host={self.address}:port={self.ami_port}"


def stop_by_registry(root: Path, name: str, timeout: float = 10.0) -> bool:
    """Stop an instance started by another process (the CLI), by its recorded pid."""
    entry = _entries(root).get(name)
    if not entry:
        return False
    pid = entry.get("pid")
    if _alive(pid, "asterisk"):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid, "asterisk") and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid, "asterisk"):
            os.kill(pid, signal.SIGKILL)
    with _locked(root):
        (root / REGISTRY / f"{name}.json").unlink(missing_ok=True)
        _cleanup_stale_locked(root)
    return True


# ---- CLI -----------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.asterisk", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="root folder (env HOTLINE_ASTERISK_ROOT)")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the sid root unless it is complete")
    b.add_argument("--force", action="store_true")
    s = sub.add_parser("start", help="start an instance in the background")
    s.add_argument("--workdir", type=Path, default=Path("/tmp/hotline-asterisk"))
    s.add_argument("--ami-port", type=int, default=5038)
    s.add_argument("--sip-port", type=int, default=5060)
    s.add_argument("--rtp", default="10000-10999")
    s.add_argument("--secret", default=os.environ.get("HOTLINE_AMI_SECRET"))
    s.add_argument("--mount", action="append", default=[], help="host folder visible at the same path")
    s.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="dialplan template variable (see dialplans/README.md)")
    st = sub.add_parser("stop", help="stop instances started with start")
    st.add_argument("name", nargs="?",
                    help="instance name (default: every instance this CLI started; never "
                         "instances owned by a running test session)")
    sub.add_parser("status", help="show the root and its instances")
    r = sub.add_parser("render", help="render dialplans/ for a production Asterisk")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    root = args.root or root_path()

    def pairs(items: list[str]) -> dict[str, str]:
        return dict(item.split("=", 1) for item in items)

    try:
        if args.command == "build":
            build(root, force=args.force)
            print(root)
        elif args.command == "start":
            if not args.secret:
                parser.error("--secret or HOTLINE_AMI_SECRET is required")
            low, high = (int(x) for x in args.rtp.split("-"))
            inst = AsteriskInstance(root, args.workdir, args.ami_port, args.sip_port, (low, high),
                                    bind_mounts=args.mount, variables=pairs(args.set),
                                    ami_secret=args.secret).start()
            print(f"{inst.name}: AMI {inst.endpoint}, SIP udp {inst.address}:{inst.sip_port}, "
                  f"logs {inst.log_dir}")
        elif args.command == "stop":
            names = [args.name] if args.name else [
                name for name, entry in _entries(root).items() if entry.get("owner") is None]
            for name in names:
                owner = _entries(root).get(name, {}).get("owner")
                if owner is not None and _alive(owner):
                    print(f"{name}: owned by running process {owner}, left alone")
                    continue
                print(f"{name}: {'stopped' if stop_by_registry(root, name) else 'not running'}")
        elif args.command == "status":
            print(f"root {root}: {'built' if is_built(root) else 'missing'}")
            for name, entry in _entries(root).items():
                state = "running" if _entry_alive(entry) else "stale"
                print(f"{name}: {state} pid {entry.get('pid')}")
        elif args.command == "render":
            for path in dialplans.render(pairs(args.set), args.out):
                print(path)
    except (AsteriskError, dialplans.TemplateError, subprocess.CalledProcessError) as e:
        print(f"sandbox.asterisk: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
