"""``hotline doctor -c FILE``: can this installation work? One PASS or FAIL line per check,
each failure with a hint, and a non-zero exit when anything fails.

Checks, in order: the configuration (with its secrets), the database (reachable,
migrated), the prompt library (complete), file permissions, then over the network with
a timeout each: AMI login and the dialplan's heartbeat variable, a bind and unbind on
every SMSC, and for each center on an HTTP core a signed health call and the clock
skew against it. It changes nothing: no folder, no migration, no message.
"""
from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from collections.abc import Mapping

from twisted.internet.defer import Deferred, TimeoutError as NoAnswer
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.error import ConnectError

from common.config import Config, ConfigError, load
from core_client.http import HttpCore, make_http_client
from core_client.interface import CoreError
from ivr.asterisk.ami_protocol import AmiError, AmiProtocol
from ivr.prompt_ids import referenced_prompts
from prompts import cli as prompts_cli
from sms.carrier.router import LINKS as CARRIER_LINKS
from sms.smpp.protocol import SmppError, SmppProtocol
from storage.migrate import NotReady, check_current, sqlite_file

NETWORK_TIMEOUT = 5.0  # seconds for each network check: connect, log in or bind, answer
MAX_SKEW = 30.0  # seconds; the core refuses signatures beyond 300
# An inline (not env:) secret in the INI file: then the file must not be world-readable.
_INLINE_SECRET = re.compile(r"^\s*(secret|password|core_key)\s*=\s*(?!env:)\S", re.M)


@dataclass(frozen=True)
class Result:
    check: str
    ok: bool
    detail: str
    hint: str = ""

    def lines(self) -> list[str]:
        out = [f"{'PASS' if self.ok else 'FAIL'}  {self.check}: {self.detail}"]
        if not self.ok and self.hint:
            out.append(f"      hint: {self.hint}")
        return out


def check_config(path: str, rooms: Mapping[str, ModuleType]) -> tuple[Config | None, Result]:
    try:
        config = load(path, rooms)
    except ConfigError as e:
        hint = ("export it before running doctor (the service reads /etc/hotline/hotline.env)"
                if "environment variable" in e.problem else
                "fix the named key (hotline.sample.ini documents every key)")
        return None, Result("config", False, str(e), hint)
    return config, Result("config", True, f"{config.path} ({len(config.centers)} centers)")


def check_database(config: Config) -> Result:
    try:
        check_current(config.database.url)
    except NotReady as e:
        return Result("database", False, str(e),
                      f"hotline db upgrade -c {config.path} (or hotline init -c {config.path})")
    return Result("database", True, "reachable, every migration applied")


def check_prompts(config: Config) -> Result:
    ids, gaps, uncatalogued = prompts_cli.check(config, referenced_prompts)
    if gaps or uncatalogued:
        return Result("prompts", False,
                      f"{len(gaps)} missing, {len(uncatalogued)} not in the catalog "
                      f"(first: {(gaps or uncatalogued)[0]})",
                      f"hotline prompts build-defaults -c {config.path}, or prompts import")
    return Result("prompts", True, f"{len(ids)} prompts in every configured language")


def check_permissions(config: Config) -> list[Result]:
    """The service user can write its folders; nobody else can; inline secrets are private."""
    problems = []
    mode = os.stat(config.path).st_mode
    if mode & stat.S_IWOTH:
        problems.append(f"{config.path} is writable by everyone")
    text = Path(config.path).read_text("utf-8")
    if mode & stat.S_IROTH and _INLINE_SECRET.search(text):
        problems.append(f"{config.path} holds an inline secret and is readable by everyone")
    paths = [config.daemon.state_dir]
    if config.prompts is not None:
        paths.append(Path(config.prompts.library_dir))
    db_file = sqlite_file(config.database.url)
    if db_file is not None and db_file.exists():
        paths.append(db_file)
    for path in paths:
        if not path.exists():
            problems.append(f"{path} does not exist")
        elif not os.access(path, os.W_OK):
            problems.append(f"{path} is not writable by this user")
        elif path.stat().st_mode & stat.S_IWOTH:
            problems.append(f"{path} is writable by everyone")
    if problems:
        return [Result("permissions", False, "; ".join(problems),
                       "run doctor as the service user; chmod 640 the config (root:hotline), "
                       f"chown hotline the state folder (hotline init -c {config.path} makes it)")]
    return [Result("permissions", True, "config, state folder, prompt library and database")]


async def _with_timeout(d: Deferred, reactor: Any, what: str) -> Any:
    d.addTimeout(NETWORK_TIMEOUT, reactor)
    try:
        return await d
    except NoAnswer:
        raise _Failed(f"{what}: no answer within {NETWORK_TIMEOUT:g} s") from None
    except ConnectError as e:
        raise _Failed(f"{what}: {e}") from None


class _Failed(Exception):
    """A network check's failure, phrased for its FAIL line."""


