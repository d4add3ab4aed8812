"""Loading the configuration reader in a fresh interpreter."""
from pathlib import Path



SAMPLE = Path(__file__).resolve().parents[3] / "hotline.sample.ini"


def test_the_config_reader_imports_no_room():
    """common.config is below the rooms: importing it alone loads no room package."""
    import subprocess
    import sys

    code = ("import sys, common.config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('ivr', 'sms', 'prompts', 'core_client', 'daemon')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3], check=True).stdout
    assert out.strip() == "[]"
