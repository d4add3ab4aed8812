"""`hotline core generate` and `hotline core demo-identities` as an operator runs them."""
from __future__ import annotations

import json

from core_client import cli, demo_data




def test_demo_identities_json_matches_the_function(capsys):
    """demo-identities --json prints exactly demo_identities() (read back, not echoed)."""
    assert cli.main(["core", "demo-identities", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == [i.__dict__ for i in demo_data.demo_identities()]


def test_serve_refuses_to_start_without_a_key(tmp_path, monkeypatch, capsys):
    """core serve without the signing key in the environment exits 2 and says which variable."""
    monkeypatch.delenv("HOTLINE_CORE_KEY", raising=False)
    assert cli.main(["core", "serve", "--db", str(tmp_path / "x.db")]) == 2
    assert "HOTLINE_CORE_KEY" in capsys.readouterr().err
