"""The daemon's HTTP listener: rooms mount their resources under one root."""
from __future__ import annotations

import json

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import serverFromString
from twisted.web.resource import Resource
from twisted.web.server import Site


class JsonResource(Resource):
    """A leaf answering GET with the JSON of ``produce()``."""

    isLeaf = True

    def __init__(self, produce):
        super().__init__()
        self.produce = produce

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        return json.dumps(self.produce(), ensure_ascii=False, default=str).encode()


def make_root(resources: dict[bytes, Resource]) -> Resource:
    root = Resource()
    root.putChild(b"healthz", JsonResource(lambda: {"status": "ok"}))
    for name, resource in resources.items():
        root.putChild(name, resource)
    return root


def make_site(root: Resource, **kwargs) -> Site:
    """The daemon's one way to build a web site, so every listener (the API, the console)
    gets the same protections."""
    site = Site(root, **kwargs)
    site.displayTracebacks = False
    return site


def make_http_service(config, reactor, resources: dict[bytes, Resource]):
    endpoint = serverFromString(reactor, config.http.listen)
    site = make_site(make_root(resources))
    service = StreamServerEndpointService(endpoint, site)
    service.setName("http")
    return service
