"""openapi.yaml is the contract: the test server's answers conform to it, and it covers
every CoreClient operation."""
from __future__ import annotations


import pytest
from treq.testing import StubTreq

from core_client.http import HttpCore
from core_client.interface import CoreClient, CoreError
from core_client.testing import ROUTES, CoreServer
from tests.support.core import resolve

from tests.support.openapi import DOC, KEY, operations, validate  # noqa: F401


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
