"""Fixtures for core_client tests: a small demo core, synchronous stand-ins for threads."""
from tests.support.core import clock, core, demo_path, identities  # noqa: F401  (fixtures)
