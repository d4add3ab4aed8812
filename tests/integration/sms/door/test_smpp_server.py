"""The door's SMPP server against the project's own ESME protocol, joined in memory (iosim):
binds with per-client credentials, submit_sm answered after the commit, throttling,
generic_nack for garbage, receipts as deliver_sm redelivered on the next bind."""
from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.test.iosim import connectedServerAndClient

from sms.door.callbacks import sweep
from sms.door.config import DoorConfig
from sms.door.smpp_server import DoorSmppProtocol, DoorSmppServer
from sms.outbox.records import SubmitResult
from sms.smpp import codec
from sms.smpp.protocol import PermanentError, SmppProtocol, TemporaryError
from tests.support.door import ENV, outcome

SMPP_ENV = {**ENV, "DOOR_WUHAN_LOANS_SMPP": "pw123456"}


def connect(door, server, receipts=None):
    esme = SmppProtocol(door.clock, on_deliver=lambda pdu: (receipts.append(pdu)
                                                            if receipts is not None else None,
                                                            succeed(None))[1])
    client, srv, pump = connectedServerAndClient(
        lambda: DoorSmppProtocol(server, "127.0.0.1"), lambda: esme)
    return esme, pump


def make_server(door, **config):
    server = DoorSmppServer(door.accept, door.directory, door.db, door.clock,
                            DoorConfig(**config), SMPP_ENV)
    outcome(Deferred.fromCoroutine(door.directory.fresh()))
    return server


def flush(door, pump, times=5):
    for _ in range(times):
        pump.flush()
        door.clock.advance(0)


def ucs2(text):
    return text.encode("utf-16-be")


def test_bind_with_wrong_password_fails_and_right_one_binds(door):
    """A wrong SMPP password gets ESME_RBINDFAIL; the right one binds as transceiver."""
    door.add(free_text=True)
    server = make_server(door)
    esme, pump = connect(door, server)
    d = esme.bind("transceiver", "whloans", "wrong")
    flush(door, pump)
    failure = outcome(d)
    assert isinstance(failure.value, PermanentError) and failure.value.status == 0x0D
    esme, pump = connect(door, server)
    d = esme.bind("transceiver", "whloans", "pw123456")
    flush(door, pump)
    assert outcome(d) == "hotline"


def test_submit_is_committed_then_answered_and_receipt_delivered(door):
    """submit_sm_resp carries the outbox id of a committed message; its DLR comes back as a
    deliver_sm with receipted_message_id."""
    door.add(free_text=True, source_exts=("01",))
    server = make_server(door)
    receipts = []
    esme, pump = connect(door, server, receipts)
    esme.bind("transceiver", "whloans", "pw123456")
    flush(door, pump)
    d = esme.submit_sm(source_addr="1232901", destination_addr="13912340001",
                       data_coding=8, short_message=ucs2("【示例公积金】您的提取业务已办结。"),
                       registered_delivery=1)
    flush(door, pump)
    message_id = outcome(d)
    state = door.request("GET", f"/{message_id}")  # the REST view sees the same message
    assert state[0].code == 200 and state[1]["state"] == "queued"
    [c] = outcome(door.outbox.claim(10))
    door.outbox.record(SubmitResult(c.part_ids[0], c.message_id, "ok", "X1", "fake"))
    door.outbox.receipt("X1", "fake", "DELIVRD", None, None)
    door.db.run_sync(sweep, door.directory.by_name, door.clock.seconds())
    server.pump("wuhan-loans")
    flush(door, pump)
    [dlr] = receipts
    assert codec.as_text(dlr.receipted_message_id) == message_id
    assert b"stat:DELIVRD" in dlr.short_message and dlr.esm_class == 4


