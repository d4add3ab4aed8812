"""build_cores: one core per [center:X] section, of the configured kind, behind the lockout."""
from __future__ import annotations

from common.config import load
from daemon import ROOMS
from core_client.directory import build_cores
from core_client.embedded import EmbeddedCore
from core_client.http import HttpCore
from core_client.lockout import LockoutCore
from tests.support.core import DIRECTORY_INI as INI, ReactorWithPool


def test_cores_follow_the_center_sections(tmp_path):
    """An embedded and an http center give the two backends, each wrapped with the [ivr]
    lockout settings, and nothing is generated or connected at build time."""
    path = tmp_path / "hotline.ini"
    path.write_text(INI.format(state=tmp_path / "var"))
    config = load(path, ROOMS)
    cores = build_cores(config, db=object(), reactor=ReactorWithPool())
    assert set(cores) == {"a", "b"}
    a, b = cores["a"], cores["b"]
    assert isinstance(a, LockoutCore) and isinstance(b, LockoutCore)
    assert a.attempts == 4 and a.lock_seconds == 600 and a.center == "a"
    assert isinstance(a.inner, EmbeddedCore) and a.inner.path == tmp_path / "var" / "core-a.db"
    assert isinstance(b.inner, HttpCore) and b.inner.timeout == 1.5 and b.center == "b"
    assert not (tmp_path / "var" / "core-a.db").exists()


