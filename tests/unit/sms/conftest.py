"""Fixtures shared by the SMS room's tests."""
import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The outbox on the embedded default and on the multi-instance database alike."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.db'}"
    return request.getfixturevalue("pg_url")