async def check_ami(config: Config, reactor: Any, endpoint: str) -> Result:
    """Login and heartbeat on one Asterisk node (every node listed in ``[ami] endpoint``)."""
    ami = config.ivr.ami
    hint = (f"is Asterisk running and listening at {endpoint}? [ami] username and secret "
            "must match a manager.conf user (dialplans/README.md)")
    proto = AmiProtocol(reactor, action_timeout=NETWORK_TIMEOUT)
    try:
        await _with_timeout(connectProtocol(clientFromString(reactor, endpoint), proto),
                            reactor, "connect")
        await proto.login(ami.username, ami.secret)
        reply = await proto.action("Getvar", {"Variable": ami.heartbeat_variable})
        await proto.action("Logoff").addErrback(lambda _f: None)
    except (_Failed, AmiError, OSError) as e:
        return Result("ami", False, f"{endpoint}: {str(e) or type(e).__name__}", hint)
    finally:
        if proto.transport is not None:
            proto.transport.loseConnection()
    value = (reply.get("Value") or "").strip()
    if value.isdigit():
        beat = f"{ami.heartbeat_variable} set {max(0, int(time.time()) - int(value))} s ago"
    else:
        beat = f"{ami.heartbeat_variable} not set (no daemon is driving calls yet)"
    return Result("ami", True, f"logged in at {endpoint} as {ami.username}; {beat}")


async def check_smsc(smsc: Any, reactor: Any) -> Result:
    name = f"smsc {smsc.name}"
    if smsc.protocol in CARRIER_LINKS:
        return await check_carrier(smsc, reactor)
    mode = "transceiver" if smsc.bind_mode == "transceiver" else "transmitter"
    proto = SmppProtocol(reactor, response_timeout=NETWORK_TIMEOUT, name=name)
    try:
        await _with_timeout(connectProtocol(clientFromString(reactor, smsc.endpoint), proto),
                            reactor, "connect")
        system_id = await proto.bind(mode, smsc.system_id, smsc.password, smsc.system_type)
        await proto.unbind(NETWORK_TIMEOUT)
    except (_Failed, SmppError, OSError) as e:
        if proto.transport is not None:
            proto.transport.loseConnection()
        return Result(name, False, f"{smsc.endpoint}: {str(e) or type(e).__name__}",
                      f"is the SMSC up at {smsc.endpoint}? check [smsc:{smsc.name}] system_id "
                      "and password with the carrier")
    return Result(name, True, f"bound as {mode} to {system_id or smsc.endpoint}, unbound")


async def check_carrier(smsc: Any, reactor: Any) -> Result:
    """A CMPP, SMGP or SGIP gateway: log in as the daemon's link does, then log out."""
    name = f"smsc {smsc.name}"
    endpoint = clientFromString(reactor, smsc.endpoint)
    link = CARRIER_LINKS[smsc.protocol](name, endpoint, smsc, reactor)
    proto = link.build_protocol()
    try:
        await _with_timeout(connectProtocol(endpoint, proto), reactor, "connect")
        await _with_timeout(link.log_in(proto), reactor, "login")
        await _with_timeout(link.log_out(proto), reactor, "logout")
    except (_Failed, SmppError, OSError) as e:
        if proto.transport is not None:
            proto.transport.loseConnection()
        return Result(name, False, f"{smsc.protocol} {smsc.endpoint}: "
                                   f"{str(e) or type(e).__name__}",
                      f"is the gateway up at {smsc.endpoint}? check [smsc:{smsc.name}] "
                      "system_id and password with the carrier")
    return Result(name, True, f"logged in over {smsc.protocol} to {smsc.endpoint}, logged out")


async def check_core(center: Any, reactor: Any, client: Any) -> list[Result]:
    name = f"core {center.code}"
    if center.core != "http":
        where = center.core_db if center.core_db.exists() else "generated on first start"
        return [Result(name, True, f"embedded demo core ({where})")]
    core = HttpCore(center.code, center.core_url, center.core_key, reactor, client,
                    timeout=min(center.core_timeout, NETWORK_TIMEOUT))
    sent = time.time()
    try:
        core_time = await core.health()
    except CoreError as e:
        return [Result(name, False, f"{center.core_url}: {e}",
                       f"is the core up at {center.core_url}? a refused signature means "
                       f"[center:{center.code}] core_key differs from the core's, or the "
                       "clocks differ by more than 300 s")]
    skew = core_time - (sent + time.time()) / 2
    health = Result(name, True, f"{center.core_url} answered a signed health call")
    clock = Result(f"clock {center.code}", abs(skew) <= MAX_SKEW,
                   f"{round(skew):+d} s against the core (at most {MAX_SKEW:g} s)",
                   "synchronise this host's clock (chrony or systemd-timesyncd)")
    return [health, clock]


async def check_network(config: Config, reactor: Any) -> list[Result]:
    results = []
    if config.ivr is not None and not config.ivr.ami.enabled:
        results.append(Result("ami", True, "disabled ([ami] enabled = no)"))
    elif config.ivr is not None:
        for endpoint in config.ivr.ami.endpoints:
            results.append(await check_ami(config, reactor, endpoint))
    if config.sms is not None and config.sms.enabled:
        for smsc in config.sms.smscs:
            results.append(await check_smsc(smsc, reactor))
    client = make_http_client(reactor) if any(
        c.core == "http" for c in config.centers.values()) else None
    for center in config.centers.values():
        results.extend(await check_core(center, reactor, client))
    return results


def local_checks(config: Config) -> list[Result]:
    database = check_database(config)
    results = [database]
    # Prompts and permissions read files only; the prompt check needs no database.
    if config.prompts is not None:
        results.append(check_prompts(config))
    results.extend(check_permissions(config))
    return results
