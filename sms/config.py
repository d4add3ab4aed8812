"""The [sms] and [smsc:NAME] sections: the outbox rules and the carrier links."""
from __future__ import annotations

from dataclasses import dataclass

SECTIONS = {"sms"}
PREFIXES = {"smsc"}


@dataclass(frozen=True)
class SmscConfig:
    name: str
    endpoint: str
    system_id: str
    password: str
    system_type: str
    bind_mode: str  # transceiver | pair
    binds: int
    window: int
    throughput: float  # PDUs per second per bind, 0 = unlimited
    response_timeout: float
    enquire_link: float
    prefixes: tuple[str, ...]  # destination prefixes routed here; empty = any
    source_addr: str


@dataclass(frozen=True)
class SmsConfig:
    enabled: bool
    smscs: tuple[SmscConfig, ...]


def parse(ini, daemon, centers) -> SmsConfig:
    s = ini.section("sms")
    smscs = []
    for name, sec in ini.prefixed("smsc"):
        smscs.append(SmscConfig(
            name=name,
            endpoint=sec.endpoint("endpoint", required=True),
            system_id=sec.str("system_id", required=True),
            password=sec.str("password", required=True),
            system_type=sec.str("system_type", ""),
            bind_mode=sec.choice("bind_mode", ("transceiver", "pair"), "transceiver"),
            binds=sec.int("binds", 1, min=1, max=32),
            window=sec.int("window", 10, min=1, max=1024),
            throughput=sec.float("throughput", 0.0, min=0),
            response_timeout=sec.float("response_timeout", 10.0, min=0.1, max=300),
            enquire_link=sec.float("enquire_link", 30.0, min=1, max=600),
            prefixes=sec.list("prefixes"),
            source_addr=sec.str("source_addr", "12329"),
        ))
    return SmsConfig(enabled=s.bool("enabled", True), smscs=tuple(smscs))
