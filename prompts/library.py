"""The prompt library: immutable versions, the installed tree, and the DB record of both.

Every function taking a ``session`` is meant for ``Database.run`` (a pool
thread) or ``Database.run_sync`` (the CLI): it writes files and rows in one
go, and the rows roll back if writing the files fails. Files are written to a
temporary name in the destination folder and moved into place with
``os.replace``, so Asterisk never opens half a file and a refused or failed
install leaves nothing behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from prompts.audio import Processed
from prompts.layout import DEFAULT_CENTER, EXTENSIONS, current_base, prompt_path, version_dir
from prompts.tables import PromptAudit, PromptCurrent, PromptVersion

SOURCES = ("tts", "import", "phone")


class LibraryError(Exception):
    """A library operation that cannot be done as asked (no such version, ...)."""


@dataclass(frozen=True)
class Change:
    prompt_id: str
    center: str
    lang: str
    old_version: int | None
    new_version: int | None  # None: a center's override removed, the default plays again


def write_atomic(path: str, data: bytes) -> None:
    """Write beside the target, then rename over it: readers see old or new, never half."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def current_version(session: Session, prompt_id: str, center: str, lang: str) -> int | None:
    row = session.get(PromptCurrent, (prompt_id, center, lang))
    return row.version if row else None


