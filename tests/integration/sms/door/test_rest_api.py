"""The door's REST send API through a plain HTTP client: every refusal reason, batches,
idempotency, query and cancel, bearer and signed authentication."""
from __future__ import annotations

import json

from sqlalchemy import select

from sms.door.tables import DoorTally
from sms.tables import SmsMessage
from tests.support.door import MOBILE, msg

def tallies(door):
    with door.db.sessions() as s:
        return {(r.client, r.template, r.what): r.n for r in s.execute(select(DoorTally.__table__))}


def test_one_message_is_committed_before_202(door):
    """202 carries the outbox message id; the row exists (committed) when the answer comes."""
    door.add()
    response, body = door.request("POST", "", msg())
    assert response.code == 202 and body["status"] == "accepted" and body["parts"] == 1
    with door.db.sessions() as s:
        row = s.execute(select(SmsMessage).where(SmsMessage.id == body["message_id"])).scalar_one()
    assert row.state == "queued" and row.destination == MOBILE
    assert tallies(door)[("wuhan-loans", "deposit_credited", "pushed")] == 1


def test_every_refusal_reason_is_named(door):
    """Each filter refuses with its own reason and is counted per client and template."""
    door.add(templates=("deposit_credited", "verification_code"), classes=("transaction",),
             source_exts=("01",))
    door.db.run_sync(lambda s: None)
    door.outbox.set_opt_out("demo", "13912340009", True)
    cases = [
        ([1, 2], "bad_request"),
        (msg(center="other"), "center_not_allowed"),
        (msg(to="12345"), "invalid_number"),
        (msg(template="withdrawal"), "template_not_enabled"),
        ({"to": MOBILE, "template": "verification_code",
          "params": {"code": "123456", "purpose": "登录", "minutes": "5"}}, "class_not_allowed"),
        ({"to": MOBILE, "text": "您好"}, "free_text_not_allowed"),
        (msg(params={"account": "12"}), "bad_params"),
        (msg(ext="99"), "extension_not_allowed"),
        (msg(to="13912340009"), "opted_out"),
    ]
    for item, reason in cases:
        response, body = door.request("POST", "", item)
        assert (response.code, body["error"]) == (422, reason), (item, body)
        assert body["message"]
    counted = tallies(door)
    assert counted[("wuhan-loans", "deposit_credited", "invalid_number")] == 1
    assert counted[("wuhan-loans", "deposit_credited", "opted_out")] == 1


def test_illegal_keyword_in_free_text(door):
    """A free text holding a listed word is refused as illegal_keyword (width folded)."""
    door.add(free_text=True)
    response, body = door.request("POST", "", {"to": MOBILE, "text": "本店可代 开发票"})
    assert (response.code, body["error"]) == (422, "illegal_keyword")
    response, body = door.request("POST", "", {"to": MOBILE, "text": "您的业务已办结。"})
    assert response.code == 202


def test_duplicate_text_within_window_but_never_codes(door):
    """Same destination and text within the window is a duplicate; a code never is."""
    door.add(classes=("transaction", "code"))
    assert door.request("POST", "", msg())[0].code == 202
    response, body = door.request("POST", "", msg())
    assert (response.code, body["error"]) == (422, "duplicate")
    code = {"to": MOBILE, "template": "verification_code",
            "params": {"code": "123456", "purpose": "登录", "minutes": "5"}}
    assert door.request("POST", "", code)[0].code == 202
    assert door.request("POST", "", code)[0].code == 202
    door.clock.advance(3601)
    assert door.request("POST", "", msg())[0].code == 202


def test_idempotency_key_answers_the_first_message(door):
    """A repeated key gets 200 with the first message's id, and no second row."""
    door.add()
    first = door.request("POST", "", msg(key="order-1"))[1]
    response, again = door.request("POST", "", msg(key="order-1", to="13912340002"))
    assert response.code == 200 and again["status"] == "duplicate"
    assert again["message_id"] == first["message_id"]
    with door.db.sessions() as s:
        assert len(s.execute(select(SmsMessage.id)).all()) == 1


