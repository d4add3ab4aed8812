"""Default audio for every catalog prompt, synthesised with espeak-ng so a fresh
install speaks Mandarin before anyone records anything.

Synthesis and processing run in a process pool (one espeak-ng and one ffmpeg
per prompt); only prompts whose text changed since their last synthesis are
redone, and a default replaced by an import is never overwritten.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from prompts import audio, library
from prompts.catalog import Catalog
from prompts.layout import DEFAULT_CENTER, current_base
from prompts.tables import PromptCurrent, PromptVersion

VOICES = {"zh": "cmn", "en": "en"}
WHO = "build-defaults"


class SynthesisError(Exception):
    """espeak-ng failed for one prompt, or its output was refused (the text names it)."""


@dataclass(frozen=True)
class Job:
    prompt_id: str
    lang: str
    text: str
    text_sha256: str


def synthesise(job: Job, settings: audio.Settings) -> tuple[Job, audio.Processed]:
    """espeak-ng to a wav, then the same processing as an import (runs in a worker)."""
    if not any(ch.isalnum() for ch in job.text):
        return job, audio.silence(settings)
    with tempfile.TemporaryDirectory(prefix="tts-") as tmp:
        wav = os.path.join(tmp, "tts.wav")
        result = subprocess.run(["espeak-ng", "-v", VOICES[job.lang], "-w", wav, job.text],
                                capture_output=True, timeout=60)
        if result.returncode != 0:
            raise SynthesisError(f"{job.prompt_id} ({job.lang}): espeak-ng exited "
                                 f"{result.returncode}: {result.stderr.decode()[-200:]}")
        try:
            return job, audio.process_file(wav, settings)
        except audio.AudioRejected as e:
            raise SynthesisError(f"{job.prompt_id} ({job.lang}): {e}") from None


def pending(session: Session, library_dir: str | Path, catalog: Catalog,
            languages: tuple[str, ...], formats: tuple[str, ...], force: bool) -> list[Job]:
    """Prompts with no default yet, or a synthesised one whose text or formats changed."""
    current = {(r.prompt_id, r.lang): r for r in session.execute(
        select(PromptCurrent.prompt_id, PromptCurrent.lang, PromptVersion.source,
               PromptVersion.text_sha256).join(
            PromptVersion, (PromptVersion.prompt_id == PromptCurrent.prompt_id)
            & (PromptVersion.center == PromptCurrent.center)
            & (PromptVersion.lang == PromptCurrent.lang)
            & (PromptVersion.version == PromptCurrent.version)).where(
            PromptCurrent.center == DEFAULT_CENTER))}
    jobs = []
    for pid in catalog.ids():
        prompt = catalog.prompts[pid]
        for lang in languages:
            sha = prompt.text_sha256(lang)
            row = current.get((pid, lang))
            base = current_base(library_dir, DEFAULT_CENTER, lang, pid)
            complete = all(os.path.exists(f"{base}.{ext}") for ext in formats)
            if row is not None and row.source != "tts" and complete:
                continue  # an administrator's import replaced the default: keep it
            if row is None or force or row.text_sha256 != sha or not complete:
                jobs.append(Job(pid, lang, prompt.text[lang], sha))
    return jobs


def build(db, library_dir: str | Path, catalog: Catalog, languages: tuple[str, ...],
          settings: audio.Settings, now: float, jobs: int | None = None,
          force: bool = False) -> tuple[int, int]:
    """Synthesise what is pending; returns (installed, up to date). For the CLI (blocking)."""
    todo = db.run_sync(pending, library_dir, catalog, languages, settings.formats, force)
    total = len(catalog.prompts) * len(languages)
    if not todo:
        return 0, total
    with ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        for job, processed in pool.map(synthesise, todo, [settings] * len(todo),
                                       chunksize=4):
            db.run_sync(library.install, library_dir, job.prompt_id, DEFAULT_CENTER, job.lang,
                        processed, "tts", WHO, now, job.text_sha256)
    return len(todo), total - len(todo)
