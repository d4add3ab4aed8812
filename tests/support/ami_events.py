"""A blocking AMI session on a thread that keeps the AGI commands Asterisk runs, so an e2e
test can see which prompt files a call played (Asterisk logs no verbose lines)."""
from __future__ import annotations

import socket
import threading


class AgiCommands:
    """``with AgiCommands(asterisk) as agi: ...`` then ``agi.commands`` (AGIExecStart)."""

    def __init__(self, asterisk):
        self.asterisk = asterisk
        self.commands: list[str] = []
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> AgiCommands:
        a = self.asterisk
        self._socket = socket.create_connection((a.address, a.ami_port), timeout=5)
        self._socket.sendall(f"Action: Login\r\nUsername: {a.ami_username}\r\n"
                             f"Secret: {a.ami_secret}\r\nEvents: agi\r\n\r\n".encode())
        self._thread.start()
        assert self._ready.wait(5), "no AMI login"
        return self

    def __exit__(self, *exc) -> None:
        self._socket.close()
        self._thread.join(5)

    def _read(self) -> None:
        buffer = b""
        self._socket.settimeout(None)
        while True:
            try:
                chunk = self._socket.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                block, buffer = buffer.split(b"\r\n\r\n", 1)
                headers = dict(line.split(": ", 1) for line in
                               block.decode(errors="replace").split("\r\n") if ": " in line)
                if headers.get("Response") == "Success":
                    self._ready.set()
                if headers.get("Event") == "AGIExecStart":
                    self.commands.append(headers.get("Command", ""))
