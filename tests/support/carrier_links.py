"""Blocking-socket helpers for the carrier e2e tests: a Link over a codec, logins, and the
SP-side SGIP listener the SMG connects back to. Plain sockets on 127.0.0.1, no reactor."""
from __future__ import annotations

import socket
from datetime import datetime

from sandbox.ports import free_port
from sms.cmpp import codec as cmpp
from sms.sgip import codec as sgip
from sms.smgp import codec as smgp


class Link:
    """A blocking socket with a codec's splitter: send PDUs, read Frames with a deadline."""

    def __init__(self, sock: socket.socket, module, version: int | None = None):
        self.sock, self.codec, self.version = sock, module, version
        self.splitter = module.frame_splitter()
        self.queue: list[bytes] = []
        self.sock.settimeout(5)

    @classmethod
    def connect(cls, port: int, module, version: int | None = None) -> Link:
        return cls(socket.create_connection(("127.0.0.1", port), timeout=5), module, version)

    def send(self, pdu, sequence) -> None:
        args = (self.version,) if self.version is not None else ()
        self.sock.sendall(self.codec.encode(pdu, sequence, *args))

    def read(self):
        while not self.queue:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("peer closed the connection")
            self.queue.extend(self.splitter.feed(data))
        raw = self.queue.pop(0)
        if self.version is not None:
            return self.codec.decode(raw, self.version)
        return self.codec.decode(raw)

    def read_n(self, n: int) -> list:
        return [self.read() for _ in range(n)]

    def closed_by_peer(self) -> bool:
        """True when the peer closes within the socket timeout (after any buffered frames)."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


def cmpp_login(port: int, version: int, secret: str = "secret") -> tuple[Link, object]:
    link = Link.connect(port, cmpp, version)
    connect = cmpp.make_connect("901234", secret, datetime.now(), version)
    link.send(connect, 1)
    frame = link.read()
    assert frame.command_id == cmpp.CONNECT_RESP and frame.sequence == 1
    return link, (connect, frame.pdu)


def smgp_login(port: int, secret: str = "secret") -> tuple[Link, object, object]:
    link = Link.connect(port, smgp)
    login = smgp.make_login("90123456", secret, datetime.now())
    link.send(login, 1)
    frame = link.read()
    assert frame.command_id == smgp.LOGIN_RESP and frame.sequence == 1
    return link, login, frame.pdu


class SgipListener:
    """The SP side of SGIP's reverse connection: accept the SMG, check its Bind."""

    def __init__(self):
        self.port = free_port()
        self.server = socket.create_server(("127.0.0.1", self.port))
        self.server.settimeout(5)

    def accept(self) -> Link:
        conn, _addr = self.server.accept()
        return Link(conn, sgip)

    def close(self) -> None:
        self.server.close()


def sgip_bind(port: int, password: str = "secret") -> tuple[Link, object]:
    link = Link.connect(port, sgip)
    link.send(sgip.Bind(sgip.LOGIN_SP_TO_SMG, "hotline", password),
              sgip.SgipSequence.at(3020099999, datetime.now(), 1))
    frame = link.read()
    assert frame.command_id == sgip.BIND_RESP
    return link, frame.pdu
