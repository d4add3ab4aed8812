"""openapi.yaml is the contract: the test server's answers conform to it, and it covers
every CoreClient operation."""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from treq.testing import StubTreq

import core_client
from core_client.http import HttpCore
from core_client.interface import CoreClient, CoreError
from core_client.testing import ROUTES, CoreServer
from tests.unit.core_client.conftest import resolve

DOC = yaml.safe_load((Path(core_client.__file__).with_name("openapi.yaml")).read_text())
KEY = b"k"


def _resolve_ref(node):
    while isinstance(node, dict) and "$ref" in node:
        target = DOC
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def validate(value, schema, where="$"):
    """A small validator for the subset of OpenAPI 3.0 schemas the document uses."""
    schema = _resolve_ref(schema)
    if value is None:
        assert schema.get("nullable"), f"{where}: null not allowed"
        return
    for sub in schema.get("allOf", ()):
        validate(value, sub, where)
    kind = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "integer": int}
    if kind:
        assert isinstance(value, checks[kind]) and not isinstance(value, bool), \
            f"{where}: expected {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in enum"
    if "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: pattern mismatch"
    if schema.get("format") == "date":
        dt.date.fromisoformat(value)
    if schema.get("format") == "date-time":
        dt.datetime.fromisoformat(value)
    if "minimum" in schema:
        assert value >= schema["minimum"], f"{where}: below minimum"
    if "maximum" in schema:
        assert value <= schema["maximum"], f"{where}: above maximum"
    if kind == "object":
        for key in schema.get("required", ()):
            assert key in value, f"{where}: missing {key}"
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                validate(item, props[key], f"{where}.{key}")
            elif isinstance(extra, dict):
                validate(item, extra, f"{where}.{key}")
            else:
                raise AssertionError(f"{where}: unexpected member {key}")
    if kind == "array":
        for n, item in enumerate(value):
            validate(item, schema["items"], f"{where}[{n}]")


def operations():
    out = {}
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in ("get", "post"):
                out[op["operationId"]] = (method.upper(), path, op)
    return out


def test_document_covers_every_operation_of_the_protocol():
    """Each CoreClient method has an operation; idempotency flags match the client's retries."""
    methods = {n for n in vars(CoreClient) if not n.startswith("_") and callable(getattr(CoreClient, n))}
    ops = operations()
    operators = {op for op, (_m, _p, spec) in ops.items() if spec.get("x-operations")}
    assert operators == {"health"}  # for hotline doctor, on HttpCore only
    assert set(ops) - operators == methods
    assert {op: (m, p) for op, (m, p, _) in ops.items()} == {
        op: (m, pat.pattern.replace("(?P<account_no>[0-9A-Za-z]{1,32})", "{account_no}"))
        for m, pat, op in ROUTES}
    assert not ops["verify_password"][2]["x-idempotent"]
    assert not ops["change_password"][2]["x-idempotent"]


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


def test_health_answers_the_cores_clock(core, clock, identities):
    """The signed health call returns the core's clock (hotline doctor's skew check); a
    wrong key is refused like any call."""
    server = CoreServer(core, KEY, clock)
    clock.advance(1_800_000_000)
    client = HttpCore("demo", "http://core.test/hpf/v1", KEY, clock, StubTreq(server), retries=0)
    assert resolve(client.health()) == 1_800_000_000
    server.wrong_key = True
    with pytest.raises(CoreError):
        resolve(client.health())
