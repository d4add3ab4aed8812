"""Root fixtures, and the privacy guard over the whole test run.

Every twisted.logger event emitted in this process, every daemon or peer log
written under the run's log folder, and every test's captured output and failure
report is scanned for whole mobiles and ID numbers. A hit fails the run.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from twisted.logger import formatEvent, globalLogPublisher

from tests.support.privacy_scan import find_personal_data
from tests.support.run_logs import LOG_DIR

pytest_plugins = ["sandbox.pytest_postgres", "sandbox.pytest_smsc", "sandbox.pytest_asterisk",
                  "sandbox.pytest_carriers"]

_violations: list[str] = []


def _twisted_observer(event: dict) -> None:
    text = formatEvent(event)  # never raises: a broken format is rendered as such
    failure = event.get("log_failure")
    if failure is not None:
        text += "\n" + failure.getTraceback()
    for hit in find_personal_data(text):
        _violations.append(f"log event {event.get('log_namespace')}: {hit}")


def pytest_configure(config):
    globalLogPublisher.addObserver(_twisted_observer)


def pytest_runtest_logreport(report):
    texts = [report.longreprtext or ""] + [content for _name, content in report.sections]
    for text in texts:
        for hit in find_personal_data(text):
            _violations.append(f"{report.nodeid} output: {hit}")


def pytest_sessionfinish(session, exitstatus):
    globalLogPublisher.removeObserver(_twisted_observer)
    for path in sorted(LOG_DIR.rglob("*")):
        if path.is_file() and path.stat().st_size < 200 * 1024 * 1024:
            text = path.read_text(errors="replace")
            for hit in find_personal_data(text):
                _violations.append(f"{path.relative_to(LOG_DIR)}: {hit}")
    if _violations:
        tr = session.config.pluginmanager.get_plugin("terminalreporter")
        tr.section("privacy scan: personal data in logs or output", red=True)
        for line in _violations[:50]:
            tr.write_line(line)
        tr.write_line(f"{len(_violations)} hits in all")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def log_dir(request) -> Path:
    """A folder under the run's scanned log directory for this test's daemon and peer logs."""
    path = LOG_DIR / request.node.nodeid.replace("/", "_").replace("::", "-")[:150]
    path.mkdir(parents=True, exist_ok=True)
    return path