def test_one_read_of_submits_is_one_transaction_and_one_write(door):
    """Five submit_sm arriving in one read are committed together and their five
    submit_sm_resp leave in one write, each with its own message id."""
    from sqlalchemy import select

    from sms.door.tables import DoorMessage

    door.add(free_text=True)
    server = make_server(door)
    esme, pump = connect(door, server)
    esme.bind("transmitter", "whloans", "pw123456")
    flush(door, pump)
    writes: list[bytes] = []
    server_write = pump.serverIO.write
    pump.serverIO.write = lambda data: (writes.append(data), server_write(data))[1]
    answers = [esme.submit_sm(destination_addr=f"1391234{i:04d}", short_message=b"hello")
               for i in range(5)]
    flush(door, pump)
    ids = [outcome(d) for d in answers]
    assert len(set(ids)) == 5 and all(i.isdigit() for i in ids)
    [written] = writes
    commands, offset = [], 0
    while offset < len(written):
        length, command_id, _status, _seq = codec.HEADER.unpack_from(written, offset)
        commands.append(command_id)
        offset += length
    assert commands == [0x80000004] * 5  # submit_sm_resp
    with door.db.sessions() as s:
        owned = s.execute(select(DoorMessage.message_id)).scalars().all()
    assert sorted(owned) == sorted(int(i) for i in ids)


def test_throttle_window_and_garbage(door):
    """Beyond the client's rate ESME_RTHROTTLED; an unknown command gets generic_nack and the
    bind stays up; submit before bind is ESME_RINVBNDSTS."""
    door.add(free_text=True, rate_per_second=2)
    server = make_server(door)
    esme, pump = connect(door, server)
    early = esme.submit_sm(destination_addr="13912340001", short_message=b"hello")
    flush(door, pump)
    assert outcome(early).value.status == 0x04
    esme.bind("transceiver", "whloans", "pw123456")
    flush(door, pump)
    answers = [esme.submit_sm(destination_addr=f"1391234000{i}", short_message=b"hello")
               for i in range(3)]
    flush(door, pump)
    outcomes = [outcome(d) for d in answers]
    assert isinstance(outcomes[2].value, TemporaryError) and outcomes[2].value.status == 0x58
    esme.transport.write(codec.HEADER.pack(16, 0x00000077, 0, 99))
    flush(door, pump)
    door.clock.advance(1)
    d = esme.submit_sm(destination_addr="13912340009", short_message=b"again")
    flush(door, pump)
    assert outcome(d).isdigit()


def test_mo_to_an_extension_goes_to_its_owner_on_rebind(door):
    """An MO to 12329+01 is stored for the client owning extension 01 and delivered as a
    deliver_sm when its receiver binds; one not acknowledged is delivered again on the
    next bind."""
    from dataclasses import dataclass

    from sms.door.callbacks import store_mo

    @dataclass
    class Mo:
        source: str
        destination: str
        text: str
        smsc: str = "fake"
        received_at: float = 0.0

    door.add(free_text=True, source_exts=("01",))
    server = make_server(door)
    owner = door.directory.owner_of_extension("1232901", "12329")
    assert owner.name == "wuhan-loans"
    assert door.directory.owner_of_extension("1232902", "12329") is None
    door.db.run_sync(store_mo, owner, Mo("13912340001", "1232901", "查询"), 0.0)
    refusing = SmppProtocol(door.clock, on_deliver=lambda pdu: Deferred())  # never answers
    _c, _s, pump = connectedServerAndClient(
        lambda: DoorSmppProtocol(server, "127.0.0.1"), lambda: refusing)
    refusing.bind("receiver", "whloans", "pw123456")
    flush(door, pump)
    refusing.transport.loseConnection()
    flush(door, pump)
    door.clock.advance(60)
    received = []
    esme, pump = connect(door, server, received)
    esme.bind("receiver", "whloans", "pw123456")
    flush(door, pump)
    [mo] = received
    assert mo.short_message.decode("utf-16-be") == "查询" and mo.esm_class == 0


def test_mo_keyword_owner(door):
    """An MO whose first word is a client's keyword belongs to that client (case and a
    '#'-separated tail ignored); other words belong to nobody."""
    door.add(keywords=("GJJDK",))
    outcome(Deferred.fromCoroutine(door.directory.fresh()))
    assert door.directory.owner_of_keyword("gjjdk#110101").name == "wuhan-loans"
    assert door.directory.owner_of_keyword("YE") is None
