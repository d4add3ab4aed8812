"""Test audio made on the fly with espeak-ng, sox and ffmpeg, in a folder of the caller's."""
import subprocess


def run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)


def make_audio(d):
    """speech, padded speech, mp3, 44.1 kHz stereo, silence, clipped and not-audio files."""
    d.mkdir(parents=True, exist_ok=True)
    speech = d / "speech.wav"
    run("espeak-ng", "-v", "cmn", "-w", str(speech), "您好，欢迎致电住房公积金服务热线。")
    # Half a second of silence either side, as a real recording would have.
    run("sox", str(speech), str(d / "padded.wav"), "pad", "0.5", "0.5")
    run("ffmpeg", "-nostdin", "-v", "error", "-i", str(d / "padded.wav"), "-ar", "44100",
        "-b:a", "64k", str(d / "speech.mp3"))
    run("ffmpeg", "-nostdin", "-v", "error", "-i", str(d / "padded.wav"), "-ar", "44100",
        "-ac", "2", str(d / "stereo44k.wav"))
    run("sox", "-n", "-r", "8000", "-b", "16", "-c", "1", str(d / "silence.wav"), "trim", "0", "3")
    run("ffmpeg", "-nostdin", "-v", "error", "-i", str(speech), "-af", "volume=30dB",
        str(d / "clipped.wav"))
    (d / "notes.wav").write_text("this is not audio at all\n")
    return d
