"""The test run's log folder: every daemon and peer log of the run is written under it and
scanned for personal data when the run ends (tests/conftest.py). HOTLINE_TEST_LOG_DIR names
it, for the sandbox's plugins too; unset, a fresh temporary folder is made and exported."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOG_DIR = Path(os.environ.setdefault("HOTLINE_TEST_LOG_DIR",
                                     tempfile.mkdtemp(prefix="hotline-test-logs-")))
