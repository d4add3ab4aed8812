"""Where prompt files live on disk, and the file-system lookup the offline checks make.

Layout under ``[prompts] library_dir``::

    versions/<center>/<lang>/<id>/<n>.<fmt>   immutable, every version ever installed
    current/<center>/<lang>/<id>.<fmt>        what Asterisk plays; replaced file by file
                                              with os.replace, so never half-written

``<id>`` may contain ``/`` (``menu/main``) and becomes sub-folders. The center
``default`` holds the text-to-speech and imported defaults; a center that
recorded its own version of a prompt overrides it there.

The daemon never looks at these files on the reactor: calls and the recording flow ask
``prompts.installed.InstalledPrompts`` (prompt_current, kept in memory).
"""
from __future__ import annotations

import os

DEFAULT_CENTER = "default"
# Every extension the library writes, in the order a lookup probes them.
EXTENSIONS = ("wav", "sln", "ulaw", "alaw", "sln16", "gsm")


def current_base(library_dir: str | os.PathLike, center: str, lang: str, prompt_id: str) -> str:
    """The installed path without extension for exactly this center (no fallback)."""
    return os.path.join(os.fspath(library_dir), "current", center, lang, *prompt_id.split("/"))


def version_dir(library_dir: str | os.PathLike, center: str, lang: str, prompt_id: str) -> str:
    """The folder holding every stored version of one prompt for one center and language."""
    return os.path.join(os.fspath(library_dir), "versions", center, lang, *prompt_id.split("/"))


def has_current(library_dir: str | os.PathLike, center: str, lang: str, prompt_id: str) -> bool:
    base = current_base(library_dir, center, lang, prompt_id)
    return any(os.path.exists(f"{base}.{ext}") for ext in EXTENSIONS)


def prompt_path(library_dir: str | os.PathLike, center: str, lang: str, prompt_id: str) -> str:
    """The path without extension for STREAM FILE / GET DATA, as found on disk (blocking;
    for the CLI's checks): the center's own recording if it installed one, else the
    ``default`` center's.

    Asterisk picks the file format by the channel's codec, so no extension.
    """
    if center != DEFAULT_CENTER and has_current(library_dir, center, lang, prompt_id):
        return current_base(library_dir, center, lang, prompt_id)
    return current_base(library_dir, DEFAULT_CENTER, lang, prompt_id)
