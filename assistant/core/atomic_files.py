"""Write files and folders so that a reader sees the whole of one or nothing: every save in the project goes
through here.

    atomic_write_text(path, text)                          # temp file beside it, then os.replace
    atomic_write(path, lambda temp: torch.save(state, temp))  # anything that writes to a path
    with staged_folder(target) as folder:                  # a fresh hidden folder beside target,
        model.save_pretrained(folder)                      # renamed to target on a clean exit, deleted on error
    rename_folder(folder, target, replace=True)            # swap in; the old one comes back if that fails

A temporary file or folder is hidden (its name starts with ``.``) and lives in the target's own folder, so
the final rename never crosses a file system. On any failure, KeyboardInterrupt included, it is deleted and
the error propagates; what was at the target before is untouched.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_path(target: Path) -> Path:
    """A hidden name beside ``target``: a reader never sees a half-written file under the real name."""
    return target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"


def atomic_write(target: str | Path, write: Callable[[Path], object], *, fsync: bool = False) -> Path:
    """``write(temp)`` into a temporary file beside ``target``, then ``os.replace`` it onto ``target``.

    ``fsync``: flush the file to disk before the rename (for files a crash must not lose)."""
    target = Path(target)
    temp = temporary_path(target)
    try:
        write(temp)
        if fsync:
            fsync_path(temp)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(target: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; see ``atomic_write``."""
    def write(temp: Path) -> None:
        with temp.open("x", encoding="utf-8") as handle:
            handle.write(text)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())

    return atomic_write(target, write)


def rename_folder(folder: Path, target: Path, *, replace: bool = False) -> None:
    """Rename ``folder`` to ``target`` in one step. An existing non-empty ``target`` is never overwritten
    (``os.rename`` raises OSError, e.g. ENOTEMPTY), unless ``replace``: then it is moved aside first, put back
    if the rename fails, and deleted once the new folder is in place."""
    if not replace or not os.path.lexists(target):
        os.rename(folder, target)
        return
    old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
    os.rename(target, old)
    try:
        os.rename(folder, target)
    except BaseException:
        os.rename(old, target)  # put the earlier folder back
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_folder(target: Path, *, prefix: str | None = None, replace: bool = False) -> Iterator[Path]:
    """A fresh hidden folder beside ``target`` to build in; on a clean exit it becomes ``target`` through
    ``rename_folder(..., replace=replace)``, on any exception it is deleted. ``prefix``: the start of its
    name (default ``.<target name>.``)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f"{prefix or f'.{target.name}.'}{os.getpid()}-{secrets.token_hex(4)}"
    temp.mkdir()
    try:
        yield temp
        rename_folder(temp, target, replace=replace)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def fsync_path(path: Path) -> None:
    """Best effort: flush a file or folder to disk (some platforms cannot open folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
