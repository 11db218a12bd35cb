"""The on-disk store of trained adapters: publish atomically, list, get, rename, delete, export as zip, and
a cheap ``version()`` that tells a poll whether anything changed (in this process or another).

    store = AdapterStore(Path("adapters"))
    staging = store.staging("sentiment-v1")          # the name is checked here, before training starts
    with staging as folder:                          # a fresh hidden ``.staging-*`` folder inside the root
        peft_model.save_pretrained(folder)           # adapter_config.json + adapter_model.safetensors
        write_metadata(folder, {"task": ..., "base_model": ..., "kind": "causal-lm-lora", ...})
    info = staging.info                              # published as "sentiment-v1", or "-2", "-3"... if taken

Guarantees: an adapter appears in the root only by one ``os.rename`` of a complete, checked folder, so a
failed, cancelled or killed run never leaves a half-written adapter in ``list()``; an existing adapter is
never overwritten; deleting renames to a hidden ``.trash-*`` folder first. Weights are safetensors only:
pickle-based files (``.bin``, ``.pt``, ``.pkl``...) are refused. Names pass ``sanitize_name`` before
they touch a path. One lock per root makes the store safe for the threads of one app.

Leftovers of a crash (hidden work folders) are removed when a store opens; see
``finetune.adapter_work_folders``. The other jobs live beside this module: names (``adapter_names``), what
makes a folder a usable adapter (``adapter_checks``), ``AdapterInfo`` and metadata.json (``adapter_info``);
their public names are importable from here.

Tests: ``pytest tests/test_adapters.py -q``.
"""

from __future__ import annotations

import copy
import errno
import os
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assistant.core.atomic_files import fsync_path, rename_folder
from assistant.core.errors import InputError, UserError
from finetune.adapter_checks import (KINDS, PICKLE_SUFFIXES, REQUIRED_METADATA, folder_problems, read_json_object,
                                     timestamp)
from finetune.adapter_info import AdapterInfo, read_info, update_metadata_name, write_metadata
from finetune.adapter_names import MAX_NAME_LENGTH, candidate_names, sanitize_name
from finetune.adapter_work_folders import (STAGING, TRASH, discard_work_folder, remove_stale_work_folders,
                                           reserve_work_folder)
from finetune.archives import files_in, zip_folder

__all__ = ["KINDS", "MAX_NAME_LENGTH", "PICKLE_SUFFIXES", "REQUIRED_METADATA", "AdapterInfo", "AdapterStaging",
           "AdapterStore", "sanitize_name", "write_metadata"]

_ROOT_LOCKS_LOCK = threading.Lock()
_ROOT_LOCKS: dict[Path, threading.RLock] = {}  # one lock per root, shared by every store on it


class AdapterStaging:
    """``with store.staging(name) as folder:`` - write into ``folder``; afterwards ``.info`` is the result.

    Clean exit: the folder is checked and published under ``name`` (or ``name-2``...). Any exception,
    KeyboardInterrupt included, or a failed check: the folder is deleted and the exception propagates.
    """

    def __init__(self, store: AdapterStore, name: str):
        self.requested_name = sanitize_name(name)
        self.folder: Path | None = None
        self.info: AdapterInfo | None = None
        self._store = store

    def __enter__(self) -> Path:
        if self.folder is not None:
            raise RuntimeError("An AdapterStaging can be used once; call store.staging(name) again.")
        self.folder = reserve_work_folder(self._store.root, STAGING, self.requested_name, create=True)
        return self.folder

    def __exit__(self, exc_type, exc, traceback) -> bool:
        try:
            if exc_type is None:
                self.info = self._store._publish(self.folder, self.requested_name)
        finally:
            discard_work_folder(self.folder)  # nothing left to remove once published
        return False