def install(session: Session, library_dir: str | Path, prompt_id: str, center: str, lang: str,
            processed: Processed, source: str, who: str, now: float,
            text_sha256: str | None = None) -> Change:
    """Store ``processed`` as the next version and make it the one Asterisk plays."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}")
    last = session.scalar(select(func.max(PromptVersion.version)).where(
        PromptVersion.prompt_id == prompt_id, PromptVersion.center == center,
        PromptVersion.lang == lang))
    version = (last or 0) + 1
    folder = version_dir(library_dir, center, lang, prompt_id)
    for ext, data in processed.files.items():
        # replaces a file an install whose transaction failed may have left
        write_atomic(os.path.join(folder, f"{version}.{ext}"), data)
    session.add(PromptVersion(
        prompt_id=prompt_id, center=center, lang=lang, version=version, source=source, who=who,
        created_at=now, sha256=processed.sha256, duration=processed.duration,
        formats=",".join(processed.files), text_sha256=text_sha256))
    return _activate(session, library_dir, prompt_id, center, lang, version, source, who, now)


def rollback(session: Session, library_dir: str | Path, prompt_id: str, center: str, lang: str,
             who: str, now: float, to_version: int | None = None) -> Change:
    """Reinstall an earlier version: the one before the current, or ``to_version``.

    A center's first own version has nothing before it: rolling it back removes
    the override, so the center's callers hear the default again (new version None).
    """
    current = current_version(session, prompt_id, center, lang)
    if current is None:
        raise LibraryError(f"{prompt_id} ({center}, {lang}) has no installed version")
    if to_version is None:
        to_version = session.scalar(select(func.max(PromptVersion.version)).where(
            PromptVersion.prompt_id == prompt_id, PromptVersion.center == center,
            PromptVersion.lang == lang, PromptVersion.version < current))
        if to_version is None:
            if center != DEFAULT_CENTER:
                return _remove_override(session, library_dir, prompt_id, center, lang, current,
                                        who, now)
            raise LibraryError(f"{prompt_id} ({center}, {lang}) has no version before {current}")
    if _version(session, prompt_id, center, lang, to_version) is None:
        raise LibraryError(f"{prompt_id} ({center}, {lang}) has no version {to_version}")
    return _activate(session, library_dir, prompt_id, center, lang, to_version, "rollback", who,
                     now)


def _remove_override(session, library_dir, prompt_id, center, lang, current, who,
                     now) -> Change:
    base = current_base(library_dir, center, lang, prompt_id)
    for ext in EXTENSIONS:
        if os.path.exists(f"{base}.{ext}"):
            os.unlink(f"{base}.{ext}")
    session.delete(session.get(PromptCurrent, (prompt_id, center, lang)))
    session.add(PromptAudit(at=now, who=who, action="rollback", prompt_id=prompt_id,
                            center=center, lang=lang, old_version=current, new_version=None))
    return Change(prompt_id, center, lang, current, None)


def _version(session, prompt_id, center, lang, version) -> PromptVersion | None:
    return session.scalar(select(PromptVersion).where(
        PromptVersion.prompt_id == prompt_id, PromptVersion.center == center,
        PromptVersion.lang == lang, PromptVersion.version == version))


def _activate(session, library_dir, prompt_id, center, lang, version, action, who,
              now) -> Change:
    row = _version(session, prompt_id, center, lang, version)
    if row is None:
        raise LibraryError(f"{prompt_id} ({center}, {lang}) version {version} is not recorded")
    formats = row.formats.split(",")
    src = version_dir(library_dir, center, lang, prompt_id)
    base = current_base(library_dir, center, lang, prompt_id)
    staged = []
    try:
        # Copy every format beside its target first, then rename them all: the
        # window in which formats disagree is a few renames long.
        for ext in formats:
            os.makedirs(os.path.dirname(base), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(base), prefix=".tmp-")
            os.close(fd)
            staged.append((tmp, f"{base}.{ext}"))
            shutil.copyfile(os.path.join(src, f"{version}.{ext}"), tmp)
            os.chmod(tmp, 0o644)
    except OSError as e:
        for tmp, _ in staged:
            os.unlink(tmp)
        raise LibraryError(f"{prompt_id} ({center}, {lang}) version {version}: {e}") from e
    for tmp, target in staged:
        os.replace(tmp, target)
    for ext in EXTENSIONS:  # formats no longer configured must not outlive the switch
        if ext not in formats and os.path.exists(f"{base}.{ext}"):
            os.unlink(f"{base}.{ext}")
    cur = session.get(PromptCurrent, (prompt_id, center, lang))
    old = cur.version if cur else None
    if cur is None:
        session.add(PromptCurrent(prompt_id=prompt_id, center=center, lang=lang,
                                  version=version, updated_at=now))
    else:
        cur.version, cur.updated_at = version, now
    session.add(PromptAudit(at=now, who=who, action=action, prompt_id=prompt_id, center=center,
                            lang=lang, old_version=old, new_version=version))
    return Change(prompt_id, center, lang, old, version)


def versions(session: Session, prompt_id: str | None = None, center: str | None = None,
             lang: str | None = None) -> list[PromptVersion]:
    q = select(PromptVersion)
    if prompt_id:
        q = q.where(PromptVersion.prompt_id == prompt_id)
    if center:
        q = q.where(PromptVersion.center == center)
    if lang:
        q = q.where(PromptVersion.lang == lang)
    return list(session.scalars(q.order_by(PromptVersion.prompt_id, PromptVersion.center,
                                           PromptVersion.lang, PromptVersion.version)))


def installed(session: Session) -> dict[tuple[str, str, str], int]:
    """(prompt id, center, lang) -> installed version."""
    return {(r.prompt_id, r.center, r.lang): r.version for r in session.scalars(
        select(PromptCurrent))}


def installed_since(session: Session, change: int | None
                    ) -> tuple[int | None, set[tuple[str, str, str]] | None]:
    """The last prompt change (every install and rollback writes one audit row) and, if it
    is not ``change``, every installed (center, lang, prompt id); else None for the keys."""
    last = session.scalar(select(func.max(PromptAudit.id)))
    if change is not None and last == change:
        return last, None
    return last, {(center, lang, pid) for pid, center, lang in installed(session)}


def audit(session: Session, prompt_id: str | None = None) -> list[PromptAudit]:
    q = select(PromptAudit)
    if prompt_id:
        q = q.where(PromptAudit.prompt_id == prompt_id)
    return list(session.scalars(q.order_by(PromptAudit.id)))


def export_path(library_dir: str | Path, prompt_id: str, center: str, lang: str,
                version: int | None, fmt: str) -> str:
    """The stored file to copy out: a given version, or what is installed now."""
    if version is None:
        path = f"{current_base(library_dir, center, lang, prompt_id)}.{fmt}"
    else:
        path = os.path.join(version_dir(library_dir, center, lang, prompt_id), f"{version}.{fmt}")
    if not os.path.exists(path):
        what = f"version {version}" if version else "the installed version"
        raise LibraryError(f"{prompt_id} ({center}, {lang}): {what} has no {fmt} file")
    return path


def missing(library_dir: str | Path, prompt_ids: set[str],
            centers: dict[str, tuple[str, ...]], formats: tuple[str, ...]) -> list[str]:
    """Every (center, language, prompt, format) Asterisk would fail to find.

    ``centers`` maps each center to its enabled languages; a center without its
    own recording plays the default one, so a gap shows up under its name only
    when neither exists.
    """
    out = []
    for center, langs in sorted(centers.items()):
        for lang in langs:
            for pid in sorted(prompt_ids):
                base = prompt_path(library_dir, center, lang, pid)
                gaps = [ext for ext in formats if not os.path.exists(f"{base}.{ext}")]
                if gaps:
                    owner = center if base != current_base(library_dir, DEFAULT_CENTER, lang,
                                                           pid) else DEFAULT_CENTER
                    out.append(f"{owner} {lang} {pid} ({', '.join(gaps)})")
    return sorted(set(out))
