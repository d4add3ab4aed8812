"""An HTTP client (treq) wholly on the reactor it is given.

treq turns a bytes body into a ``FileBodyProducer`` on Twisted's global cooperator, which
runs on the global reactor: on any other reactor (tests, benches, a second reactor) the
request's headers go out and its body never does, until the peer gives up. This client
gives each body a cooperator scheduled on the injected reactor.
"""
from __future__ import annotations

import io
from typing import Any


def make_http_client(reactor: Any, per_host: int = 16) -> Any:
    """A treq ``HTTPClient`` with a persistent pool; bytes bodies produced on ``reactor``."""
    from treq.client import HTTPClient
    from twisted.internet.task import Cooperator
    from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool

    cooperator = Cooperator(scheduler=lambda work: reactor.callLater(0, work))
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = per_host

    def body(data: bytes) -> FileBodyProducer:
        return FileBodyProducer(io.BytesIO(data), cooperator=cooperator)

    return HTTPClient(Agent(reactor, pool=pool), data_to_body_producer=body)
