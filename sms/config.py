"""The [sms] and [smsc:NAME] sections: the outbox rules and the carrier links."""
from __future__ import annotations

from dataclasses import dataclass, field

from common.config import zone
from sms.carrier.destinations import FORMATS as DESTINATION_FORMATS
from sms.door.config import DoorConfig, parse as parse_door

SECTIONS = {"sms", "sms.quiet_hours", "sms.keywords", "sms.destinations", "sms.door"}
PREFIXES = {"smsc"}
_ID_FORMS = ("auto", "dec", "hex", "str")
PROTOCOLS = ("smpp", "cmpp2", "cmpp3", "smgp", "sgip")
CARRIER_KEYS = ("mobile", "unicom", "telecom", "broadnet", "virtual", "satellite")


@dataclass(frozen=True)
class SmscConfig:
    name: str
    endpoint: str
    system_id: str
    password: str = field(repr=False)
    system_type: str
    bind_mode: str  # transceiver | pair
    binds: int
    window: int
    throughput: float  # PDUs per second per bind, 0 = unlimited
    response_timeout: float
    enquire_link: float
    prefixes: tuple[str, ...]  # destination prefixes routed here; empty = any
    source_addr: str
    # How this SMSC writes message ids: auto | dec | hex | str (sms.carrier.receipts.normalise_message_id)
    message_id_resp: str = "auto"  # in submit_sm_resp
    message_id_dlr: str = "auto"  # in delivery receipts
    reconnect_min: float = 1.0  # ClientService backoff, seconds
    reconnect_max: float = 60.0
    # The mainland carriers' own protocols (sms.cmpp, sms.smgp, sms.sgip) beside SMPP.
    protocol: str = "smpp"
    carriers: tuple[str, ...] = ()  # segment-table carriers routed here (mobile, ...); empty = any
    centers: tuple[str, ...] = ()  # centers whose messages may use this link; empty = all
    service_id: str = ""  # CMPP Service_Id, SMGP ServiceID, SGIP ServiceType
    msg_src: str = ""  # CMPP Msg_src; empty = system_id (the SP id)
    gbk: bool = False  # Chinese parts in GBK (Msg_Fmt 15) instead of UCS2
    active_test: float = 180.0  # idle seconds before an ACTIVE_TEST (CMPP/SMGP: C = 3 min)
    active_test_timeout: float = 60.0  # T
    active_test_tries: int = 3  # N
    corp_id: str = ""  # SGIP CorpId
    node_id: int = 0  # SGIP: the SP's node id, the first part of every sequence number
    listen: str = ""  # SGIP: the server endpoint the carrier's SMG connects back to
    smg_login: str = ""  # SGIP: the login name and password the SMG binds with
    smg_password: str = field(default="", repr=False)
    # SGIP: seconds with nothing to send after which a connection is unbound (0 = never)
    idle: float = 30.0
    # center -> digits appended to source_addr (Src_Id, SrcTermID, SPNumber), so that each
    # center's messages and the MO answering them carry its own extension
    extensions: tuple[tuple[str, str], ...] = ()


CLASSES = ("code", "transaction", "bulk", "reply")
KEYWORD_ACTIONS = ("balance", "loan", "unsubscribe", "subscribe")
_DEFAULT_QUIET = {"code": "none", "transaction": "21:00-08:00", "bulk": "21:00-08:00",
                  "reply": "none"}
_DEFAULT_VALIDITY = {"code": 600, "transaction": 172800, "bulk": 259200, "reply": 3600}
_DEFAULT_RECEIPT_TIMEOUT = {"code": 1800, "reply": 3600, "transaction": 14400, "bulk": 43200}
_DEFAULT_KEYWORDS = {"balance": ("YE", "CX"), "loan": ("DKYE",), "unsubscribe": ("TD",),
                     "subscribe": ("DY",)}


