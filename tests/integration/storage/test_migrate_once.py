"""Daemons started together on a fresh PostgreSQL database migrate it once and all start."""
import subprocess
import sys

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from storage.migrate import alembic_config


def test_concurrent_upgrades_on_a_fresh_database_all_succeed(pg_url):
    """Four processes run the migrations at the same moment: every one exits 0 (before the
    advisory lock one lost the race on CREATE TABLE alembic_version) and every branch is
    at its head once."""
    code = "import sys; from storage.migrate import upgrade; upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [rc for rc, _ in results] == [0, 0, 0, 0], [err[-2000:] for _, err in results]
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        applied = sorted(r[0] for r in conn.execute(sa.text("select version_num from alembic_version")))
    engine.dispose()
    heads = sorted(ScriptDirectory.from_config(alembic_config(pg_url)).get_heads())
    assert applied == heads
