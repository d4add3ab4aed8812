"""build-defaults: espeak-ng for every prompt, redone only when the text changes."""
import wave

import pytest

from common.config import ConfigError, load
from daemon import ROOMS
from prompts import audio, catalog, defaults, library
from prompts.layout import current_base
from storage.db import Database

SETTINGS = audio.Settings(("wav", "ulaw"), -20.0, 60.0)


def _catalog(tmp_path, welcome_zh):
    d = tmp_path / "catalog"
    d.mkdir(exist_ok=True)
    (d / "a.toml").write_text(
        f'["t/welcome"]\nzh = "{welcome_zh}"\nen = "Welcome."\n'
        '["t/times"]\nzh = "次"\nen = "."\n', encoding="utf-8")
    return catalog.load(d)


@pytest.fixture
def db(tmp_path):
    d = Database(f"sqlite:///{tmp_path / 'h.db'}", reactor=None)
    d.create_all()
    return d


def test_build_synthesises_once_and_redoes_only_changed_text(db, tmp_path):
    """First build makes every prompt in both languages; a second does nothing; a changed
    text is redone as a new version; punctuation-only text becomes a short pause."""
    lib = tmp_path / "lib"
    cat = _catalog(tmp_path, "欢迎致电")
    assert defaults.build(db, lib, cat, ("zh", "en"), SETTINGS, 1.0, jobs=2) == (4, 0)
    with wave.open(current_base(lib, "default", "zh", "t/welcome") + ".wav") as w:
        assert (w.getnchannels(), w.getframerate()) == (1, 8000)
    with wave.open(current_base(lib, "default", "en", "t/times") + ".wav") as w:
        assert w.getnframes() == 800  # 100 ms of silence for "."
    assert defaults.build(db, lib, cat, ("zh", "en"), SETTINGS, 2.0, jobs=2) == (0, 4)
    cat = _catalog(tmp_path, "您好，欢迎致电")
    assert defaults.build(db, lib, cat, ("zh", "en"), SETTINGS, 3.0, jobs=2) == (1, 3)
    assert db.run_sync(library.installed)[("t/welcome", "default", "zh")] == 2


def test_build_keeps_an_imported_default(db, tmp_path, audio_dir):
    """A default replaced by an import survives build-defaults, even with --force."""
    lib = tmp_path / "lib"
    cat = _catalog(tmp_path, "欢迎致电")
    processed = audio.process_file(str(audio_dir / "padded.wav"), SETTINGS)
    db.run_sync(library.install, lib, "t/welcome", "default", "zh", processed, "import", "ops",
                1.0)
    assert defaults.build(db, lib, cat, ("zh",), SETTINGS, 2.0, force=True) == (1, 1)
    assert db.run_sync(library.installed)[("t/welcome", "default", "zh")] == 1


def test_config_rejects_a_bad_transfer_template(tmp_path):
    """A publish_command naming an unknown field is a config error at load."""
    ini = tmp_path / "h.ini"
    ini.write_text("[center:sz]\nname = 深圳\nsignature = 深圳公积金\n[prompts]\n"
                   "publish_command = rsync -a {library}/ host:/x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[prompts\] publish_command: bad command template"):
        load(ini, ROOMS)
