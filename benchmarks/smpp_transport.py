"""Micro-benchmark of the SMPP transport: submit_sm/s through our protocol against smsc_sim.

For each window (1, 10, 64) and SMSC latency (0 and 20 ms) it sends ``count``
submit_sm through the ``SmppRouter`` (one bind) on a fresh reactor and reports submits per second,
with smpplib's blocking ``Client`` against the same SMSC as the baseline. The
SMSC runs as a separate process (``python -m sandbox.smsc_sim``), DLRs off, so
the number is the submit path alone. ``python -m benchmarks.smpp_transport --out FILE``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.internet.selectreactor import SelectReactor
from twisted.python.failure import Failure

from sandbox.ports import free_port, wait_for_port
from sms.config import SmscConfig
from sms.carrier.router import SmppRouter, SubmitPart

DESTINATION = "10690000123"


@dataclass(frozen=True)
class Result:
    client: str
    window: int
    latency_ms: float
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return dict(client=self.client, window=self.window, latency_ms=self.latency_ms,
                    count=self.count, seconds=round(self.seconds, 4),
                    submits_per_s=round(self.per_second, 1))


def _config(port: int, window: int) -> SmscConfig:
    return SmscConfig(name="bench", endpoint=f"tcp:host=127.0.0.1:port={port}",
                      system_id="hotline", password="secret", system_type="",
                      bind_mode="transceiver", binds=1, window=window, throughput=0.0,
                      response_timeout=30.0, enquire_link=60.0, prefixes=(),
                      source_addr="12329")


async def _run_router(reactor, port: int, window: int, count: int) -> float:
    config = _config(port, window)
    router = SmppRouter([config], reactor, on_receipt=lambda r: None, on_mo=lambda m: None,
                        jitter=lambda: 0.0)
    router.startService()
    while not router.has_capacity(DESTINATION):
        await router.wait_for_capacity()
    body = "【示例公积金】您的公积金账户已入账".encode("utf-16-be")
    part = SubmitPart(DESTINATION, "12329", body, 8, 0, registered_delivery=0)
    started = time.perf_counter()
    done = Deferred()
    state = {"sent": 0, "finished": 0, "failed": 0}

    def finished(result):
        state["finished"] += 1
        if isinstance(result, Failure):
            state["failed"] += 1
        if state["finished"] == count and not done.called:
            done.callback(None)
        elif state["sent"] < count:
            pump()

    def pump():
        # Like the outbox dispatcher: submit while the router reports a free window slot.
        while state["sent"] < count and router.has_capacity(DESTINATION):
            state["sent"] += 1
            router.submit(part).addBoth(finished)

    pump()
    await done
    seconds = time.perf_counter() - started
    await router.stopService()
    if state["failed"]:
        raise RuntimeError(f"{state['failed']} of {count} submits failed")
    return seconds


def bench_protocol(port: int, window: int, count: int) -> float:
    """Seconds to push ``count`` submit_sm through the router (one bind, ``window``) on a
    fresh reactor."""
    reactor = SelectReactor()
    out: list = []

    def start():
        d = Deferred.fromCoroutine(_run_router(reactor, port, window, count))
        d.addBoth(out.append)
        d.addBoth(lambda _: reactor.callLater(0, reactor.stop))

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


def bench_smpplib(port: int, count: int) -> float:
    """smpplib's blocking Client: one submit_sm, wait for its response, the next."""
    import smpplib.client

    client = smpplib.client.Client("127.0.0.1", port, allow_unknown_opt_params=True)
    client.set_message_sent_handler(lambda pdu: None)  # its default prints every response
    client.connect()
    client.bind_transceiver(system_id="hotline", password="secret")
    body = "【示例公积金】您的公积金账户已入账".encode("utf-16-be")
    started = time.perf_counter()
    for _ in range(count):
        client.send_message(source_addr="12329", destination_addr=DESTINATION,
                            short_message=body, data_coding=8, registered_delivery=0)
        client.read_once()
    seconds = time.perf_counter() - started
    client.unbind()
    client.disconnect()
    return seconds


def _configure(control: int, **settings) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{control}/config",
                                 data=json.dumps(settings).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def run(windows=(1, 10, 64), latencies_ms=(0.0, 20.0), seconds_per_run: float = 2.0,
        max_count: int = 20000) -> list[Result]:
    """All combinations against one smsc_sim process; counts sized to ~seconds_per_run."""
    port, control = free_port(), free_port()
    sim = subprocess.Popen([sys.executable, "-m", "sandbox.smsc_sim", "--port", str(port),
                            "--control-port", str(control), "--no-dlr", "--password", "secret"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not (wait_for_port("127.0.0.1", port) and wait_for_port("127.0.0.1", control)):
            raise RuntimeError("smsc_sim did not start")
        results = []
        for latency_ms in latencies_ms:
            _configure(control, latency=latency_ms / 1000.0)
            for window in windows:
                guess = 8000.0 if latency_ms == 0 else min(8000.0, window / (latency_ms / 1000))
                count = max(50, min(max_count, int(guess * seconds_per_run)))
                results.append(Result("protocol", window, latency_ms, count,
                                      bench_protocol(port, window, count)))
            guess = 4000.0 if latency_ms == 0 else 1000.0 / latency_ms
            count = max(50, min(max_count, int(guess * seconds_per_run)))
            results.append(Result("smpplib", 1, latency_ms, count, bench_smpplib(port, count)))
        return results
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.smpp_transport")
    parser.add_argument("--seconds", type=float, default=2.0, help="target seconds per run")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    results = run(seconds_per_run=args.seconds)
    for r in results:
        print(f"{r.client:9s} window {r.window:3d} latency {r.latency_ms:4.0f} ms: "
              f"{r.per_second:9.1f} submit_sm/s ({r.count} in {r.seconds:.2f} s)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump([r.as_dict() for r in results], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
