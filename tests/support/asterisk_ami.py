"""AMI sessions to a real Asterisk of the sandbox, for the e2e tests: a link with short
timeouts, and a call dispatcher handing that instance's calls to a flow."""
from __future__ import annotations

from ivr.asterisk.ami_link import AmiLink
from ivr.asterisk.calls import CallDispatcher
from sandbox.pytest_asterisk import ami_endpoint


def make_link(reactor, inst):
    """An AMI link to ``inst``, not yet started: actions time out after 5 s, reconnects wait
    0.2 s to 2 s."""
    return AmiLink(ami_endpoint(reactor, inst), inst.ami_username, inst.ami_secret, reactor,
                   action_timeout=5, ping_interval=10, initial_delay=0.2, max_delay=2)


async def dispatching(reactor, inst, flow, **options):
    """A link logged in to ``inst`` and a dispatcher handing that instance's calls to ``flow``."""
    link = make_link(reactor, inst)
    dispatcher = CallDispatcher(link, inst.variables["instance"], flow, reactor,
                                **{"heartbeat_interval": 2, **options})
    dispatcher.start()
    link.start()
    await link.when_up()
    return link, dispatcher
