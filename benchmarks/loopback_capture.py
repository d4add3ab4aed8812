"""Reading one port's packets on loopback with kernel timestamps, for the benches that time
or follow what passes between the stack's processes without instrumenting any of them.

An AF_PACKET socket with a classic BPF filter (IPv4, TCP or UDP, unfragmented, source or
destination port) is read on a thread, which hands each packet's transport payload with
its capture time and ports to a callback (that runs on the thread).
"""
from __future__ import annotations

import ctypes
from collections.abc import Callable
import socket
import struct
import threading
import time

SO_ATTACH_FILTER, SO_TIMESTAMP, ETH_P_ALL, PACKET_OUTGOING = 26, 29, 0x0003, 4
SO_RCVBUFFORCE = 33  # beyond net.core.rmem_max (the capture needs CAP_NET_RAW anyway)
CAPTURE_BUFFER = 16 << 20  # a busy second in the kernel, so a late read drops nothing
TCP, UDP = 6, 17


def port_filter(protocol: int, port: int) -> bytes:
    """Classic BPF: IPv4 ``protocol`` (TCP or UDP), unfragmented, source or destination
    ``port``."""
    def op(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)

    return b"".join((
        op(0x28, 0, 0, 12), op(0x15, 0, 8, 0x0800),     # ldh [12]; IPv4?
        op(0x30, 0, 0, 23), op(0x15, 0, 6, protocol),   # ldb [23]; the protocol?
        op(0x28, 0, 0, 20), op(0x45, 4, 0, 0x1FFF),     # ldh [20]; fragment -> drop
        op(0xB1, 0, 0, 14),                             # ldx 4*([14]&0xf)
        op(0x48, 0, 0, 14), op(0x15, 2, 0, port),       # ldh [x+14]; source port
        op(0x48, 0, 0, 16), op(0x15, 0, 1, port),       # ldh [x+16]; destination port
        op(0x06, 0, 0, 0x40000), op(0x06, 0, 0, 0)))    # accept / drop


class LoopbackCapture:
    """One port's TCP or UDP payloads on ``lo``, each once, to
    ``on_payload(at, source port, destination port, payload)``."""

    def __init__(self, protocol: int, port: int, name: str,
                 on_payload: Callable[[float, int, int, bytes], None]):
        self.protocol, self.port, self.on_payload = protocol, port, on_payload
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        program = port_filter(protocol, port)
        self._program = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(self._program))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, CAPTURE_BUFFER)
        except PermissionError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CAPTURE_BUFFER)
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._read, name=name, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, addr = self.sock.recvmsg(65536, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING:  # loopback shows each packet twice
                continue
            at = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP:
                    sec, usec = struct.unpack("qq", value[:16])
                    at = sec + usec / 1e6
            self._frame(at, data)

    def _frame(self, at: float, frame: bytes) -> None:
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        segment = ip[ihl:total]
        sport, dport = struct.unpack("!HH", segment[:4])
        payload = segment[(segment[12] >> 4) * 4:] if self.protocol == TCP else segment[8:]
        if payload:
            self.on_payload(at, sport, dport, payload)
