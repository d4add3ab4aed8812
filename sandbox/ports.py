"""Free loopback ports, chosen at run time so parallel test runs never collide."""
from __future__ import annotations

import random
import socket


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> bool:
    """Block until something accepts on host:port (for scripts and fixtures, never the reactor)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def free_udp_range(size: int = 200, host: str = "127.0.0.1") -> tuple[int, int]:
    """An even-aligned UDP range free right now (sampled every 7th port), for Asterisk's RTP."""
    for _ in range(30):
        start = random.randrange(20000, 60000 - size) & ~1
        held = []
        try:
            for port in range(start, start + size, 7):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind((host, port))
            return start, start + size - 1
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise OSError("no free UDP range for RTP")
