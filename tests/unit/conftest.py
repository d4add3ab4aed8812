"""tests/unit stays in memory: a test here that starts a thread or a process, opens a
socket or a database, fails with the reason. Such tests belong in tests/integration."""
from __future__ import annotations

import socket
import sqlite3
import subprocess
import threading

import pytest


class NotInMemory(AssertionError):
    """A unit test reached outside the process's memory."""


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise NotInMemory(f"a unit test {what}: move it to tests/integration")
    return refuse


@pytest.fixture(autouse=True)
def in_memory_only(monkeypatch):
    """Threads, subprocesses, sockets and SQLite databases are refused for the test's run."""
    monkeypatch.setattr(threading.Thread, "start", _refuse("starts a thread"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("starts a process"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("connects a socket"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("binds a socket"))
    monkeypatch.setattr(sqlite3, "connect", _refuse("opens a SQLite database"))
    monkeypatch.setattr(sqlite3.dbapi2, "connect", _refuse("opens a SQLite database"))
