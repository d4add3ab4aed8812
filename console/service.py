"""The console's own listener (``[console] listen``), apart from the API port."""
from __future__ import annotations

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.endpoints import serverFromString
from twisted.web.server import Site

from console.web import Console


def make_service(config, reactor, db, status, metrics):
    console = Console(config, db, reactor, status, metrics)
    if config.prompts is not None:
        from console.prompts_page import PromptPages

        PromptPages(console, reactor).mount()
    site = Site(console)
    site.displayTracebacks = False
    service = StreamServerEndpointService(serverFromString(reactor, config.console.listen), site)
    service.setName("console")
    service.console = console
    return service