class AdapterStore:
    """The adapters under ``root``: one visible folder per adapter, hidden work folders beside them."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"Cannot use {self.root} as the adapters folder ({exc.strerror}); "
                            "choose a writable folder.") from exc
        with _ROOT_LOCKS_LOCK:
            self._lock = _ROOT_LOCKS.setdefault(self.root, threading.RLock())
        with self._lock:
            remove_stale_work_folders(self.root)

    def staging(self, name: str) -> AdapterStaging:
        """A context that yields a hidden folder to write an adapter into and publishes it on clean exit."""
        return AdapterStaging(self, name)

    def list(self) -> list[AdapterInfo]:
        """Every visible adapter folder, newest first; broken ones included, with ``broken`` set."""
        with self._lock:
            infos = []
            for path in self._folders():
                try:
                    infos.append(read_info(path))
                except FileNotFoundError:  # deleted by another process while listing
                    continue
        return sorted(infos, key=lambda info: (-(timestamp(info.created) or 0.0), info.name))

    def version(self) -> tuple[tuple[str, int, int], ...]:
        """A value that changes whenever an adapter is saved, renamed or deleted, by this process or another
        (the training child process publishes into this folder): each visible folder's name, inode number and
        change time in nanoseconds, read by one ``scandir`` and a ``stat`` per folder (no file is opened, nothing is
        parsed), so a once-a-second poll can afford it. Compare two versions for equality only.

        Why not a counter or the folder's mtime: a counter in this process misses the child's writes, and the
        mtime moves on hidden work folders too and ticks too coarsely to tell two changes within a few
        milliseconds apart. Every change of the store is one ``rename`` of a visible folder, which changes
        this listing; an adapter deleted and saved again under its name gets a new folder: a new change time (the
        file system may hand the freed inode number straight back, so the inode alone is not enough; the clean-clone
        test run caught that). Edits inside an adapter's folder by hand are not seen (the Refresh button reads them)."""
        return tuple((path.name, inode, changed) for path, inode, changed in self._folders_with_inodes())

    def names(self) -> tuple[str, ...]:
        """The names of the visible adapter folders, broken ones included, without reading them."""
        return tuple(path.name for path in self._folders())

    def get(self, name: str, *, allow_broken: bool = False) -> AdapterInfo:
        """The adapter called ``name``; InputError if there is none, UserError if broken (unless allowed)."""
        with self._lock:
            info = read_info(self._existing(sanitize_name(name)))
        if info.broken and not allow_broken:
            raise UserError(f"Adapter {info.name!r} cannot be used: {info.broken}. "
                            f"Delete it, or fix the files in {info.path}.")
        return info

    def metadata(self, name: str) -> dict[str, Any]:
        """A copy of the adapter's metadata.json."""
        return copy.deepcopy(self.get(name).metadata)

    def rename(self, old: str, new: str) -> AdapterInfo:
        """Rename an adapter atomically; refuses a name that is already taken."""
        old_name, new_name = sanitize_name(old), sanitize_name(new)
        with self._lock:
            source = self._existing(old_name)
            target = self.root / new_name
            if new_name != old_name:
                taken = InputError(f"An adapter named {new_name!r} already exists; choose another name.")
                if os.path.lexists(target):
                    raise taken
                try:
                    rename_folder(source, target)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        raise taken from exc
                    raise UserError(f"Could not rename adapter {old_name!r}: {exc.strerror}.") from exc
                fsync_path(self.root)
                update_metadata_name(target)
            return read_info(target)

    def delete(self, name: str) -> None:
        """Delete an adapter: renamed to a hidden ``.trash-*`` folder first, so it leaves the list at once."""
        clean = sanitize_name(name)
        with self._lock:
            source = self._existing(clean)
            trash = reserve_work_folder(self.root, TRASH, clean, create=False)
            try:
                rename_folder(source, trash)
            except OSError as exc:
                discard_work_folder(trash)
                raise UserError(f"Could not delete adapter {clean!r}: {exc.strerror}.") from exc
            fsync_path(self.root)
        discard_work_folder(trash)  # a crash here leaves only a hidden folder, removed on next start

    def export_zip(self, name: str, dest_dir: Path) -> Path:
        """Write ``dest_dir/<name>.zip`` (files under ``<name>/``); an older zip of that name is replaced."""
        clean = sanitize_name(name)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        with self._lock:  # no rename or delete while the files are read
            return zip_folder(self.get(clean).path, dest / f"{clean}.zip", root=clean)

    # --- internals -------------------------------------------------------------------------------

    def _folders(self) -> Iterator[Path]:
        for entry in self._visible_entries():
            yield Path(entry.path)

    def _folders_with_inodes(self) -> Iterator[tuple[Path, int, int]]:
        """(folder, inode, change time in ns) of each visible adapter folder, by name."""
        for entry in self._visible_entries():
            try:
                changed = entry.stat(follow_symlinks=False).st_ctime_ns
            except FileNotFoundError:  # deleted between the listing and the stat: the next poll sees it gone
                continue
            yield Path(entry.path), entry.inode(), changed

    def _visible_entries(self) -> list[os.DirEntry]:
        with os.scandir(self.root) as entries:
            visible = [entry for entry in entries if not entry.name.startswith(".")
                       and entry.is_dir(follow_symlinks=False)]
        return sorted(visible, key=lambda e: e.name)

    def _existing(self, clean: str) -> Path:
        path = self.root / clean
        if path.is_symlink() or not path.is_dir():
            names = ", ".join(repr(p.name) for p in self._folders()) or "none yet (train one first)"
            raise InputError(f"There is no adapter named {clean!r} in {self.root}. Available: {names}.")
        return path

    def _publish(self, folder: Path, requested: str) -> AdapterInfo:
        metadata = read_json_object(folder / "metadata.json")
        if isinstance(metadata, dict) and metadata.get("created") is None:
            metadata["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_metadata(folder, metadata)
        problems = folder_problems(folder)[0]
        if problems:
            raise InputError(f"Adapter {requested!r} was not saved: " + "; ".join(problems) + ".")
        for path in files_in(folder, include_hidden=True):
            fsync_path(path)  # contents reach the disk before the rename makes them visible
        with self._lock:
            for candidate in candidate_names(requested):
                target = self.root / candidate
                if os.path.lexists(target):
                    continue
                if metadata.get("name") != candidate:
                    metadata["name"] = candidate
                    write_metadata(folder, metadata)
                try:
                    rename_folder(folder, target)  # on POSIX this fails on a non-empty folder: never overwrites
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        continue  # another process took the name just now
                    raise UserError(f"Could not save adapter {candidate!r} in {self.root}: {exc.strerror}. "
                                    "Check that the folder is writable and the disk is not full.") from exc
                fsync_path(self.root)
                return read_info(target)
        raise AssertionError("unreachable: candidate_names never ends")
