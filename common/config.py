"""The one INI file: parsed once at start into frozen dataclasses, or a one-line error.

This module reads the shared sections; each room parses its own (``ivr.config``,
``sms.config``, ``prompts.config``) with the typed readers here, and the
composition root says which rooms there are (``load(path, rooms)``), so nothing
here imports a room. A bad value is always reported as ``FILE [section] key: what
is wrong``. Secrets may come from the environment: a value written as ``env:NAME``
is read from variable NAME; tools that need no secret load with ``secrets=False``
and an unset secret variable then reads as empty instead of stopping them.
"""
from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypeVar
from collections.abc import Callable, Mapping

from common.daily_window import EVERY_DAY, DailyWindow
from common.validated import out_of_range

T = TypeVar("T")

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


class ConfigError(Exception):
    """A configuration problem, already phrased as the one line the operator sees."""

    def __init__(self, path: str, section: str | None, key: str | None, problem: str):
        where = path
        if section is not None:
            where += f" [{section}]"
        if key is not None:
            where += f" {key}"
        super().__init__(f"{where}: {problem}")
        self.path, self.section, self.key, self.problem = path, section, key, problem


_UNSET_ENV = object()  # an env: secret whose variable is unset, in a load without secrets


class Section:
    """Typed, validated reads from one INI section; every read is remembered."""

    def __init__(self, path: str, name: str, values: dict[str, str], base_dir: Path,
                 secrets: bool = True):
        self.path, self.name, self._values, self.base_dir = path, name, values, base_dir
        self.secrets = secrets  # False: an unset env: secret reads as empty (see secret())
        self.read_keys: set[str] = set()

    def error(self, key: str | None, problem: str) -> ConfigError:
        return ConfigError(self.path, self.name, key, problem)

    def has(self, key: str) -> bool:
        return key in self._values

    def keys(self) -> list[str]:
        return list(self._values)

    def _raw(self, key: str, default: str | None, *, optional_env: bool = False):
        self.read_keys.add(key)
        raw = self._values.get(key)
        if raw is None or raw.strip() == "":
            return default
        raw = raw.strip()
        if raw.startswith("env:"):
            var = raw[4:].strip()
            if var not in os.environ:
                if optional_env:
                    return _UNSET_ENV
                raise self.error(key, f"environment variable {var} is not set")
            return os.environ[var]
        return raw

    def ignore(self, key: str) -> None:
        """A valid key this configuration does not use (a disabled link's secret): known,
        so not an "unknown key", and never read, so its variable need not be set."""
        self.read_keys.add(key)

    def secret(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        """A password or key: like ``str``, but when the file was loaded without secrets
        an unset ``env:`` variable reads as empty instead of failing (commands that only
        read the database need no AMI secret)."""
        value = self._raw(key, default, optional_env=not self.secrets)
        if value is _UNSET_ENV:
            return ""
        if not value and required:
            raise self.error(key, "is required")
        return value or ""

    def str(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._raw(key, default)
        if not value:
            if required:
                raise self.error(key, "is required")
            return ""
        return value

    def int(self, key: str, default: int, *, min: int | None = None, max: int | None = None) -> int:
        raw = self._raw(key, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.error(key, f"must be a whole number, not {raw!r}") from None
        return self._in_range(key, value, min, max)

    def float(self, key: str, default: float, *, min: float | None = None,
              max: float | None = None) -> float:
        raw = self._raw(key, None)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise self.error(key, f"must be a number, not {raw!r}") from None
        return self._in_range(key, value, min, max)

    def _in_range(self, key: str, value: T, lo: float | None, hi: float | None) -> T:
        problem = out_of_range(value, lo, hi)
        if problem:
            raise self.error(key, problem)
        return value

    def bool(self, key: str, default: bool) -> bool:
        raw = self._raw(key, None)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise self.error(key, f"must be yes or no, not {raw!r}")

    def list(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        raw = self._raw(key, None)
        if raw is None:
            return default
        return tuple(p.strip() for p in raw.replace("\n", ",").split(",") if p.strip())

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.str(key, default)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def path_value(self, key: str, default: str | None = None, *, required: bool = False) -> Path:
        """A path; relative ones are taken from the config file's folder."""
        value = self.str(key, default, required=required)
        p = Path(value)
        return p if p.is_absolute() else (self.base_dir / p)

    def endpoint(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        """A Twisted endpoint string such as ``tcp:host=127.0.0.1:port=5038``."""
        value = self.str(key, default, required=required)
        if value and ":" not in value:
            raise self.error(key, f"must be an endpoint like tcp:host=H:port=P, not {value!r}")
        return value

    def window(self, key: str, default: str, days: tuple[int, ...] = EVERY_DAY) -> DailyWindow:
        """An ``HH:MM-HH:MM`` daily window (may wrap past midnight) on ``days``."""
        return self.parse(key, default, lambda raw: DailyWindow.parse(raw, days))

    def parse(self, key: str, default: str, convert: Callable[[str], T]) -> T:
        raw = self.str(key, default)
        try:
            return convert(raw)
        except ValueError as e:
            raise self.error(key, str(e)) from None


def zone(value: str) -> str:
    """A time zone name the zoneinfo database knows (the value is kept as written)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class IniFile:
    """The parsed file; rooms ask it for sections by name or by prefix."""

    def __init__(self, path: str | os.PathLike, secrets: bool = True):
        self.path = str(path)
        self.secrets = secrets
        self.base_dir = Path(path).resolve().parent
        parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",),
                                           strict=True)
        parser.optionxform = str  # keys are case-sensitive (client ids, keywords)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except FileNotFoundError:
            raise ConfigError(self.path, None, None, "file not found") from None
        except (configparser.Error, UnicodeDecodeError) as e:
            first = str(e).splitlines()[0]
            raise ConfigError(self.path, None, None, f"not a valid INI file: {first}") from None
        self._parser = parser
        self.sections: dict[str, Section] = {}

    def section(self, name: str) -> Section:
        if name not in self.sections:
            values = dict(self._parser[name]) if self._parser.has_section(name) else {}
            self.sections[name] = Section(self.path, name, values, self.base_dir, self.secrets)
        return self.sections[name]

    def has_section(self, name: str) -> bool:
        return self._parser.has_section(name)

    def prefixed(self, prefix: str) -> list[tuple[str, Section]]:
        """Sections named ``prefix:NAME``, as (NAME, section)."""
        out = []
        for name in self._parser.sections():
            if name.startswith(prefix + ":"):
                out.append((name[len(prefix) + 1:].strip(), self.section(name)))
        return out

    def check_unknown(self, known_sections: set[str], known_prefixes: set[str],
                      other_sections_ok: bool = False) -> None:
        """Reject sections and keys nobody read: a typo must not pass silently.
        ``other_sections_ok``: a root that runs some rooms only skips the others' sections."""
        for name in self._parser.sections():
            prefix = name.split(":", 1)[0] if ":" in name else None
            if name not in known_sections and prefix not in known_prefixes:
                if other_sections_ok:
                    continue
                raise ConfigError(self.path, name, None, "unknown section")
            sec = self.section(name)
            for key in sec.keys():
                if key not in sec.read_keys:
                    raise ConfigError(self.path, name, key, "unknown key")


@dataclass(frozen=True)
class DaemonConfig:
    instance: str
    state_dir: Path
    log_format: str
    log_file: str
    log_level: str
    shutdown_timeout: float


@dataclass(frozen=True)
class DatabaseConfig:
    url: str
    threads: int


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool
    listen: str
    clients: dict[str, str] = field(default_factory=dict, repr=False)  # id -> shared secret


@dataclass(frozen=True)
class CodesConfig:
    """Verification-code rules (core_client.codes)."""

    ttl: int
    length: int
    max_attempts: int
    per_minute: int
    per_hour: int
    per_day: int


@dataclass(frozen=True)
class CenterConfig:
    """One city center served by this provincial platform."""

    code: str
    name: str
    signature: str
    core: str  # embedded | http
    core_db: Path | None
    core_url: str
    core_key: str = field(repr=False)
    core_timeout: float
    languages: tuple[str, ...]
    dnid: tuple[str, ...]
    office_hours: DailyWindow  # when agents answer (days = office_days)
    timezone: str = "Asia/Shanghai"  # office hours and spoken times are in this zone


@dataclass(frozen=True)
class Config:
    path: str
    daemon: DaemonConfig
    database: DatabaseConfig
    http: HttpConfig
    codes: CodesConfig
    centers: dict[str, CenterConfig]
    # The rooms' own sections, None for a room the composition root did not load.
    ivr: object = None  # ivr.config.IvrConfig
    sms: object = None  # sms.config.SmsConfig
    prompts: object = None  # prompts.config.PromptsConfig


def _daemon(ini: IniFile) -> DaemonConfig:
    s = ini.section("daemon")
    return DaemonConfig(
        instance=s.parse("instance", "hotline-1", _instance_name),
        state_dir=s.path_value("state_dir", "var"),
        log_format=s.choice("log_format", ("text", "json"), "text"),
        log_file=s.str("log_file", "-"),
        log_level=s.choice("log_level", ("debug", "info", "warn", "error"), "info"),
        shutdown_timeout=s.float("shutdown_timeout", 5.0, min=0.5, max=120),
    )


def _instance_name(value: str) -> str:
    if not value.replace("-", "").replace("_", "").isalnum() or len(value) > 40:
        raise ValueError(f"must be letters, digits, - and _ (at most 40), not {value!r}")
    return value


def _database(ini: IniFile, daemon: DaemonConfig) -> DatabaseConfig:
    s = ini.section("database")
    default = f"sqlite:///{daemon.state_dir / 'hotline.db'}"
    url = s.str("url", default)
    if not (url.startswith("sqlite") or url.startswith("postgresql")):
        raise s.error("url", "must be a sqlite:/// or postgresql:// URL")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite://":
        rel = url[len("sqlite:///"):]
        url = f"sqlite:///{(ini.base_dir / rel).resolve()}"
    return DatabaseConfig(url=url, threads=s.int("threads", 4, min=1, max=64))


def _http(ini: IniFile) -> HttpConfig:
    s = ini.section("http")
    clients = {}
    if ini.has_section("http.clients"):
        c = ini.section("http.clients")
        for key in c.keys():
            clients[key] = c.secret(key, required=True)
    return HttpConfig(
        enabled=s.bool("enabled", True),
        listen=s.endpoint("listen", "tcp:port=8329:interface=127.0.0.1"),
        clients=clients,
    )


def _codes(ini: IniFile) -> CodesConfig:
    s = ini.section("codes")
    return CodesConfig(
        ttl=s.int("ttl", 300, min=30, max=3600),
        length=s.int("length", 6, min=4, max=8),
        max_attempts=s.int("max_attempts", 5, min=1, max=20),
        per_minute=s.int("per_minute", 1, min=1),
        per_hour=s.int("per_hour", 5, min=1),
        per_day=s.int("per_day", 10, min=1),
    )


def _center(code: str, s: Section, daemon: DaemonConfig) -> CenterConfig:
    if not code.isalnum():
        raise s.error(None, "center code must be letters and digits")
    core = s.choice("core", ("embedded", "http"), "embedded")
    core_db = s.path_value("core_db", str(daemon.state_dir / f"core-{code}.db")) \
        if core == "embedded" else None
    core_url = s.str("core_url", "", required=(core == "http"))
    core_key = s.secret("core_key", "", required=(core == "http"))
    languages = s.list("languages", ("zh", "en"))
    for lang in languages:
        if lang not in ("zh", "en"):
            raise s.error("languages", f"unknown language {lang!r} (zh, en)")
    days = s.list("office_days", ("1", "2", "3", "4", "5"))
    try:
        office_days = tuple(sorted(int(d) for d in days))
    except ValueError:
        raise s.error("office_days", "must be weekday numbers 1-7") from None
    if any(not 1 <= d <= 7 for d in office_days):
        raise s.error("office_days", "must be weekday numbers 1-7")
    return CenterConfig(
        code=code,
        name=s.str("name", required=True),
        signature=s.str("signature", required=True),
        core=core,
        core_db=core_db,
        core_url=core_url,
        core_key=core_key,
        core_timeout=s.float("core_timeout", 3.0, min=0.1, max=60),
        languages=languages,
        dnid=s.list("dnid", ("12329",)),
        office_hours=s.window("office_hours", "09:00-17:00", office_days),
        timezone=s.parse("timezone", "Asia/Shanghai", zone),
    )


def load(path: str | os.PathLike, rooms: Mapping[str, ModuleType], *, secrets: bool = True,
         only_these_rooms: bool = False) -> Config:
    """Parse and validate the shared sections and the given rooms', or raise ConfigError
    naming the first problem.

    ``rooms`` maps a Config field (ivr, sms, prompts) to the room's config module, which
    offers ``parse(ini, daemon, centers)``, ``SECTIONS`` and ``PREFIXES``.
    ``secrets=False`` lets unset secret variables read as empty (tools without links);
    ``only_these_rooms`` tolerates the sections of rooms not listed (a root running some).
    """
    ini = IniFile(path, secrets)
    daemon = _daemon(ini)
    centers = {code: _center(code, s, daemon) for code, s in ini.prefixed("center")}
    if not centers:
        raise ConfigError(ini.path, None, None, "at least one [center:CODE] section is needed")
    config = Config(
        path=ini.path,
        daemon=daemon,
        database=_database(ini, daemon),
        http=_http(ini),
        codes=_codes(ini),
        centers=centers,
        **{name: room.parse(ini, daemon, centers) for name, room in rooms.items()},
    )
    ini.check_unknown(
        {"daemon", "database", "http", "http.clients", "codes"}.union(
            *(room.SECTIONS for room in rooms.values())),
        {"center"}.union(*(room.PREFIXES for room in rooms.values())),
        other_sections_ok=only_these_rooms,
    )
    return config
