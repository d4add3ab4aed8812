"""sipp callers for the test bed: dial an extension, press keys (RFC 2833), speak, hang up.

A call is a list of steps (``Pause``, ``Keys``, ``Audio``) written into the
scenario ``sandbox/sipp/caller.xml``; the end is either our BYE after the steps
(``hangup="bye"``) or waiting for the far end's BYE (``hangup="wait"``). One
sipp process can place N concurrent calls (``calls=N``) for benchmarks.
Key presses are RFC 4733 events written as pcaps per call (``KeyPresses``), with
timestamps that keep rising; ``wav_to_rtp_pcap`` turns speech (e.g. from
``espeak-ng -v cmn``) into a G.711 RTP pcap sipp can play.
"""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sandbox.ports import free_port

HERE = Path(__file__).parent / "sipp"
KEY_EVENTS = "0123456789*#"  # RFC 4733 event codes 0-11
SILENCE = b"\xff" * 160  # 20 ms of u-law silence
KEY_PCAP_MS = 220  # 8 event packets and the end packet three times, 20 ms apart


class SippError(Exception):
    """sipp is missing, or a step cannot be expressed (unknown key, unreadable audio)."""


@dataclass(frozen=True)
class Pause:
    ms: int


@dataclass(frozen=True)
class Keys:
    """Press ``digits`` one by one (0-9, *, #), ``gap_ms`` apart."""

    digits: str
    gap_ms: int = 600


@dataclass(frozen=True)
class Audio:
    """Play an RTP pcap (see ``wav_to_rtp_pcap``), then wait ``ms`` (its length)."""

    pcap: Path
    ms: int


Step = Pause | Keys | Audio


class KeyPresses:
    """One caller's key presses as RFC 4733 pcaps, each later in RTP time than the last.

    sipp's shipped per-key recordings carry fixed timestamps, and Asterisk drops a key
    event whose timestamp is not after the previous one (a repeated key, or 1 after *),
    so every press gets its own pcap with rising sequence numbers and timestamps.
    """

    SSRC = 0x5EED1234

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.seq, self.ts, self.count = 1000, 160000, 0

    def pcap(self, key: str) -> Path:
        if len(key) != 1 or key not in KEY_EVENTS:
            raise SippError(f"no RFC 4733 event for key {key!r}")
        event = KEY_EVENTS.index(key)
        packets = []
        for i in range(8):
            packets.append(_rtp(101, self.seq, self.ts, self.SSRC,
                                struct.pack("!BBH", event, 10, 160 * (i + 1)), marker=i == 0))
            self.seq += 1
        end = struct.pack("!BBH", event, 0x80 | 10, 160 * 8)
        packets += [_rtp(101, self.seq, self.ts, self.SSRC, end)] * 3  # the end, sent 3 times
        self.seq += 1
        self.ts += 160 * 8 + 8000  # the next event starts well after this one
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"key-{self.count:03d}.pcap"
        _write_pcap(packets, path)
        return path


def _play(pcap: Path) -> str:
    return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n'


GOT_BYE = 999


class _Pauses:
    """Pauses as sipp XML; when waiting for the far end's BYE, a pause is a BYE-or-timeout."""

    def __init__(self, interruptible: bool):
        self.interruptible = interruptible
        self.label = 0

    def __call__(self, ms: int) -> str:
        if not self.interruptible:
            return f'  <pause milliseconds="{int(ms)}"/>\n'
        self.label += 1
        return (f'  <recv request="BYE" timeout="{int(ms)}" ontimeout="{self.label}" '
                f'next="{GOT_BYE}"/>\n  <label id="{self.label}"/>\n')


def render_steps(steps: list[Step], keys: KeyPresses, interruptible: bool = False,
                 background: Path | None = None) -> str:
    """Steps as sipp XML, key pcaps written by ``keys``. With ``background`` (a long
    silence pcap) the caller sends RTP all the time, as a real phone does, resuming it
    after every key and audio clip."""
    pause = _Pauses(interruptible)
    resume = _play(background) if background is not None else ""
    out = [resume]
    for step in steps:
        if isinstance(step, Pause):
            out.append(pause(step.ms))
        elif isinstance(step, Keys):
            for key in step.digits:
                out.append(_play(keys.pcap(key)))
                gap = max(int(step.gap_ms), KEY_PCAP_MS)
                if background is not None:
                    out += [pause(KEY_PCAP_MS), resume]
                    gap -= KEY_PCAP_MS
                if gap > 0:
                    out.append(pause(gap))
        elif isinstance(step, Audio):
            out += [_play(step.pcap), pause(step.ms), resume]
        else:
            raise SippError(f"unknown step {step!r}")
    return "".join(out)