def test_a_resent_batch_answers_its_first_messages_before_any_filter(door):
    """A client that resends a batch it never saw answered (the daemon died after the commit)
    gets every item's first message id: the same text to the same number within the duplicate
    window, a spent rate and a spent quota refuse new messages, never a known key."""
    door.add(daily_quota=2, rate_per_second=2)
    batch = {"messages": [msg(key="b-1", to="13912340001"), msg(key="b-2", to="13912340002")]}
    response, first = door.request("POST", "/batch", batch)
    assert response.code == 200 and first["accepted"] == 2
    response, again = door.request("POST", "/batch", batch)
    assert response.code == 200
    assert [(r["status"], r["message_id"]) for r in again["results"]] == \
        [("duplicate", r["message_id"]) for r in first["results"]]
    with door.db.sessions() as s:
        assert len(s.execute(select(SmsMessage.id)).all()) == 2


def test_messages_without_a_key_are_never_each_others_twins(door):
    """Without an idempotency key (and with no duplicate window) every item is a message of
    its own: the same text twice in one batch, and again in the next batch, makes four."""
    door.accept.config = type(door.accept.config)(duplicate_window=0)
    door.add()
    ids = []
    for _ in range(2):
        response, body = door.request("POST", "/batch", {"messages": [msg(), msg()]})
        assert response.code == 200 and body["accepted"] == 2
        ids += [item["message_id"] for item in body["results"]]
    assert len(set(ids)) == 4


def test_daily_quota_and_rate_are_counted_atomically(door):
    """Beyond the daily quota 429 quota_exceeded; beyond the rate 429 rate_limited; the
    refused ones are given back, so the quota counts only accepted messages."""
    door.add(daily_quota=3, rate_per_second=2)
    batch = {"messages": [msg(to=f"1391234{i:04d}") for i in range(3)]}
    response, body = door.request("POST", "/batch", batch)
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted", "refused"]
    assert body["results"][2]["reason"] == "rate_limited"
    door.clock.advance(1)
    response, body = door.request("POST", "", msg(to="13912349998"))
    assert response.code == 202
    response, body = door.request("POST", "", msg(to="13912349997"))
    assert (response.code, body["error"]) == (429, "quota_exceeded")
    assert response.headers.getRawHeaders("retry-after") == ["1"]


def test_quiet_hours_hold_not_drop(door):
    """At 22:00 a transaction alert is accepted and held until 08:00 (counted as held)."""
    door.add()
    door.clock.advance(10 * 3600)
    response, body = door.request("POST", "", msg())
    assert response.code == 202 and body["held_until"] > door.clock.seconds()
    assert tallies(door)[("wuhan-loans", "deposit_credited", "held_quiet_hours")] == 1


def test_batch_of_ten_thousand_in_one_transaction(door):
    """10,000 items with a few bad ones: one result per item, in order, the rest accepted."""
    door.add()
    items = [msg(to=f"139{i:08d}") for i in range(10_000)]
    items[17] = msg(to="bad")
    items[9000] = msg(params={})
    response, body = door.request("POST", "/batch", {"messages": items})
    assert response.code == 200
    assert (body["accepted"], body["refused"]) == (9998, 2)
    assert body["results"][17]["reason"] == "invalid_number"
    assert body["results"][9000]["reason"] == "bad_params"
    assert [r["index"] for r in body["results"]] == list(range(10_000))


def test_query_and_cancel(door):
    """GET shows the state and parts; DELETE cancels a queued message once; others 404."""
    door.add()
    door.add(name="other", secret_env="DOOR_PROVINCE", system_id="prov", center="*")
    mid = door.request("POST", "", msg())[1]["message_id"]
    response, body = door.request("GET", f"/{mid}")
    assert response.code == 200 and body["state"] == "queued" and len(body["parts"]) == 1
    assert door.request("GET", f"/{mid}", secret="province-secret-for-tests")[0].code == 404
    assert door.request("DELETE", f"/{mid}")[0].code == 200
    assert door.request("GET", f"/{mid}")[1]["state"] == "cancelled"
    response, body = door.request("DELETE", f"/{mid}")
    assert (response.code, body["error"]) == (409, "not_queued")


