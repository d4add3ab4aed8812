"""Preparing the cores generates missing embedded databases on disk."""
from __future__ import annotations

from common.config import load
from daemon import ROOMS
from core_client.directory import build_cores, prepare_cores
from tests.support.core import DIRECTORY_INI as INI, ReactorWithPool, resolve


def test_prepare_cores_generates_missing_embedded_databases(tmp_path):
    """prepare_cores opens every embedded core ahead of the first call, generating it."""
    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path / "var"))
    cores = build_cores(load(path, ROOMS), db=object(), reactor=ReactorWithPool())
    cores["a"].inner._persons = 20  # keep the test fast; the default is 10,000
    resolve(prepare_cores(cores))
    assert (tmp_path / "var" / "core-a.db").exists()
