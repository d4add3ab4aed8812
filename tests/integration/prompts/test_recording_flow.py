"""The administrators' record-by-phone flow, driven by a scripted fake AGI session."""
import pytest
from twisted.internet.defer import Deferred

from prompts import catalog as catalog_mod, library, staff
from prompts.audio import Settings
from prompts.recording_flow import record_by_phone
from storage.db import Database

from tests.support.prompt_fakes import FakeSession, HungUp, SyncStore, login_now

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
    rules = staff.PinRules(3, 1800, 10)
    assert login_now(db, "8001", "2468", "8002", store.now, rules) is staff.Login.LOCKED
    assert login_now(db, "8001", "2468", "8002", store.now + 1801, rules) is staff.Login.OK


def test_unknown_and_disabled_numbers_lock_like_real_ones(env):
    """No enumeration: an unknown and a disabled number answer BAD, then LOCKED after the
    same count as a real number, and the right PIN of a disabled number is BAD."""
    db, store = env
    db.run_sync(staff.add, "8002", "Wang", "3579", 0.0)
    db.run_sync(staff.set_disabled, "8002", True)
    rules = staff.PinRules(3, 1800, 100)
    seen = {number: [login_now(db, number, pin, "8100", store.now, rules).value
                     for _ in range(4)]
            for number, pin in (("8001", "1111"), ("9999", "1111"), ("8002", "3579"))}
    assert seen["8001"] == seen["9999"] == seen["8002"] == ["bad", "bad", "locked", "locked"]


def test_one_line_cannot_lock_many_administrators(env):
    """Wrong PINs from one caller number count over all staff numbers: that line is locked
    after pin_caller_failures, so it locks no second administrator."""
    db, store = env
    db.run_sync(staff.add, "8002", "Wang", "3579", 0.0)
    rules = staff.PinRules(3, 1800, 3)
    for _ in range(3):
        login_now(db, "8001", "1111", "8100", store.now, rules)
    assert login_now(db, "8002", "1111", "8100", store.now, rules) is staff.Login.LOCKED
    assert login_now(db, "8002", "3579", "8101", store.now, rules) is staff.Login.OK


def test_right_pins_never_count_against_the_administrators_line(env):
    """Only wrong PINs count per caller number: an administrator who logs in more often
    than pin_caller_failures in an hour from the office phone is never locked out."""
    db, store = env
    rules = staff.PinRules(3, 1800, 3)
    seen = [login_now(db, "8001", "2468", "8100", store.now + i, rules) for i in range(6)]
    assert seen == [staff.Login.OK] * 6


def test_unknown_staff_number_is_answered_like_a_real_one(env):
    """Unknown numbers are told only 'wrong number or PIN', then locked after the same
    count as a real number (the store's limit, 3), so a lock tells nothing."""
    db, store = env
    session = FakeSession(["9999", "1357"] * 3)
    assert run(session, store) == []
    assert sum(p.endswith("admin/login_failed") for p in session.played()) == 2
    assert any(p.endswith("admin/locked") for p in session.played())
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


def test_parallel_logins_never_check_more_pins_than_the_limit(tmp_path, monkeypatch):
    """Eight logins with wrong PINs for one staff number at once, on four pool threads: at
    most pin_max_failures PINs are ever hashed, and the right PIN afterwards is refused."""
    import threading
    import time

    from twisted.internet.defer import ensureDeferred

    from prompts.config import PromptsConfig
    from prompts.service import PromptStore
    from storage.migrate import upgrade
    from tests.support.core import ThreadedClock

    url = f"sqlite:///{tmp_path / 'p.db'}"
    upgrade(url)
    clock = ThreadedClock()
    clock.advance(1_800_000_000)
    db = Database(url, clock, threads=4)
    db.startService()
    checked, lock = [], threading.Lock()
    real = staff.pin_matches

    def counting(session, pin, stored):
        with lock:
            checked.append(pin)
        time.sleep(0.05)
        return real(session, pin, stored)

    monkeypatch.setattr(staff, "pin_matches", counting)
    try:
        db.run_sync(staff.add, "8001", "Li", "2468", 0.0)
        store = PromptStore(PromptsConfig(tmp_path, ("wav",), False, -20, 60,
                                          pin_max_failures=5, pin_caller_failures=100),
                            db, clock)
        def settled(*logins):
            tries = [ensureDeferred(store.login(*args)) for args in logins]
            deadline = time.monotonic() + 30
            while not all(d.called for d in tries) and time.monotonic() < deadline:
                time.sleep(0.01)
            outcomes = []
            for d in tries:
                d.addBoth(outcomes.append)
            return outcomes

        settled(*[("8001", f"13{n}7", f"81{n:02d}") for n in range(8)])
        assert len(checked) <= 5
        assert settled(("8001", "2468", "8199")) == [staff.Login.LOCKED]
    finally:
        db.stopService()
