"""The hidden folders an adapter store works in: ``.staging-*`` (an adapter being written) and ``.trash-*``
(one being deleted), and the cleanup of those a crash left behind.

Names: ``.staging-<pid>-<token>-<name>`` / ``.trash-<pid>-<token>-<name>``. A folder is registered as live
before it exists, so no cleanup can take it. ``remove_stale_work_folders(root)`` (run when a store opens)
removes those whose process is gone, those of this process that no live staging context owns, and any with
another shape (e.g. made by hand). A folder of another live process (a CLI run next to the app) is kept. On
Windows, where ``os.kill(pid, 0)`` would terminate the process, other processes' folders are always kept.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
from pathlib import Path

log = logging.getLogger(__name__)

STAGING, TRASH = ".staging-", ".trash-"
_WORK_FOLDER = re.compile(r"\.(?:staging|trash)-(\d{1,10})-")
_REGISTRY_LOCK = threading.Lock()
_LIVE_WORK_FOLDERS: set[Path] = set()  # hidden folders this process is using right now


def reserve_work_folder(root: Path, prefix: str, name: str, *, create: bool) -> Path:
    """A new hidden folder name in ``root`` (``prefix`` is ``STAGING`` or ``TRASH``), registered as live;
    ``create``: make the folder too."""
    while True:
        path = root / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}-{name}"
        with _REGISTRY_LOCK:
            if path in _LIVE_WORK_FOLDERS or os.path.lexists(path):
                continue
            _LIVE_WORK_FOLDERS.add(path)  # registered before it exists: no cleanup can take it
        if not create:
            return path
        try:
            path.mkdir()
            return path
        except FileExistsError:
            discard_work_folder(path, remove=False)


def discard_work_folder(path: Path | None, *, remove: bool = True) -> None:
    """Delete a work folder (if ``remove`` and it is there) and forget it."""
    if path is None:
        return
    if remove and os.path.lexists(path):
        _remove(path)
    with _REGISTRY_LOCK:
        _LIVE_WORK_FOLDERS.discard(path)


def remove_stale_work_folders(root: Path) -> None:
    for entry in os.scandir(root):
        if entry.name.startswith((STAGING, TRASH)) and not _is_live(Path(entry.path)):
            log.info("Removing %s, left over by an interrupted run", entry.path)
            _remove(Path(entry.path))


def _is_live(path: Path) -> bool:
    with _REGISTRY_LOCK:
        if path in _LIVE_WORK_FOLDERS:
            return True
    match = _WORK_FOLDER.match(path.name)
    if not match:
        return False  # not made by this module (e.g. by hand): nothing owns it
    pid = int(match.group(1))
    if pid == os.getpid() or pid <= 0:
        return False  # ours but not registered: a cleanup that failed earlier
    if os.name != "posix":
        return True  # os.kill(pid, 0) terminates the process on Windows; never guess there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except (OSError, OverflowError):
        return False
    return True


def _remove(path: Path) -> None:
    try:
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # the folder is hidden and retried on the next start; do not fail the caller
        log.warning("Could not remove %s: %s", path, exc)