@dataclass(frozen=True)
class OutboxConfig:
    """The [sms] outbox rules: validity, retries, limits, batching, alerts."""

    timezone: str
    validity: dict  # class -> seconds
    quiet_hours: dict  # class -> DailyWindow, or None: the class is never held
    retry_base: float
    retry_max: float
    per_destination_per_hour: int
    batch: int
    max_inflight: int  # parts handed to the binds, unanswered; 0 = twice the total window
    alerts_interval: float
    alerts_batch: int
    reminder_days: int
    reminder_time: tuple[int, int]
    mo_routes: dict  # MO destination number -> center code
    keywords: dict  # center -> {KEYWORD: action}
    # center -> destination formats it may send to (sms.carrier.destinations); others: mainland
    destinations: dict = field(default_factory=dict)
    # class -> seconds a submitted part waits for its receipt before it is unknown
    receipt_timeout: dict = field(default_factory=lambda: dict(_DEFAULT_RECEIPT_TIMEOUT))
    mo_replies_per_hour: int = 5  # replies to one sender per hour; more MO go unanswered

    def destination_formats(self, center: str) -> tuple[str, ...]:
        return self.destinations.get(center, ("mainland",))


@dataclass(frozen=True)
class SmsConfig:
    enabled: bool
    smscs: tuple[SmscConfig, ...]
    outbox: OutboxConfig
    door: DoorConfig | None = None


def parse(ini, daemon, centers) -> SmsConfig:
    s = ini.section("sms")
    smscs = []
    for name, sec in ini.prefixed("smsc"):
        extensions = []
        for item in sec.list("extensions"):
            center, _, digits = item.partition(":")
            if center.strip() not in centers or not (digits.strip().isascii()
                                                     and digits.strip().isdigit()):
                raise sec.error("extensions", f"must be CENTER:DIGITS with a known center, "
                                              f"not {item!r}")
            extensions.append((center.strip(), digits.strip()))
        protocol = sec.choice("protocol", PROTOCOLS, "smpp")
        carrier = protocol != "smpp"
        carriers = sec.list("carriers")
        for key in carriers:
            if key not in CARRIER_KEYS:
                raise sec.error("carriers", f"{key!r} is none of {', '.join(CARRIER_KEYS)}")
        smscs.append(SmscConfig(
            name=name,
            endpoint=sec.endpoint("endpoint", required=True),
            system_id=sec.str("system_id", required=True),
            password=sec.secret("password", required=True),
            system_type=sec.str("system_type", ""),
            bind_mode=sec.choice("bind_mode", ("transceiver", "pair"), "transceiver"),
            binds=sec.int("binds", 1, min=1, max=32),
            # CMPP's specification advises a window of 16; SMPP's usual is 10.
            window=sec.int("window", 16 if carrier else 10, min=1, max=1024),
            throughput=sec.float("throughput", 0.0, min=0),
            response_timeout=sec.float("response_timeout", 10.0, min=0.1, max=300),
            enquire_link=sec.float("enquire_link", 30.0, min=1, max=600),
            prefixes=sec.list("prefixes"),
            source_addr=sec.str("source_addr", "12329"),
            message_id_resp=sec.choice("message_id_resp", _ID_FORMS, "auto"),
            message_id_dlr=sec.choice("message_id_dlr", _ID_FORMS, "auto"),
            reconnect_min=sec.float("reconnect_min", 1.0, min=0.05, max=300),
            reconnect_max=sec.float("reconnect_max", 60.0, min=0.05, max=3600),
            protocol=protocol,
            carriers=carriers,
            centers=sec.list("centers"),
            service_id=sec.str("service_id", ""),
            msg_src=sec.str("msg_src", ""),
            gbk=sec.choice("text_format", ("ucs2", "gbk"), "ucs2") == "gbk",
            active_test=sec.float("active_test", 180.0, min=1, max=3600),
            active_test_timeout=sec.float("active_test_timeout", 60.0, min=0.1, max=600),
            active_test_tries=sec.int("active_test_tries", 3, min=1, max=10),
            corp_id=sec.str("corp_id", ""),
            node_id=sec.int("node_id", 0, min=0, max=0xFFFFFFFF),
            listen=sec.endpoint("listen", "", required=protocol == "sgip"),
            smg_login=sec.str("smg_login", "", required=protocol == "sgip"),
            smg_password=sec.str("smg_password", "", required=protocol == "sgip"),
            idle=sec.float("idle", 30.0, min=0, max=3600),
            extensions=tuple(extensions),
        ))
    return SmsConfig(enabled=s.bool("enabled", True), smscs=tuple(smscs),
                     outbox=_outbox(ini, s, centers), door=parse_door(ini))


