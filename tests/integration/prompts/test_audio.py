"""Processing imported and recorded audio into the formats Asterisk plays."""
import io
import wave
import warnings

import pytest
from pydub import AudioSegment

with warnings.catch_warnings():  # audioop: deprecated in 3.11, audioop-lts from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

from prompts.audio import Clipped, NotAudio, Settings, Silent, TooLong, process_file

SETTINGS = Settings(formats=("wav", "ulaw", "alaw", "sln"), loudness_dbfs=-20.0, max_seconds=60)


def _wav_params(data: bytes):
    with wave.open(io.BytesIO(data)) as w:
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()


@pytest.mark.parametrize("name", ["speech.mp3", "stereo44k.wav", "padded.wav"])
def test_any_input_becomes_8k_mono_normalised_and_trimmed(audio_dir, name):
    """mp3, 44.1 kHz stereo wav and espeak's 22 kHz wav all come out as 8 kHz mono
    16-bit, at the target loudness with peaks limited to -1 dBFS, with the
    half-second silences trimmed."""
    out = process_file(str(audio_dir / name), SETTINGS)
    channels, width, rate, frames = _wav_params(out.files["wav"])
    assert (channels, width, rate) == (1, 2, 8000)
    assert abs(out.dbfs - SETTINGS.loudness_dbfs) < 0.3
    assert AudioSegment.from_wav(io.BytesIO(out.files["wav"])).max_dBFS <= -0.99  # limited
    padded = AudioSegment.from_file(audio_dir / "padded.wav")
    assert out.duration < len(padded) / 1000 - 0.7  # most of the 1 s of padding is gone
    assert abs(frames / 8000 - out.duration) < 0.01


def test_raw_formats_match_the_wav(audio_dir):
    """sln is the wav's samples without header; ulaw and alaw are their G.711 encodings."""
    out = process_file(str(audio_dir / "padded.wav"), SETTINGS)
    with wave.open(io.BytesIO(out.files["wav"])) as w:
        pcm = w.readframes(w.getnframes())
    assert out.files["sln"] == pcm
    assert out.files["ulaw"] == audioop.lin2ulaw(pcm, 2)
    assert out.files["alaw"] == audioop.lin2alaw(pcm, 2)


def test_wideband_adds_16k_raw(audio_dir):
    """With sln16 configured, a 16 kHz raw file of the same length is written too."""
    out = process_file(str(audio_dir / "padded.wav"),
                       Settings(("wav", "sln16"), -20.0, 60))
    assert abs(len(out.files["sln16"]) / 2 / 16000 - out.duration) < 0.01


@pytest.mark.parametrize("name,error,words", [
    ("notes.wav", NotAudio, "not an audio file"),
    ("silence.wav", Silent, "silent"),
    ("clipped.wav", Clipped, "clipped"),
])
def test_bad_files_are_refused_with_a_reason(audio_dir, name, error, words):
    """Not audio, silence and clipped audio are refused with a message saying why."""
    with pytest.raises(error, match=words):
        process_file(str(audio_dir / name), SETTINGS)


def test_too_long_is_refused(audio_dir):
    """Sound longer than max_seconds is refused, even after trimming."""
    with pytest.raises(TooLong, match="longer than"):
        process_file(str(audio_dir / "padded.wav"), Settings(("wav",), -20.0, 1.0))


def test_missing_file_is_not_audio(tmp_path):
    """A path that does not exist is reported as unreadable, not as a crash."""
    with pytest.raises(NotAudio):
        process_file(str(tmp_path / "nope.mp3"), SETTINGS)


def test_gsm_is_written_when_configured(audio_dir):
    """gsm (33-byte frames per 20 ms) is made by sox from the processed 8 kHz audio."""
    out = process_file(str(audio_dir / "padded.wav"), Settings(("gsm",), -20.0, 60))
    assert abs(len(out.files["gsm"]) / 33 * 0.02 - out.duration) < 0.05
