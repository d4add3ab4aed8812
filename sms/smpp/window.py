"""A read's successful answers to a bind's window, handed to the bind before they fire.

The carrier protocols (CMPP, SMGP, SGIP) end a read with ``answer_window``: the
bind (``Bind.window_answered``) journals the answers, frees their slots and
refills the window; the refill is written to the socket at once, and only then
does the bind fire the answers' Deferreds. The next burst so leaves before the
outbox's bookkeeping of the last one: a connection's rate is its window over the
round trip, and that bookkeeping was about a third of the gateway's share of it.
SMPP binds keep the older order (answers, then the refill): with it, an SMSC that
drops the link holding a full window lost receipts in the e2e smoke test, and
that was not investigated.
"""
from __future__ import annotations

from collections.abc import Callable


def answer_window(on_window: Callable[..., None], answers: list, transport) -> None:
    """``answers`` (``(Deferred, response)`` each) to the bind, which writes its refill
    through ``write_now`` before it fires them."""
    on_window(answers, lambda: write_now(transport))


def write_now(transport) -> None:
    """Write what the transport holds now, not at the reactor's next turn (a TCP
    connection's ``doWrite``; other transports write when they write)."""
    write = getattr(transport, "doWrite", None)
    if write is not None and transport.connected and not transport.disconnecting:
        write()  # an error is the reactor's to see: it calls doWrite again