def _outbox(ini, s, centers) -> OutboxConfig:
    validity = {k: s.int(f"validity_{k}", v, min=10, max=7 * 86400)
                for k, v in _DEFAULT_VALIDITY.items()}
    q = ini.section("sms.quiet_hours")
    quiet = {}
    for klass, default in _DEFAULT_QUIET.items():
        quiet[klass] = None if q.str(klass, default).lower() == "none" \
            else q.window(klass, default)
    routes = {}
    for item in s.list("mo_routes"):
        number, sep, center = item.partition("=")
        if not sep or center.strip() not in centers:
            raise s.error("mo_routes", f"must be NUMBER=CENTER with a known center, not {item!r}")
        routes[number.strip()] = center.strip()
    kw = ini.section("sms.keywords")
    keywords = {}
    for center in centers:
        table = {}
        for action, default in _DEFAULT_KEYWORDS.items():
            words = kw.list(f"{center}.{action}", ()) or kw.list(action, default)
            for word in words:
                table[word.upper()] = action
        keywords[center] = table
    for key in kw.keys():
        name = key.split(".", 1)[-1]
        if name not in KEYWORD_ACTIONS or ("." in key and key.split(".", 1)[0] not in centers):
            raise kw.error(key, f"unknown keyword action (use [CENTER.]{'/'.join(KEYWORD_ACTIONS)})")
    retry_base = s.float("retry_base", 5.0, min=0.01, max=3600)
    return OutboxConfig(
        destinations=_destinations(ini, centers),
        receipt_timeout={k: s.int(f"receipt_timeout_{k}", v, min=60, max=7 * 86400)
                         for k, v in _DEFAULT_RECEIPT_TIMEOUT.items()},
        timezone=s.parse("timezone", "Asia/Shanghai", zone),
        validity=validity,
        quiet_hours=quiet,
        retry_base=retry_base,
        retry_max=s.float("retry_max", 300.0, min=retry_base, max=86400),
        per_destination_per_hour=s.int("per_destination_per_hour", 20, min=1),
        batch=s.int("batch", 500, min=1, max=10000),
        max_inflight=s.int("max_inflight", 0, min=0, max=100000),
        alerts_interval=s.float("alerts_interval", 10.0, min=0.1, max=3600),
        alerts_batch=s.int("alerts_batch", 1000, min=1, max=100000),
        reminder_days=s.int("reminder_days", 3, min=0, max=30),
        reminder_time=s.parse("reminder_time", "09:00", _hhmm),
        mo_routes=routes,
        keywords=keywords,
        mo_replies_per_hour=s.int("mo_replies_per_hour", 5, min=1, max=1000),
    )


def _destinations(ini, centers) -> dict:
    """[sms.destinations]: ``default`` and per-center lists of formats (mainland, ...)."""
    sec = ini.section("sms.destinations")
    for key in sec.keys():
        if key != "default" and key not in centers:
            raise sec.error(key, "must be default or a center code")
    default = sec.list("default", ("mainland",))
    table = {}
    for center in centers:
        formats = sec.list(center, default)
        unknown = [f for f in formats if f not in DESTINATION_FORMATS]
        if unknown or not formats:
            raise sec.error(center if center in sec.keys() else "default",
                            f"formats must be some of {', '.join(DESTINATION_FORMATS)}")
        table[center] = formats
    return table


def _hhmm(value: str) -> tuple[int, int]:
    h, sep, m = value.partition(":")
    if not sep or not (h.isdigit() and m.isdigit()) or int(h) > 23 or int(m) > 59:
        raise ValueError(f"must be a time like 09:00, not {value!r}")
    return int(h), int(m)


