"""hotline core generate writes a real demo core database."""
from __future__ import annotations

import sqlite3

from core_client import cli


def test_generate_writes_the_requested_persons(tmp_path, capsys):
    """generate --persons N --out FILE writes N persons and reports the counts."""
    out = tmp_path / "core.db"
    assert cli.main(["core", "generate", "--persons", "40", "--out", str(out)]) == 0
    assert "40 persons" in capsys.readouterr().out
    assert sqlite3.connect(out).execute("SELECT count(*) FROM person").fetchone()[0] == 40
