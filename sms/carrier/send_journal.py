"""Which parts went out to an SMSC and which were answered, known after a kill -9.

A part committed ``submitting`` may or may not have left when the daemon dies,
and its submit_sm_resp may have arrived without being committed. The journal
tells these apart: an ``S`` line is appended before a part's submit_sm is handed
to the socket, an ``R`` line (the outcome) when its response arrives; pending
``R`` lines are written with the next ``S``, so the parts with an ``S`` and no
``R`` are never more than the binds' windows. A successful answer is journalled by
the bind that read it (``answered_ok``), before that bind refills its window; a
failure by the dispatcher (``answered``), which decides what it means. At recovery
a part whose last line is ``R`` gets that answer and is not sent again, one whose
last line is ``S`` is resent and counted as a possible duplicate, and one with no
line never left and is simply resent.

Lines go out with ``os.write``: that survives the process, not the machine.
Each segment begins with the kernel's boot id, and a journal from another boot
(or with a damaged line) is not trusted: recovery then counts every
``submitting`` part, as the database alone allows. Segments rotate at a size,
and closed ones are deleted, oldest first, once every part sent in them has a
committed result.
The journal holds part ids, SMSC message ids and error codes: no numbers, no text.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from twisted.logger import Logger

from sms.outbox.records import SubmitResult

log = Logger(namespace="hotline.sms.journal")

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
OUTCOMES = ("ok", "temporary", "doubtful", "permanent")


def current_boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""  # no boot id: a journal can then never be trusted after a restart


_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n"}
_UNESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n"}


def _field(value) -> str:
    """A value on one tab-separated line, reversibly (SMSC ids are free text)."""
    if value is None:
        return ""
    text = value if type(value) is str else str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = "".join(_ESCAPES.get(c, c) for c in text)
    return text


def _unfield(text: str) -> str | None:
    if not text:
        return None
    return re.sub(r"\\[\\tn]", lambda m: _UNESCAPES[m.group(0)], text)


@dataclass(frozen=True)
class JournalView:
    """Each journalled part's last word: its SubmitResult, or None when sent and unanswered."""

    last: dict[int, SubmitResult | None]


class JournalDamaged(ValueError):
    """A segment from another boot, or a line that cannot be read."""


