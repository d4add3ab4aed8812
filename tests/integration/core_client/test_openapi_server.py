"""The reference core server's answers, over a real embedded core, conform to openapi.yaml."""
from __future__ import annotations


import pytest
from treq.testing import StubTreq

from core_client.http import HttpCore
from core_client.interface import CoreError
from core_client.testing import CoreServer
from tests.support.core import resolve
from tests.support.openapi import DOC, KEY, _resolve_ref, operations, validate  # noqa: F401



def test_server_answers_conform_to_the_document(core, clock, identities):
    """Every answer of the test server, successes and errors, validates against its schema."""
    server = CoreServer(core, KEY, clock)
    client = HttpCore("demo", "http://core.test/hpf/v1", KEY, clock, StubTreq(server), retries=0)
    x = identities["ID ending in X, repaying loan"]
    plain = identities["ID ending in a digit, no loan"]
    calls = [
        client.find_account(id_number=x.id_number), client.find_account(account_no=x.account_no),
        client.find_account(id_number=x.id_number[:17] + "1"),
        client.find_account(account_no="299999999999"),
        client.balance(x.account_no), client.balance("299999999999"),
        client.recent_details(x.account_no, 30, ("deposit", "withdrawal", "interest")),
        client.loan(x.account_no), client.loan(plain.account_no),
        client.loan(identities["overdue loan"].account_no),
        client.registered_mobile(x.account_no), client.find_by_mobile(x.mobile),
        client.events_since(0, 500),
        client.verify_password(plain.account_no, "000000"),
        client.verify_password(identities["self-service locked in the core"].account_no, "1"),
        client.verify_password(plain.account_no, "123456"),
        client.change_password(plain.account_no, "123456", "12"),
        client.change_password(plain.account_no, "123456", "654321"),
        client.health(),
    ]
    for call in calls:
        try:
            resolve(call)
        except CoreError:
            pass  # the errors are the point: their bodies are validated below
    server.fail_next = 1
    with pytest.raises(CoreError):
        resolve(client.balance(x.account_no))
    server.wrong_key = True
    with pytest.raises(CoreError):
        resolve(client.balance(x.account_no))

    ops = operations()
    statuses = set()
    for op, status, body in server.answers:
        statuses.add(status)
        if status >= 500:
            validate(body, {"$ref": "#/components/schemas/Error"})
            continue
        if op == "signature":
            validate(body, {"$ref": "#/components/schemas/Error"})
            continue
        response = _resolve_ref(ops[op][2]["responses"][str(status)])
        if status == 204:
            assert body is None and "content" not in response
            continue
        validate(body, response["content"]["application/json"]["schema"], op)
    assert statuses == {200, 204, 400, 401, 404, 422, 423, 503}
