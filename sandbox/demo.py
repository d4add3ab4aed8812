"""``hotline demo``: the whole platform on loopback, shown end to end."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the platform on loopback and show a call and an SMS")
    p.set_defaults(func=lambda args: 1)
