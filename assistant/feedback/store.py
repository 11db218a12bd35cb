"""The ratings file: ``DATA_DIR/feedback/ratings.jsonl``, one JSON object a line, appended and never half-written.

    store = FeedbackStore(data_dir)
    store.add({"id": "chat-1f2e...", "rating": "down", "better_answer": "...", ...})   # one line, fsynced
    found = store.read()            # found.ratings (the latest record per id), found.skipped ("line 7: ...")
    store.delete("chat-1f2e...")    # rewrites the file without it (temp file + rename)

Every change holds an exclusive ``flock`` on ``ratings.jsonl.lock``, so two sessions (threads or processes)
rating at once both land. An append is one ``write`` on an ``O_APPEND`` descriptor, flushed with ``fsync``
before it returns: a crash (even ``kill -9``) loses at most the line being written, and the next append starts
on a fresh line, so a torn tail is one skipped line, nothing more. A line that is not a rating (a crash's torn
tail, a hand edit) is skipped on reading with a message naming its line and kept in the file, so fixing it by
hand brings the rating back. Re-rating a reply appends a new record with the same id: the last one counts.
The file never leaves the data dir: a ``feedback`` folder or file that is a link pointing elsewhere is refused.
Tests: ``pytest tests/test_feedback_store.py -q``.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.atomic_files import atomic_write_text
from assistant.core.errors import UserError

RATINGS = ("up", "down")
FIELDS = {"id": str, "rating": str, "reply": str, "conversation": list}


@dataclass
class FeedbackFile:
    ratings: list[dict] = field(default_factory=list)
    """The latest record of each rating id, oldest first."""
    skipped: list[str] = field(default_factory=list)
    """One message per line that is not a rating, naming the line."""


def problem(record) -> str | None:
    """Why ``record`` (a parsed line) is not a rating, or None."""
    if not isinstance(record, dict):
        return "is not a JSON object"
    for name, kind in FIELDS.items():
        if not isinstance(record.get(name), kind):
            return f"has no {name!r} ({kind.__name__})"
    if record["rating"] not in RATINGS:
        return f"has rating {str(record['rating'])[:20]!r}; expected 'up' or 'down'"
    return None


class FeedbackStore:
    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self.folder = self.data_dir / "feedback"
        self.path = self.folder / "ratings.jsonl"
        self._threads = threading.Lock()  # flock excludes other processes; this, other threads of ours

    def _checked_folder(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        root = self.data_dir.resolve()
        for path in (self.folder, self.path, self.path.with_name(self.path.name + ".lock")):
            if os.path.lexists(path) and not path.resolve().is_relative_to(root):
                raise UserError(f"{path} points outside the data dir ({root}); feedback is only written inside "
                                "it. Remove the link.")
        return self.folder

    @contextmanager
    def _locked(self):
        self._checked_folder()
        with self._threads, open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def add(self, record: dict) -> dict:
        """Append ``record`` (a complete rating) as one line; returns it."""
        reason = problem(record)
        if reason:
            raise ValueError(f"not a rating: it {reason}")  # a bug in the caller, not the user's input
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                if _ends_mid_line(fd):
                    line = b"\n" + line  # a crash tore the last line: start a fresh one
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return record

    def read(self) -> FeedbackFile:
        found = FeedbackFile()
        if not self.path.is_file():
            return found
        latest: dict[str, dict] = {}
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    found.skipped.append(f"line {number}: not valid JSON ({str(exc)[:80]}); skipped")
                    continue
                reason = problem(record)
                if reason:
                    found.skipped.append(f"line {number}: {reason}; skipped")
                    continue
                latest.pop(record["id"], None)  # re-insert: order by the latest record
                latest[record["id"]] = record
        found.ratings = list(latest.values())
        return found

    def get(self, rating_id: str) -> dict | None:
        return next((r for r in self.read().ratings if r["id"] == rating_id), None)

    def delete(self, rating_id: str) -> bool:
        """Remove every record of ``rating_id``; other lines (broken ones too) stay as they are."""
        with self._locked():
            if not self.path.is_file():
                return False
            lines = self.path.read_bytes().decode("utf-8", "replace").splitlines(keepends=True)
            kept = [line for line in lines if _record_id(line) != rating_id]
            if len(kept) == len(lines):
                return False
            text = "".join(kept)
            atomic_write_text(self.path, text if not text or text.endswith("\n") else text + "\n", fsync=True)
        return True


def _record_id(line: str) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("id") if isinstance(record, dict) else None


def _ends_mid_line(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
