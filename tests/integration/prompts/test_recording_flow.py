"""The administrators' record-by-phone flow, driven by a scripted fake AGI session."""
import pytest
from twisted.internet.defer import Deferred

from prompts import catalog as catalog_mod, library, staff
from prompts.audio import Settings
from prompts.recording_flow import record_by_phone
from storage.db import Database

from tests.support.prompt_fakes import FakeSession, HungUp, SyncStore

SETTINGS = Settings(("wav", "ulaw"), -20.0, 60.0)
CATALOG = catalog_mod.load()
WELCOME = CATALOG.number_of("ivr/welcome") if "ivr/welcome" in CATALOG.prompts else "001"


@pytest.fixture
def env(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'h.db'}", reactor=None)
    db.create_all()
    db.run_sync(staff.add, "8001", "Li", "2468", 0.0)
    rec = tmp_path / "recordings"
    rec.mkdir()
    store = SyncStore(db, tmp_path / "lib", rec, SETTINGS)
    return db, store


def run(session, store, **kw):
    d = Deferred.fromCoroutine(record_by_phone(session, store, CATALOG, session.args[2], max_seconds=SETTINGS.max_seconds, **kw))
    results = []
    d.addBoth(results.append)
    assert results, "the flow waited on something the fakes never fire"
    if isinstance(results[0], Exception) or hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


def test_accept_installs_a_new_version_for_the_center(env, audio_dir):
    """Log in, choose a prompt, language 1, record, press 1: a new version for the
    caller's center is installed and audited with the staff number."""
    db, store = env
    session = FakeSession(["8001", "2468", WELCOME, "1", "1", "*"], [audio_dir / "padded.wav"])
    changes = run(session, store)
    assert [(c.prompt_id, c.center, c.lang, c.old_version, c.new_version) for c in changes] == \
        [(CATALOG.by_number(WELCOME).id, "sz", "zh", None, 1)]
    rows = db.run_sync(library.audit, CATALOG.by_number(WELCOME).id)
    assert [(r.who, r.action, r.center, r.new_version) for r in rows] == [("8001", "phone", "sz", 1)]
    assert store.path("sz", "zh", CATALOG.by_number(WELCOME).id).startswith(
        str(store.library_dir / "current" / "sz"))
    record = next(e for e in session.log if e[0] == "record")
    assert record[2:] == ("wav", "#", 60000, True, 4)
    assert session.hung_up
    assert not list(store.recording_dir.iterdir())  # raw recording removed


def test_record_again_then_accept(env, audio_dir):
    """2 records again; only the accepted second take becomes a version."""
    db, store = env
    session = FakeSession(["8001", "2468", WELCOME, "1", "2", "1", "*"],
                          [audio_dir / "silence.wav", audio_dir / "padded.wav"])
    changes = run(session, store)
    assert [c.new_version for c in changes] == [1]
    assert sum(1 for e in session.log if e[0] == "record") == 2


def test_cancel_installs_nothing(env, audio_dir):
    """3 cancels: no version, no audit row, the admin hears the cancellation."""
    db, store = env
    session = FakeSession(["8001", "2468", WELCOME, "1", "3", "*"], [audio_dir / "padded.wav"])
    assert run(session, store) == []
    assert db.run_sync(library.audit) == []
    assert any(p.endswith("admin/cancelled") for p in session.played())


def test_silent_recording_is_refused_and_can_be_recorded_again(env, audio_dir):
    """Accepting silence plays the refusal reason and offers a new take."""
    db, store = env
    session = FakeSession(["8001", "2468", WELCOME, "1", "1", "1", "*"],
                          [audio_dir / "silence.wav", audio_dir / "padded.wav"])
    changes = run(session, store)
    assert [c.new_version for c in changes] == [1]
    assert any(p.endswith("admin/rejected_silent") for p in session.played())


def test_wrong_pin_locks_the_staff_number(env):
    """Three wrong PINs (the store's limit) lock the number; the right PIN then fails too."""
    db, store = env
    session = FakeSession(["8001", "1111", "8001", "1111", "8001", "1111"])
    assert run(session, store) == []
    assert any(p.endswith("admin/locked") for p in session.played())
    assert db.run_sync(staff.login, "8001", "2468", store.now, 3, 1800) is staff.Login.LOCKED
    assert db.run_sync(staff.login, "8001", "2468", store.now + 1801, 3, 1800) is staff.Login.OK


def test_unknown_staff_number_gets_three_tries_then_goodbye(env):
    """Unknown numbers are told only 'wrong number or PIN', three times, then goodbye."""
    db, store = env
    session = FakeSession(["9999", "1234"] * 3)
    assert run(session, store) == []
    assert sum(p.endswith("admin/login_failed") for p in session.played()) == 3
    assert session.played()[-1].endswith("common/goodbye")


def test_hangup_mid_recording_installs_nothing_and_cleans_up(env, audio_dir):
    """A hang-up while recording propagates, installs nothing and removes the partial file."""
    db, store = env
    session = FakeSession(["8001", "2468", WELCOME, "1", "2", "1"],
                          [audio_dir / "padded.wav", HungUp])
    with pytest.raises(HungUp):
        run(session, store)
    assert db.run_sync(library.audit) == []
    assert not list(store.recording_dir.iterdir())


def test_current_version_is_played_before_recording(env, audio_dir):
    """A prompt with an installed version plays it before the beep; the next take is version 2."""
    db, store = env
    pid = CATALOG.by_number(WELCOME).id
    run(FakeSession(["8001", "2468", WELCOME, "1", "1", "*"], [audio_dir / "padded.wav"]), store)
    session = FakeSession(["8001", "2468", WELCOME, "1", "1", "*"], [audio_dir / "speech.mp3"])
    changes = run(session, store)
    assert (changes[0].old_version, changes[0].new_version) == (1, 2)
    assert store.path("sz", "zh", pid) in session.played()
