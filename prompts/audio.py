"""Turn any audio ffmpeg reads into the files Asterisk plays without transcoding.

Pure, blocking functions: callers run them in a process pool (build-defaults)
or a thread (imports from the daemon), never on the reactor.

Steps: ffmpeg decodes once to 16-bit PCM at the source rate (for the clipping
check) and to 8 kHz mono (and 16 kHz mono when wideband) with its own
resampler; pydub then trims silence at both ends and normalises loudness to
the configured dBFS, with a 10 ms-block peak limiter keeping peaks below -1
dBFS so a high crest factor does not cost loudness. Files
are refused, with a message an administrator understands, when they are not
audio, silent, longer than ``max_seconds`` or clipped.
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tempfile
import wave
import warnings
from array import array
from dataclasses import dataclass

from pydub import AudioSegment
from pydub.silence import detect_leading_silence

with warnings.catch_warnings():  # audioop: deprecated in 3.11, audioop-lts from 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SILENCE_DBFS = -50.0  # quieter than this counts as silence when trimming
PAD_MS = 60  # kept before and after the speech so the first consonant is not cut
MIN_SOUND_MS = 100  # less sound than this after trimming: a silent file (one syllable is ~150)
CLIP_SHARE = 0.002  # refused when more than this share of samples sit at full scale
PEAK_CEILING_DBFS = -1.0
DECODE_MARGIN_S = 30.0  # decode this much past max_seconds, then refuse as too long


class AudioRejected(ValueError):
    """A file that must not become a prompt; ``reason`` is one of REASONS."""

    reason = "not_audio"


class NotAudio(AudioRejected):
    reason = "not_audio"


class Silent(AudioRejected):
    reason = "silent"


class TooLong(AudioRejected):
    reason = "too_long"


class Clipped(AudioRejected):
    reason = "clipped"


@dataclass(frozen=True)
class Settings:
    formats: tuple[str, ...]  # extensions to write: wav ulaw alaw sln sln16 gsm
    loudness_dbfs: float
    max_seconds: float


@dataclass(frozen=True)
class Processed:
    files: dict[str, bytes]  # extension -> file contents
    duration: float  # seconds, after trimming
    dbfs: float  # loudness reached
    sha256: str  # of the 8 kHz wav


def process_file(path: str, settings: Settings) -> Processed:
    """Decode, check and convert one file; raises an AudioRejected subclass if unusable."""
    limit = settings.max_seconds + DECODE_MARGIN_S
    with tempfile.TemporaryDirectory(prefix="prompt-") as tmp:
        decoded = _decode_pcm_wav(path, tmp, settings) if path.lower().endswith(".wav") \
            else None
        src, seg8, seg16 = decoded or _decode_ffmpeg(path, tmp, settings, limit)
    if src.frame_count() == 0:
        raise NotAudio("the file contains no audio samples")
    if len(src) / 1000 >= limit - 0.05:
        raise TooLong(f"longer than the {settings.max_seconds:.0f} s allowed")
    _check_clipping(src)
    return finish(seg8, seg16, settings)


def _decode_ffmpeg(path: str, tmp: str, settings: Settings, limit: float):
    """Anything ffmpeg reads: the source rate for the clipping check, 8 (16) kHz mono."""
    native = os.path.join(tmp, "native.wav")
    narrow = os.path.join(tmp, "8k.raw")
    wide = os.path.join(tmp, "16k.raw")
    wideband = "sln16" in settings.formats
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-t", f"{limit:.0f}",
           "-map", "0:a:0", "-c:a", "pcm_s16le", "-f", "wav", native,
           "-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le", narrow]
    if wideband:
        cmd += ["-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "s16le", wide]
    result = subprocess.run(cmd, capture_output=True, timeout=120)
    if result.returncode != 0:
        last = (result.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
        raise NotAudio(f"not an audio file ffmpeg can read ({last[:160]})")
    return (AudioSegment.from_wav(native), _raw_segment(narrow, 8000),
            _raw_segment(wide, 16000) if wideband else None)


def _decode_pcm_wav(path: str, tmp: str, settings: Settings):
    """PCM wav (espeak-ng's output, most phone recordings): read directly and
    resampled by sox, several times faster than starting ffmpeg. None for any
    other wav, which then goes through ffmpeg."""
    try:
        with wave.open(path, "rb") as w:
            src = AudioSegment(data=w.readframes(w.getnframes()), sample_width=w.getsampwidth(),
                               frame_rate=w.getframerate(), channels=w.getnchannels())
    except (wave.Error, EOFError, OSError):
        return None
    if src.frame_count() / src.frame_rate > settings.max_seconds + DECODE_MARGIN_S:
        raise TooLong(f"longer than the {settings.max_seconds:.0f} s allowed")
    segs = []
    for rate in (8000, 16000) if "sln16" in settings.formats else (8000,):
        out = os.path.join(tmp, f"{rate}.raw")
        result = subprocess.run(["sox", "-V1", path, "-t", "raw", "-e", "signed", "-b", "16",
                                 "-c", "1", "-r", str(rate), out], capture_output=True,
                                timeout=120)
        if result.returncode != 0:
            return None
        segs.append(_raw_segment(out, rate))
    return src.set_sample_width(2), segs[0], segs[1] if len(segs) > 1 else None


def finish(seg8: AudioSegment, seg16: AudioSegment | None, settings: Settings) -> Processed:
    """Trim, normalise and encode already-resampled mono 16-bit audio."""
    start, end = _speech_bounds(seg8)
    seg8 = seg8[start:end]
    if len(seg8) / 1000 > settings.max_seconds:
        raise TooLong(f"{len(seg8) / 1000:.1f} s of sound, longer than the "
                      f"{settings.max_seconds:.0f} s allowed")
    gain = settings.loudness_dbfs - seg8.dBFS
    out = _limited(seg8, gain)
    for _ in range(3):  # limiting lowers the level a little: raise the gain and redo
        short = settings.loudness_dbfs - out.dBFS
        if short < 0.2:
            break
        gain += short
        out = _limited(seg8, gain)
    return _encode(out, seg16, settings, start, end, gain)


def _limited(seg: AudioSegment, gain_db: float) -> AudioSegment:
    """``seg`` with ``gain_db`` applied, turned down block by block wherever a peak would
    pass the ceiling (instant attack, ~100 ms release): speech stays clean and loud."""
    target = 10 ** (gain_db / 20)
    ceiling = 32767 * 10 ** (PEAK_CEILING_DBFS / 20)
    block = seg.frame_rate // 100 * 2
    pcm, out, g = seg.raw_data, [], target
    for i in range(0, len(pcm), block):
        chunk = pcm[i:i + block]
        want = min(target, ceiling / max(audioop.max(chunk, 2), 1))
        g = want if want < g else g + (want - g) * 0.1
        out.append(audioop.mul(chunk, 2, g))
    return seg._spawn(b"".join(out))


def _encode(seg8: AudioSegment, seg16: AudioSegment | None, settings: Settings, start: int,
            end: int, gain: float) -> Processed:
    pcm8 = seg8.raw_data
    wav = _wav(pcm8, 8000)
    files: dict[str, bytes] = {}
    for fmt in settings.formats:
        if fmt == "wav":
            files[fmt] = wav
        elif fmt == "sln":
            files[fmt] = pcm8
        elif fmt == "ulaw":
            files[fmt] = audioop.lin2ulaw(pcm8, 2)
        elif fmt == "alaw":
            files[fmt] = audioop.lin2alaw(pcm8, 2)
        elif fmt == "sln16":
            if seg16 is None:
                raise ValueError("sln16 needs the 16 kHz decode")
            files[fmt] = _limited(seg16[start:end], gain).raw_data
        elif fmt == "gsm":
            files[fmt] = _gsm(pcm8)
        else:
            raise ValueError(f"unknown format {fmt!r}")
    return Processed(files=files, duration=len(seg8) / 1000, dbfs=seg8.dBFS,
                     sha256=hashlib.sha256(wav).hexdigest())


def silence(settings: Settings, ms: int = 100) -> Processed:
    """A short pause, for a catalog text that is only punctuation (a word one
    language needs and the other leaves out)."""
    seg = AudioSegment.silent(duration=ms, frame_rate=8000).set_sample_width(2)
    seg16 = AudioSegment.silent(duration=ms, frame_rate=16000).set_sample_width(2)
    return _encode(seg, seg16, settings, 0, ms, 0.0)


def _raw_segment(path: str, rate: int) -> AudioSegment:
    with open(path, "rb") as f:
        data = f.read()
    return AudioSegment(data=data[: len(data) // 2 * 2], sample_width=2, frame_rate=rate,
                        channels=1)


def _check_clipping(seg: AudioSegment) -> None:
    """Full-scale samples mean the recording was distorted before it reached us."""
    samples = array("h", seg.raw_data[: len(seg.raw_data) // 2 * 2])
    if not samples:
        return
    full = samples.count(32767) + samples.count(-32768) + samples.count(-32767)
    if full / len(samples) > CLIP_SHARE:
        raise Clipped(f"clipped: {100 * full / len(samples):.1f}% of the samples are at "
                      "full scale; record again more quietly")


def _speech_bounds(seg: AudioSegment) -> tuple[int, int]:
    """Milliseconds to keep: from the first to the last sound, plus a little padding."""
    if len(seg) == 0 or seg.max_dBFS < SILENCE_DBFS:
        raise Silent("silent: no sound above the silence threshold")
    lead = detect_leading_silence(seg, silence_threshold=SILENCE_DBFS, chunk_size=10)
    trail = detect_leading_silence(seg.reverse(), silence_threshold=SILENCE_DBFS,
                                   chunk_size=10)
    if len(seg) - lead - trail < MIN_SOUND_MS:
        raise Silent("silent: less than 0.1 s of sound")
    return max(0, lead - PAD_MS), min(len(seg), len(seg) - trail + PAD_MS)


def _wav(pcm: bytes, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def _gsm(pcm: bytes) -> bytes:
    result = subprocess.run(["sox", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16",
                             "-c", "1", "-", "-t", "gsm", "-"], input=pcm,
                            capture_output=True, timeout=60, check=True)
    return result.stdout
