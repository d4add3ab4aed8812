"""Which flow a call gets: the IVR's dispatcher hands every AsyncAGI call to
``CallsByRole``, which sends the administrators' recording calls to the prompt
library's recording flow and every other call to the menus."""
from __future__ import annotations

from typing import Any

from prompts import catalog as catalog_mod
from prompts.recording_flow import record_by_phone
from prompts.installed import InstalledPrompts
from prompts.service import PromptStore


class AdminCalls:
    """The call handler for the administrators' extension (AGI args ``[instance, "admin",
    center]``): the IVR's dispatcher hands such calls here instead of to the menus."""

    ROLE = "admin"

    def __init__(self, config: Any, reactor: Any, db: Any, store: PromptStore | None = None,
                 catalog: Any = None, installed: InstalledPrompts | None = None):
        self.config = config
        self.store = store if store is not None else \
            PromptStore(config.prompts, db, reactor, installed=installed)
        self.catalog = catalog if catalog is not None else catalog_mod.load()

    @classmethod
    def wants(cls, session: Any) -> bool:
        args = list(getattr(session, "args", []) or [])
        return len(args) > 1 and args[1] == cls.ROLE

    async def __call__(self, session: Any) -> str:
        centers = self.config.centers
        args = list(session.args)
        code = args[2] if len(args) > 2 and args[2] in centers else next(iter(centers))
        pc = self.config.prompts
        changes = await record_by_phone(session, self.store, self.catalog, code,
                                        centers[code].languages, pc.max_seconds,
                                        pc.silence_seconds)
        return f"admin: {len(changes)} installed"


class CallsByRole:
    """One dispatcher flow for both extensions: administrators' calls go to ``admin``,
    every other call to ``ivr`` (the IVR's CallHandler)."""

    def __init__(self, ivr: Any, admin: AdminCalls):
        self.ivr, self.admin = ivr, admin

    async def __call__(self, session: Any) -> Any:
        return await (self.admin if AdminCalls.wants(session) else self.ivr)(session)

