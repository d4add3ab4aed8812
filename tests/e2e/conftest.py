"""Fixtures the e2e files share: ``ivr_bed``, the test bed for real calls through the IVR."""
from __future__ import annotations

import pytest

from tests.support.ivr_calls import make_ivr_bed


@pytest.fixture
def ivr_bed(asterisk_factory, tmp_path):
    """Asterisk with a prompt library it can read, a small demo core and a config for the IVR:
    (instance, config(hours) -> parsed config, library folder)."""
    return make_ivr_bed(asterisk_factory, tmp_path)