class SendJournal:
    """Append-only segments ``<instance>.<n>.journal`` in ``directory``."""

    def __init__(self, directory: Path, instance: str, *, segment_bytes: int = 4 << 20,
                 boot_id: str | None = None):
        self.directory, self.instance = Path(directory), instance
        self.segment_bytes = segment_bytes
        self.boot_id = current_boot_id() if boot_id is None else boot_id
        self._fd: int | None = None
        self._segment = 0
        self._size = 0
        self._answers: list[str] = []
        self._pending: dict[int, set[int]] = {}  # segment -> parts sent there, result uncommitted
        self._where: dict[int, int] = {}  # part -> the segment of its last S line

    # ---- recovery ------------------------------------------------------------
    def segments(self) -> list[Path]:
        found = []
        for path in self.directory.glob(f"{self.instance}.*.journal"):
            number = path.name[len(self.instance) + 1:-len(".journal")]
            if number.isdigit():
                found.append((int(number), path))
        return [path for _, path in sorted(found)]

    def read(self) -> JournalView | None:
        """What the segments on disk say, or None when there are none or they are not trusted."""
        paths = self.segments()
        if not paths:
            return None
        try:
            last: dict[int, SubmitResult | None] = {}
            for path in paths:
                self._read_segment(path, last)
        except (OSError, JournalDamaged, ValueError) as e:
            log.warn("send journal not used ({error}); every submitting part counts as a "
                     "possible duplicate", error=str(e))
            return None
        return JournalView(last)

    def _read_segment(self, path: Path, last: dict) -> None:
        lines = path.read_bytes().decode("utf-8", "surrogateescape").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if not lines or lines[0] != f"H\t{self.boot_id}" or not self.boot_id:
            raise JournalDamaged(f"{path.name} is from another boot")
        for line in lines[1:]:
            kind, *rest = line.split("\t")
            if kind == "S" and len(rest) == 1:
                last[int(rest[0])] = None
            elif kind == "R" and len(rest) == 6 and rest[2] in OUTCOMES:
                part_id, message_id, outcome, smpp_id, smsc, error = rest
                last[int(part_id)] = SubmitResult(int(part_id), int(message_id), outcome,
                                                  _unfield(smpp_id), _unfield(smsc),
                                                  _unfield(error))
            else:
                raise JournalDamaged(f"{path.name}: unreadable line")

    def discard_before_current(self) -> None:
        """Remove the segments of earlier runs, once recovery has committed what they said."""
        current = self._path(self._segment)
        for path in self.segments():
            if path != current:
                path.unlink(missing_ok=True)

    # ---- writing -------------------------------------------------------------
    def open(self) -> None:
        """Start a fresh segment after the last one on disk."""
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = self.segments()
        if existing:
            self._segment = int(existing[-1].name[len(self.instance) + 1:-len(".journal")])
        self._rotate()

    def _path(self, segment: int) -> Path:
        return self.directory / f"{self.instance}.{segment:09d}.journal"

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._segment += 1
        self._fd = os.open(self._path(self._segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                           0o600)
        self._size = 0
        self._pending[self._segment] = set()
        self._write(f"H\t{self.boot_id}\n")

    def _write(self, text: str) -> None:
        data = text.encode("utf-8", "surrogateescape")
        os.write(self._fd, data)
        self._size += len(data)

    def sent(self, parts) -> None:
        """Called just before these parts' submit_sm are written (one write for a burst);
        earlier answers go first. Each part is ``(part id, message id)``, the ref the
        dispatcher gives the router."""
        if self._fd is None:
            return
        lines, self._answers = self._answers, []
        current = self._pending[self._segment]
        for part_id, _message_id in parts:
            old = self._where.get(part_id)
            if old is not None:
                self._pending[old].discard(part_id)
            current.add(part_id)
            self._where[part_id] = self._segment
            lines.append(f"S\t{part_id}\n")
        self._write("".join(lines))
        if self._size >= self.segment_bytes:
            self._rotate()
            self._drop_done()

    def answered(self, r: SubmitResult) -> None:
        """The part failed (an error answer, a timeout, a lost link); written with the next
        ``S`` or on close."""
        if self._fd is not None:
            self._answers.append(f"R\t{r.part_id}\t{r.message_id}\t{r.outcome}\t"
                                 f"{_field(r.smpp_id)}\t{_field(r.smsc)}\t{_field(r.error)}\n")

    def answered_ok(self, part, smpp_id: str, smsc: str) -> None:
        """``part`` (``(part id, message id)``) was accepted as ``smpp_id``: the result the
        dispatcher will record, journalled as the bind reads it (with the next ``S``)."""
        if self._fd is not None:
            part_id, message_id = part
            self._answers.append(f"R\t{part_id}\t{message_id}\tok\t{_field(smpp_id)}\t"
                                 f"{_field(smsc)}\t\n")

    def committed(self, part_id: int) -> None:
        """The part's result is in the database: its segment may go once all of them are."""
        segment = self._where.pop(part_id, None)
        if segment is not None:
            self._pending[segment].discard(part_id)
            if segment != self._segment and not self._pending[segment]:
                self._drop_done()

    def _drop_done(self) -> None:
        """Delete closed segments oldest first, stopping at one with an uncommitted part.

        In order, because a segment's ``R`` lines may answer ``S`` lines of older ones.
        """
        for segment in sorted(self._pending):
            if segment == self._segment or self._pending[segment]:
                return
            del self._pending[segment]
            self._path(segment).unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            if self._answers:
                answers, self._answers = self._answers, []
                self._write("".join(answers))
            os.close(self._fd)
            self._fd = None
