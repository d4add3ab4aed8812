"""Versions, atomic installs, rollback and the missing-prompt check."""
import os

import pytest

from prompts import library, staff
from tests.support.prompt_fakes import login_now
from prompts.audio import Processed
from prompts.layout import current_base, version_dir
from storage.db import Database


def _audio(tag: bytes, formats=("wav", "ulaw")) -> Processed:
    return Processed(files={f: tag + f.encode() for f in formats}, duration=1.0, dbfs=-20.0,
                     sha256=tag.hex())


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'h.db'}", reactor=None)
    d.create_all()
    return d


def test_versions_are_kept_and_current_follows(db, tmp_path):
    """Each install is a new immutable version; current/ holds the newest; audit has both."""
    lib = tmp_path / "lib"
    c1 = db.run_sync(library.install, lib, "ivr/welcome", "sz", "zh", _audio(b"one"), "import",
                     "ops", 1.0)
    c2 = db.run_sync(library.install, lib, "ivr/welcome", "sz", "zh", _audio(b"two"), "phone",
                     "8001", 2.0)
    assert (c1.old_version, c1.new_version, c2.old_version, c2.new_version) == (None, 1, 1, 2)
    vdir = version_dir(lib, "sz", "zh", "ivr/welcome")
    assert sorted(os.listdir(vdir)) == ["1.ulaw", "1.wav", "2.ulaw", "2.wav"]
    assert open(current_base(lib, "sz", "zh", "ivr/welcome") + ".wav", "rb").read() == b"twowav"
    audit = db.run_sync(library.audit)
    assert [(a.who, a.action, a.old_version, a.new_version) for a in audit] == \
        [("ops", "import", None, 1), ("8001", "phone", 1, 2)]


def test_rollback_previous_and_given(db, tmp_path):
    """rollback goes to the version before the installed one, or to a given one."""
    lib = tmp_path / "lib"
    for tag in (b"one", b"two", b"three"):
        db.run_sync(library.install, lib, "a", "default", "zh", _audio(tag), "import", "ops", 1.0)
    base = current_base(lib, "default", "zh", "a")
    change = db.run_sync(library.rollback, lib, "a", "default", "zh", "ops", 5.0)
    assert (change.old_version, change.new_version) == (3, 2)
    assert open(base + ".wav", "rb").read() == b"twowav"
    db.run_sync(library.rollback, lib, "a", "default", "zh", "ops", 6.0, 3)
    assert open(base + ".ulaw", "rb").read() == b"threeulaw"
    db.run_sync(library.rollback, lib, "a", "default", "zh", "ops", 7.0, 1)
    with pytest.raises(library.LibraryError, match="no version before 1"):
        db.run_sync(library.rollback, lib, "a", "default", "zh", "ops", 8.0)
    with pytest.raises(library.LibraryError, match="no version 9"):
        db.run_sync(library.rollback, lib, "a", "default", "zh", "ops", 8.0, 9)
    assert [a.action for a in db.run_sync(library.audit)][-3:] == ["rollback"] * 3


def test_failed_activation_leaves_current_and_db_untouched(db, tmp_path, monkeypatch):
    """If copying into current/ fails, the old files stay and no row or audit is written."""
    lib = tmp_path / "lib"
    db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"one"), "import", "ops", 1.0)

    def broken_copy(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(library.shutil, "copyfile", broken_copy)
    with pytest.raises(library.LibraryError, match="No space left"):
        db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"two"), "import", "ops", 2.0)
    base = current_base(lib, "sz", "zh", "a")
    assert open(base + ".wav", "rb").read() == b"onewav"
    assert [f for f in os.listdir(os.path.dirname(base)) if f.startswith(".tmp-")] == []
    assert db.run_sync(library.installed) == {("a", "sz", "zh"): 1}
    assert len(db.run_sync(library.audit)) == 1
    monkeypatch.undo()
    change = db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"two"), "import", "ops",
                         3.0)
    assert change.new_version == 2  # the orphaned file of the failed attempt is overwritten


def test_dropped_format_is_removed_from_current(db, tmp_path):
    """A version without ulaw (format no longer configured) removes the old ulaw file."""
    lib = tmp_path / "lib"
    db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"one"), "import", "ops", 1.0)
    db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"two", ("wav",)), "import", "ops",
                2.0)
    assert not os.path.exists(current_base(lib, "sz", "zh", "a") + ".ulaw")