_BYE = """  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "[caller_name]" <sip:[caller_number]@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:[caller_number]@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
"""

_WAIT_BYE = """  <recv request="BYE" timeout="{timeout}"/>
  <label id="{got_bye}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[caller_number]@[local_ip]:[local_port]>
      Content-Length: 0
    ]]>
  </send>
"""


def scenario_xml(steps: list[Step], keys_dir: Path, hangup: str = "bye", caller: str = "sipp",
                 wait_bye_ms: int = 30000, background: Path | None = None) -> str:
    """The caller scenario with ``steps`` and the chosen ending, as XML text; the key
    pcaps it plays are written into ``keys_dir``."""
    if not caller.replace("+", "").isalnum():
        raise SippError("caller must be digits or letters")
    if hangup == "bye":
        end = _BYE
    elif hangup == "wait":
        end = _WAIT_BYE.format(timeout=int(wait_bye_ms), got_bye=GOT_BYE)
    else:
        raise SippError(f"hangup must be 'bye' or 'wait', not {hangup!r}")
    text = (HERE / "caller.xml").read_text()
    text = text.replace("  <!--STEPS-->\n", render_steps(steps, KeyPresses(keys_dir), hangup == "wait",
                                                             background)).replace("  <!--END-->\n", end)
    return text.replace("[caller_name]", caller).replace("[caller_number]", caller)


