"""The on-disk layout and the IVR's per-playback lookup."""
from prompts.layout import current_base, prompt_path


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_prompt_path_falls_back_to_default_center(tmp_path):
    """A center without its own recording plays the default center's file, without extension."""
    _touch(tmp_path / "current/default/zh/menu/main.wav")
    assert prompt_path(tmp_path, "sz", "zh", "menu/main") == str(tmp_path / "current/default/zh/menu/main")


def test_prompt_path_prefers_center_override(tmp_path):
    """A center that installed its own version of a prompt gets that one."""
    _touch(tmp_path / "current/default/zh/menu/main.wav")
    _touch(tmp_path / "current/sz/zh/menu/main.ulaw")
    assert prompt_path(tmp_path, "sz", "zh", "menu/main") == str(tmp_path / "current/sz/zh/menu/main")
    assert prompt_path(tmp_path, "sz", "en", "menu/main") == current_base(tmp_path, "default", "en", "menu/main")
