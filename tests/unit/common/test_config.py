"""The INI configuration: defaults, validation with one-line errors, secrets from env."""
from pathlib import Path

import pytest

from common.config import ConfigError, load
from common.daily_window import DailyWindow
from daemon import ROOMS

SAMPLE = Path(__file__).resolve().parents[3] / "hotline.sample.ini"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("HOTLINE_AMI_SECRET", "s3cret")
    monkeypatch.setenv("HOTLINE_SMPP_PASSWORD_LOCAL", "pw")


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "hotline.ini"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
[center:ly]
name = 洛阳市住房公积金管理中心
signature = 洛阳公积金
[ami]
secret = x
"""


def test_sample_config_loads(env):
    """The commented sample in the repository is itself a valid configuration."""
    config = load(SAMPLE, ROOMS)
    assert config.centers["demo"].signature == "示例公积金"
    assert config.ivr.ami.secret == "s3cret"
    assert config.sms.smscs[0].password == "pw"


def test_relative_paths_follow_the_file(tmp_path):
    """Relative paths and SQLite URLs are taken from the config file's folder."""
    config = load(write(tmp_path, MINIMAL), ROOMS)
    assert config.daemon.state_dir == tmp_path / "var"
    assert config.database.url == f"sqlite:///{tmp_path / 'var' / 'hotline.db'}"
    assert config.centers["ly"].core_db == tmp_path / "var" / "core-ly.db"


def test_bad_value_names_file_section_and_key(tmp_path):
    """A bad number is reported as FILE [section] key: problem."""
    path = write(tmp_path, MINIMAL + "[codes]\nttl = soon\n")
    with pytest.raises(ConfigError) as e:
        load(path, ROOMS)
    assert str(e.value) == f"{path} [codes] ttl: must be a whole number, not 'soon'"


def test_unknown_key_is_rejected(tmp_path):
    """A misspelt key is an error, not silently ignored."""
    path = write(tmp_path, MINIMAL + "[codes]\nttll = 5\n")
    with pytest.raises(ConfigError, match=r"\[codes\] ttll: unknown key"):
        load(path, ROOMS)


def test_unknown_section_is_rejected(tmp_path):
    """A misspelt section is an error."""
    with pytest.raises(ConfigError, match=r"\[daemom\]: unknown section"):
        load(write(tmp_path, MINIMAL + "[daemom]\n"), ROOMS)


def test_missing_env_secret(tmp_path, monkeypatch):
    """A secret taken from an unset environment variable names the variable."""
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    path = write(tmp_path, MINIMAL.replace("secret = x", "secret = env:NOPE_SECRET"))
    with pytest.raises(ConfigError, match="environment variable NOPE_SECRET is not set"):
        load(path, ROOMS)


def test_missing_file_and_no_center(tmp_path):
    """A missing file and a file without any center are both one-line errors."""
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.ini", ROOMS)
    with pytest.raises(ConfigError, match=r"at least one \[center:CODE\]"):
        load(write(tmp_path, "[ami]\nsecret = x\n"), ROOMS)


def test_http_core_needs_url_and_key(tmp_path):
    """A center on the http core must say where the core is and how to sign."""
    with pytest.raises(ConfigError, match=r"\[center:ly\] core_url: is required"):
        load(write(tmp_path, MINIMAL.replace("signature", "core = http\nsignature")), ROOMS)


def test_office_hours_window(tmp_path):
    """Office hours parse as minutes since midnight; nonsense is refused."""
    text = MINIMAL.replace("signature", "office_hours = 08:30-17:30\nsignature")
    config = load(write(tmp_path, text), ROOMS)
    assert config.centers["ly"].office_hours == DailyWindow(510, 1050, (1, 2, 3, 4, 5))
    with pytest.raises(ConfigError, match="office_hours: must be a time window"):
        load(write(tmp_path, MINIMAL.replace("signature", "office_hours = 8-5\nsignature")), ROOMS)


def test_center_time_zone_defaults_to_beijing_and_is_validated(tmp_path):
    """Office hours are read in the center's zone (Asia/Shanghai unless set); a zone the
    zoneinfo database does not know is refused with the key named."""
    assert load(write(tmp_path, MINIMAL), ROOMS).centers["ly"].timezone == "Asia/Shanghai"
    with pytest.raises(ConfigError, match="timezone: unknown time zone"):
        text = MINIMAL.replace("signature", "timezone = Mars/Olympus\nsignature")
        load(write(tmp_path, text), ROOMS)


def test_secrets_stay_out_of_reprs(env, monkeypatch):
    """Printing the parsed configuration never shows a secret."""
    monkeypatch.setenv("HOTLINE_CLIENT_PORTAL", "portal-secret")
    config = load(SAMPLE, ROOMS)
    text = repr(config)
    assert "s3cret" not in text and "'pw'" not in text


def test_tools_without_secrets_load_with_unset_secret_variables(tmp_path, monkeypatch):
    """Statistics and the prompt library need no AMI secret, SMPP password, core key or
    client secret: loaded with secrets=False, unset variables read as empty; the daemon
    (secrets=True) still refuses with the one-line error."""
    for var in ("HOTLINE_AMI_SECRET", "HOTLINE_SMPP_PASSWORD_LOCAL", "NOPE_KEY"):
        monkeypatch.delenv(var, raising=False)
    text = MINIMAL.replace("secret = x", "secret = env:HOTLINE_AMI_SECRET").replace(
        "signature = 洛阳公积金", "signature = 洛阳公积金\ncore = http\n"
        "core_url = https://core.example/hpf/v1\ncore_key = env:NOPE_KEY")
    path = write(tmp_path, text + "[smsc:local]\nendpoint = tcp:host=h:port=1\nsystem_id = s\n"
                 "password = env:HOTLINE_SMPP_PASSWORD_LOCAL\n"
                 "[http.clients]\nportal = env:NOPE_KEY\n")
    config = load(path, ROOMS, secrets=False)
    assert config.ivr.ami.secret == "" and config.sms.smscs[0].password == ""
    assert config.centers["ly"].core_key == "" and config.http.clients == {"portal": ""}
    with pytest.raises(ConfigError, match=r"\[center:ly\] core_key: environment variable "
                                          "NOPE_KEY is not set"):
        load(path, ROOMS)


def test_a_root_loads_only_its_rooms(env):
    """The outbox worker loads the SMS room alone and skips the other rooms' sections; the
    shared reader knows no room itself (the composition root passes them)."""
    config = load(SAMPLE, {"sms": ROOMS["sms"]}, only_these_rooms=True)
    assert config.sms.smscs[0].password == "pw" and config.ivr is None
    with pytest.raises(ConfigError, match=r"\[ami\]: unknown section"):
        load(SAMPLE, {"sms": ROOMS["sms"]})




def test_a_disabled_links_secret_is_known_and_not_needed(tmp_path, monkeypatch):
    """[ami] enabled = no with the sample's secret line: neither an unknown key nor a
    missing variable."""
    monkeypatch.delenv("HOTLINE_AMI_SECRET", raising=False)
    text = MINIMAL.replace("secret = x", "enabled = no\nsecret = env:HOTLINE_AMI_SECRET")
    assert load(write(tmp_path, text), ROOMS).ivr.ami.secret == ""
