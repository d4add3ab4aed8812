"""Garbage-collector settings for the long-running reactor process.

CPython's full collection walks every container object alive, and the daemon's
startup leaves hundreds of thousands of them (Twisted, SQLAlchemy, templates, menus)
that live as long as the process. Measured on the SMS path, those walks stopped
the reactor for about 90 ms at a time, several times a second under load: longer
than Asterisk waits for a slow AMI reader, and a window's worth of SMPP round
trips lost each time. So once the process is built we move the startup heap out of
the collector's sight (``gc.freeze``) and collect young objects less often; cycles
created while running are still collected.
"""
from __future__ import annotations

import gc

# Allocations between young collections (CPython's default is 700), and how many
# young and middle collections run before the next older one (default 10 and 10).
THRESHOLDS = (20_000, 20, 20)


def settle() -> None:
    """Call once the process is built, just before the reactor runs."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
