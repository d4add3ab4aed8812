"""Preparing the cores generates missing embedded databases on disk."""
from __future__ import annotations

from common.config import load
from daemon import ROOMS
from core_client.directory import build_cores

INI = """
[daemon]
state_dir = {state}
[center:a]
name = A
signature = A
core = embedded
core_db = {state}/core-a.db
[center:b]
name = B
signature = B
core = http
core_url = http://127.0.0.1:1/hpf/v1
core_key = not-a-real-key
core_timeout = 1.5
[ami]
enabled = no
[ivr]
password_attempts = 4
lock_minutes = 10
[sms]
enabled = no
"""


def test_prepare_cores_generates_missing_embedded_databases(tmp_path):
    """prepare_cores opens every embedded core ahead of the first call, generating it."""
    from core_client.directory import prepare_cores
    from tests.support.core import ReactorWithPool, resolve

    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path / "var"))
    cores = build_cores(load(path, ROOMS), db=object(), reactor=ReactorWithPool())
    cores["a"].inner._persons = 20  # keep the test fast; the default is 10,000
    resolve(prepare_cores(cores))
    assert (tmp_path / "var" / "core-a.db").exists()
