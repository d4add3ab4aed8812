"""The SMS room's shared fixtures: the outbox's database on SQLite and PostgreSQL."""
from tests.support.outbox import db_url  # noqa: F401  (a fixture)