def test_missing_lists_what_asterisk_would_not_find(db, tmp_path):
    """Gaps are listed per center, language, prompt and format; overrides count for their center."""
    lib = tmp_path / "lib"
    db.run_sync(library.install, lib, "a", "default", "zh", _audio(b"x"), "tts", "t", 1.0)
    db.run_sync(library.install, lib, "b", "default", "zh", _audio(b"x", ("wav",)), "tts", "t", 1.0)
    db.run_sync(library.install, lib, "b", "sz", "zh", _audio(b"x"), "phone", "8001", 1.0)
    gaps = library.missing(lib, {"a", "b", "c"}, {"sz": ("zh",), "gz": ("zh", "en")},
                           ("wav", "ulaw"))
    assert gaps == [
        "default en a (wav, ulaw)", "default en b (wav, ulaw)", "default en c (wav, ulaw)",
        "default zh b (ulaw)", "default zh c (wav, ulaw)",
    ]


def test_export_path(db, tmp_path):
    """export finds a given version or the installed one, and names what is missing."""
    lib = tmp_path / "lib"
    db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"one"), "import", "ops", 1.0)
    assert library.export_path(lib, "a", "sz", "zh", 1, "ulaw").endswith("1.ulaw")
    assert library.export_path(lib, "a", "sz", "zh", None, "wav").endswith("a.wav")
    with pytest.raises(library.LibraryError, match="no alaw file"):
        library.export_path(lib, "a", "sz", "zh", None, "alaw")


def test_pin_hash_and_lockout(db):
    """PINs are stored hashed; N wrong PINs lock until the lockout ends or an enable."""
    db.run_sync(staff.add, "8001", "Li", "2468", 0.0)
    stored = db.run_sync(lambda s: staff.listing(s)[0].pin_hash)
    assert "2468" not in stored and stored.startswith("scrypt$")
    rules = staff.PinRules(2, 600, 100)

    def login(pin, now):
        return login_now(db, "8001", pin, "8100", now, rules)

    assert login("0000", 1) is staff.Login.BAD
    assert login("0000", 2) is staff.Login.LOCKED
    assert login("2468", 3) is staff.Login.LOCKED
    db.run_sync(staff.set_disabled, "8001", False)
    assert login("2468", 4) is staff.Login.OK
    db.run_sync(staff.set_disabled, "8001", True)
    assert login("2468", 5) is staff.Login.BAD
    with pytest.raises(staff.StaffError):
        db.run_sync(staff.add, "12", "X", "2468", 0.0)
    with pytest.raises(staff.StaffError):
        db.run_sync(staff.add, "8002", "X", "12", 0.0)


@pytest.mark.parametrize("pin", ["0000", "1111", "1234", "9876", "0123", "8002", "80028"])
def test_trivial_pins_are_refused(db, pin):
    """Repeated digits, runs up or down and the staff number itself are not PINs."""
    with pytest.raises(staff.StaffError, match="too easy"):
        db.run_sync(staff.add, "8002", "X", pin, 0.0)


def test_rollback_of_a_centers_first_version_restores_the_default(db, tmp_path):
    """A center's only version rolled back removes its override: prompt_path falls back."""
    from prompts.layout import prompt_path
    lib = tmp_path / "lib"
    db.run_sync(library.install, lib, "a", "default", "zh", _audio(b"d"), "tts", "t", 1.0)
    db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"s"), "phone", "8001", 2.0)
    assert prompt_path(lib, "sz", "zh", "a") == current_base(lib, "sz", "zh", "a")
    change = db.run_sync(library.rollback, lib, "a", "sz", "zh", "ops", 3.0)
    assert (change.old_version, change.new_version) == (1, None)
    assert prompt_path(lib, "sz", "zh", "a") == current_base(lib, "default", "zh", "a")
    assert ("a", "sz", "zh") not in db.run_sync(library.installed)
    last = db.run_sync(library.audit)[-1]
    assert (last.action, last.old_version, last.new_version) == ("rollback", 1, None)


def test_installed_since_answers_the_keys_only_after_a_change(db, tmp_path):
    """The IVR's look at a call's start: the last prompt change (audit id), and the installed
    (center, lang, prompt) keys only when that moved: an install, a rollback to an earlier
    version and the removal of a center's override each move it."""
    lib = tmp_path / "lib"
    assert db.run_sync(library.installed_since, None) == (None, set())
    db.run_sync(library.install, lib, "a", "default", "zh", _audio(b"x"), "tts", "t", 1.0)
    first, keys = db.run_sync(library.installed_since, None)
    assert keys == {("default", "zh", "a")}
    assert db.run_sync(library.installed_since, first) == (first, None)
    db.run_sync(library.install, lib, "a", "sz", "zh", _audio(b"one"), "import", "ops", 2.0)
    second, keys = db.run_sync(library.installed_since, first)
    assert keys == {("default", "zh", "a"), ("sz", "zh", "a")}
    db.run_sync(library.rollback, lib, "a", "sz", "zh", "ops", 3.0)
    third, keys = db.run_sync(library.installed_since, second)
    assert keys == {("default", "zh", "a")} and third != second
