"""Test audio made on the fly with espeak-ng, sox and ffmpeg, in a temporary folder."""
import pytest

from tests.support.audio_files import make_audio


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory):
    return make_audio(tmp_path_factory.mktemp("audio"))
