"""The door's services: the REST resource, the callback pusher and the SMPP server, over one
client directory and the outbox. Secrets are read from the process environment."""
from __future__ import annotations

import os

from twisted.application.service import MultiService

from common.http_client import make_http_client
from sms.door.accept import DoorAccept
from sms.door.auth import Authenticator
from sms.door.callbacks import CallbackPusher, store_mo
from sms.door.clients import ClientDirectory
from sms.door.filters import WordList
from sms.door.rest_api import Messages, SendApi
from sms.door.smpp_server import DoorSmppServer


class DoorService(MultiService):
    """Owns what the door runs; ``resource`` is mounted at ``/v1/messages``."""

    name: str | None = "door"  # type: ignore[assignment]

    def __init__(self, config, reactor, db, outbox, templates, encode, environ=os.environ):
        super().__init__()
        self.db, self.clock, self.config = db, reactor, config
        self.directory = ClientDirectory(db, reactor)
        self.accept = DoorAccept(outbox, templates, WordList.load(config.banned_words), config,
                                 encode)
        sqlite_lock = outbox.lock if db.is_sqlite else None  # SQLite has one writer
        api = SendApi(Authenticator(self.directory, db, reactor, environ, sqlite_lock),
                      self.accept, outbox, config, reactor)
        self.resource = Messages(api)
        self.pusher = CallbackPusher(db, self.directory, make_http_client(reactor), reactor,
                                     config, environ, lock=sqlite_lock)
        self.pusher.setServiceParent(self)
        self.smpp = None
        if config.smpp_listen:
            self.smpp = DoorSmppServer(self.accept, self.directory, db, reactor, config,
                                       environ)
            self.smpp.listen(reactor, config.smpp_listen)
            self.smpp.setServiceParent(self)
            self.pusher.woken.append(self.smpp.pump_all)


    def route_mo(self, mo):
        """A Deferred firing after the MO is committed for the client owning its extension
        (12329 + ext) or its first word, or None when no client owns it (the platform's own
        keywords answer it then)."""
        owner = (self.directory.owner_of_extension(mo.destination, self.config.source_base)
                 or self.directory.owner_of_keyword(mo.text))
        if owner is None:
            return None
        return self.db.run(store_mo, owner, mo, self.clock.seconds())


def make_door(config, reactor, db, outbox, templates, encode) -> DoorService:
    return DoorService(config, reactor, db, outbox, templates, encode)
