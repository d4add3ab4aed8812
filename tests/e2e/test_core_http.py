"""The HTTP core client over a real loopback socket, through `hotline bench core`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_bench_core_runs_both_backends_over_loopback(tmp_path):
    """The benchmark generates a demo core, serves it over HTTP on free 127.0.0.1 ports (in
    process, and as `hotline core serve` in a child process), and the embedded backend and the
    signed HTTP client complete lookups with no error."""
    out = tmp_path / "core.json"
    proc = subprocess.run(
        [sys.executable, "daemon.py", "bench", "core", "--persons", "200",
         "--seconds", "0.5", "--concurrency", "4", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    for backend in ("embedded", "http", "http_server_process"):
        assert results[backend]["lookups"] > 0 and results[backend]["lookups_per_s"] > 0
    assert "lookups/s" in proc.stdout