@dataclass
class SippResult:
    returncode: int
    stdout: str
    errors: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class SippCall:
    """One sipp process placing ``calls`` calls (at ``rate`` per second) to ``extension``."""

    host: str
    port: int
    extension: str
    steps: list[Step] = field(default_factory=list)
    hangup: str = "bye"
    caller: str = "sipp"
    calls: int = 1
    rate: float = 10.0
    wait_bye_ms: int = 30000
    timeout_s: float = 60.0
    workdir: Path | None = None
    local_address: str = "127.0.0.1"
    send_silence: bool = False
    process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if shutil.which("sipp") is None:
            raise SippError("sipp is not installed (apt-get install sip-tester)")
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="hotline-sipp-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        scenario = self.workdir / "caller.xml"
        background = None
        if self.send_silence:
            background = self.workdir / "silence.pcap"
            silence_pcap(background, int(self.timeout_s))
        scenario.write_text(scenario_xml(self.steps, self.workdir, self.hangup, self.caller,
                                         self.wait_bye_ms, background))
        return ["sipp", f"{self.host}:{self.port}", "-sf", str(scenario), "-s", self.extension,
                "-i", self.local_address, "-p", str(free_port(self.local_address, kind=socket.SOCK_DGRAM)),
                "-mi", self.local_address, "-mp", str(_free_media_port(self.local_address)),
                "-m", str(self.calls), "-l", str(self.calls), "-r", f"{self.rate:g}",
                "-timeout", f"{int(self.timeout_s)}s", "-timeout_error", "-nostdin",
                "-trace_err", "-error_file", str(self.workdir / "errors.log")]

    def start(self) -> subprocess.Popen:
        """Start sipp in the background; poll ``self.process`` or call ``finish``."""
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        cwd=self.workdir)
        return self.process

    def finish(self, timeout: float | None = None) -> SippResult:
        assert self.process is not None, "start() first"
        try:
            out, _ = self.process.communicate(timeout=timeout or self.timeout_s + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        errors = self.workdir / "errors.log"
        return SippResult(self.process.returncode, out.decode(errors="replace")[-4000:],
                          errors.read_text(errors="replace")[-4000:] if errors.exists() else "")

    def run(self) -> SippResult:
        """Start and wait (blocking: for scripts and threads, never inside the reactor)."""
        self.start()
        return self.finish()


def _free_media_port(host: str) -> int:
    """An even UDP port with the next three free too (sipp binds audio and video pairs)."""
    for _ in range(50):
        base = free_port(host, kind=socket.SOCK_DGRAM) & ~1
        sockets = []
        try:
            for offset in range(4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind((host, base + offset))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise SippError("no free media port range")


# ---- audio to RTP pcap -------------------------------------------------------------

def _ulaw(sample: int) -> int:
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent, mask = 7, 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def wav_to_rtp_pcap(wav: Path, pcap: Path) -> int:
    """Write ``wav`` as a G.711 u-law RTP stream pcap (20 ms packets); returns its length in ms.

    The wav is first converted to 8 kHz mono 16-bit with sox when it is not already.
    """
    wav, pcap = Path(wav), Path(pcap)
    with wave.open(str(wav)) as w:
        ready = (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
    source = wav
    if not ready:
        if shutil.which("sox") is None:
            raise SippError("sox is needed to resample audio")
        source = pcap.with_suffix(".8k.wav")
        subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-b", "16", str(source)],
                       check=True, capture_output=True)
    with wave.open(str(source)) as w:
        frames = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return _write_rtp_pcap(bytes(_ulaw(s) for s in samples), pcap)


def silence_pcap(pcap: Path, seconds: int) -> int:
    """A u-law silence RTP pcap of ``seconds`` (the caller's background audio)."""
    return _write_rtp_pcap(b"\xff" * 8000 * seconds, pcap)


def caller_packets(presses: list[tuple[int, str]], tail_ms: int = 1000,
                   ssrc: int = 0x5EED1234) -> Iterator[bytes]:
    """A caller's whole RTP stream, one packet every 20 ms: u-law silence and an RFC 4733
    event (8 packets, the last 3 marking its end) per key, ``(wait_ms, key)`` after the
    previous one, with sequence numbers and timestamps rising through the call, as a
    real phone sends (its RTP keeps Asterisk's AsyncAGI queue polled every 20 ms).
    Made as it is read: a stream is a few thousand packets."""
    starts, t = {}, 0
    for after_ms, key in presses:
        if len(key) != 1 or key not in KEY_EVENTS:
            raise SippError(f"no RFC 4733 event for key {key!r}")
        t += after_ms
        starts[t // 20] = key
        t += 160
    key, left, key_ts = "", 0, 0
    for tick in range((t + tail_ms) // 20):
        if tick in starts:
            key, left, key_ts = starts[tick], 8, tick * 160
        if left:
            duration = min(8 - left + 1, 5) * 160
            end = 0x80 if left <= 3 else 0
            event = struct.pack("!BBH", KEY_EVENTS.index(key), end | 10, duration)
            yield _rtp(101, tick + 1, key_ts, ssrc, event, marker=left == 8)
            left -= 1
        else:
            yield _rtp(0, tick + 1, tick * 160, ssrc, SILENCE)


def caller_stream(presses: list[tuple[int, str]], path: Path, tail_ms: int = 1000) -> Audio:
    """``caller_packets`` as one pcap, for one-step calls and N identical calls in a
    benchmark."""
    packets = list(caller_packets(presses, tail_ms, KeyPresses.SSRC))
    _write_pcap(packets, Path(path))
    return Audio(Path(path), len(packets) * 20)


def _rtp(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def _write_rtp_pcap(payload: bytes, pcap: Path) -> int:
    """G.711 payload as 20 ms RTP packets in a pcap; returns its length in ms."""
    chunks = [payload[i:i + 160].ljust(160, b"\xff") for i in range(0, len(payload), 160)]
    _write_pcap([_rtp(0, n + 1, n * 160, 0x1234ABCD, c) for n, c in enumerate(chunks)], pcap)
    return len(chunks) * 20


def _write_pcap(rtp_packets: list[bytes], pcap: Path) -> None:
    """RTP packets as UDP/IPv4/Ethernet frames 20 ms apart, in a classic pcap file."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    for n, rtp in enumerate(rtp_packets):
        udp_len = 8 + len(rtp)
        udp = struct.pack("!HHHH", 5000, 6000, udp_len, 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, n & 0xFFFF, 0, 64, 17, 0,
                         src, dst)
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = b"\x00\x11\x22\x33\x44\x55" + b"\x66\x77\x88\x99\xaa\xbb" + b"\x08\x00" + ip + udp
        t = n * 0.02
        out.append(struct.pack("<IIII", int(t), int((t % 1) * 1_000_000), len(frame), len(frame)))
        out.append(frame)
    pcap.write_bytes(b"".join(out))