def test_signed_request_with_nonce_once(door):
    """A signed request passes once; the same nonce again is 401; a NaN timestamp is 401."""
    door.add()
    raw = json.dumps(msg()).encode()
    headers = door.signed_headers("POST", "", raw)
    assert door.request("POST", "", raw, headers=headers)[0].code == 202
    assert door.request("POST", "", raw, headers=headers)[0].code == 401
    nan = door.signed_headers("POST", "", raw, nonce="n-2", stamp="nan")
    assert door.request("POST", "", raw, headers=nan)[0].code == 401


def test_signed_request_timestamp_and_header_checks(door):
    """The signing helpers' checks (core_client.signing) answer 401 with the reason: a
    timestamp 301 s old, one that is no number, and a header holding a control character
    (named in the answer); a timestamp 299 s old passes."""
    door.add()
    raw = json.dumps(msg()).encode()
    now = int(door.clock.seconds())
    for nonce, stamp in (("n-old", str(now - 301)), ("n-word", "noon")):
        response, body = door.request("POST", "", raw, headers=door.signed_headers(
            "POST", "", raw, nonce=nonce, stamp=stamp))
        assert response.code == 401 and "X-Timestamp" in body["message"]
    control = door.signed_headers("POST", "", raw, nonce="n-ctl")
    control[b"x-nonce"] = [b"n\x07ctl"]
    response, body = door.request("POST", "", raw, headers=control)
    assert response.code == 401 and body["message"].startswith("x-nonce:")
    fine = door.signed_headers("POST", "", raw, nonce="n-ok", stamp=str(now - 299))
    assert door.request("POST", "", raw, headers=fine)[0].code == 202


def test_bad_credentials_and_disabled_client(door):
    """Wrong bearer 401, non-ASCII header 401 (answered, not hung), disabled 403,
    an address outside the allowlist 403."""
    door.add()
    assert door.request("POST", "", msg(), secret="nope")[0].code == 401
    bad = {b"authorization": ["Bearer 密钥".encode()]}
    assert door.request("POST", "", msg(), headers=bad)[0].code == 401
    door.add(name="off", secret_env="DOOR_PROVINCE", system_id="off", enabled=False)
    response, body = door.request("POST", "", msg(), secret="province-secret-for-tests")
    assert (response.code, body["error"]) == (403, "client_disabled")


def test_ip_allowlist(door):
    """A client limited to 10.0.0.0/8 is refused from StubTreq's loopback-like peer."""
    door.add(ip_allow=("10.0.0.0/8",))
    response, body = door.request("POST", "", msg())
    assert (response.code, body["error"]) == (403, "ip_not_allowed")


def test_stats_per_client_template_and_day(door):
    """Pushed, filtered by reason and the outcome counts land in one row per client,
    template and day; the success rate is over finished messages."""
    from sms.door.stats import collect

    door.add()
    door.request("POST", "", msg())
    door.request("POST", "", msg())  # a duplicate
    door.request("POST", "", msg(to="1"))
    [row] = door.db.run_sync(collect, "2026-11-26")
    assert (row["client"], row["template"], row["day"]) == ("wuhan-loans", "deposit_credited",
                                                            "2026-11-26")
    assert row["pushed"] == 3
    assert row["filtered"] == {"duplicate": 1, "invalid_number": 1}
    assert row["sent"] == 0 and row["success_rate"] is None


def test_openapi_lists_every_refusal_reason():
    """The OpenAPI file's RefusalReason enum is exactly the filters' REASONS."""
    from pathlib import Path

    import yaml

    from sms.door.filters import REASONS

    spec = yaml.safe_load((Path(__file__).parents[4] / "sms/door/openapi.yaml").read_text())
    assert tuple(spec["components"]["schemas"]["RefusalReason"]["enum"]) == REASONS
