"""The on-disk store of trained adapters: publish atomically, list, get, rename, delete, export as zip.

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

Leftovers of a crash: hidden work folders are named ``.staging-<pid>-<token>-<name>`` /
``.trash-<pid>-<token>-<name>``. ``AdapterStore(...)`` removes those whose process is gone, those of this
process that no live staging context owns, and any with another shape (e.g. made by hand). A folder of
another live process (a CLI run next to the app) is kept. On Windows, where ``os.kill(pid, 0)`` would
terminate the process, other processes' folders are always kept.

Tests: ``pytest tests/test_adapters.py -q``.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import re
import secrets
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import count
from pathlib import Path
from typing import Any

from assistant.errors import InputError, UserError

log = logging.getLogger(__name__)

KINDS = ("causal-lm-lora", "encoder-head-lora")
REQUIRED_METADATA = ("task", "base_model", "kind", "prompt_version", "prompt_format", "hyperparameters",
                     "data_fingerprint", "metrics")
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
MAX_NAME_LENGTH = 64

_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))})
_STAGING, _TRASH = ".staging-", ".trash-"
_WORK_FOLDER = re.compile(r"\.(?:staging|trash)-(\d{1,10})-")
_MAX_SAFETENSORS_HEADER = 100_000_000  # the limit the safetensors library itself enforces

_REGISTRY_LOCK = threading.Lock()
_ROOT_LOCKS: dict[Path, threading.RLock] = {}  # one lock per root, shared by every store on it
_LIVE_WORK_FOLDERS: set[Path] = set()  # hidden folders this process is using right now


def sanitize_name(name: str) -> str:
    """``name`` without surrounding spaces if it is a safe adapter folder name; else InputError with a fix.

    Allowed: 1-64 ASCII letters, digits, ``-``, ``_``, ``.``; first character a letter, digit or ``_``;
    no ``..``, no trailing ``.``; not a Windows device name (``con``, ``nul``, ``com1``...).
    """
    if not isinstance(name, str):
        raise InputError(f"Adapter name must be text, not {type(name).__name__}.")
    clean = name.strip()
    rule = ("use 1-64 letters (a-z, A-Z), digits, '-', '_' or '.', starting with a letter, digit or '_'"
            f", e.g. {_suggest_name(clean)!r}")
    if not clean:
        raise InputError(f"Adapter name is empty: {rule}.")
    shown = repr(clean if len(clean) <= 70 else clean[:67] + "...")
    bad = sorted(set(_NAME_CHARS.sub("", clean)))
    if bad:
        problem = "contains " + ", ".join(repr(c) for c in bad)
    elif not (clean[0].isalnum() or clean[0] == "_"):
        problem = f"starts with {clean[0]!r}"
    elif ".." in clean or clean.endswith("."):
        problem = "contains '..' or ends with '.'"
    elif len(clean) > MAX_NAME_LENGTH:
        problem = f"is {len(clean)} characters long (at most {MAX_NAME_LENGTH})"
    elif clean.split(".")[0].lower() in _WINDOWS_DEVICES:
        problem = "is a reserved device name on Windows"
    else:
        return clean
    raise InputError(f"Adapter name {shown} {problem}: {rule}.")


def _suggest_name(text: str) -> str:
    suggestion = re.sub(r"\.{2,}", ".", re.sub(r"[^A-Za-z0-9._-]+", "-", text)).strip(".-")
    suggestion = suggestion[:MAX_NAME_LENGTH].rstrip(".-")
    if not suggestion or suggestion.split(".")[0].lower() in _WINDOWS_DEVICES:
        return "my-adapter"
    return suggestion


@dataclass(frozen=True)
class AdapterInfo:
    """One adapter folder as listed. ``broken`` is None for a usable adapter, else what is wrong."""

    name: str
    path: Path
    task: str = ""
    base_model: str = ""
    created: str = ""  # ISO 8601; the folder's modification time when metadata.json has none
    kind: str = ""
    labels: list[str] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    broken: str | None = None


def write_metadata(folder: Path, metadata: dict[str, Any]) -> Path:
    """Write ``folder/metadata.json`` atomically (temp file + ``os.replace``); UTF-8, indent 2."""
    text = json.dumps(metadata, ensure_ascii=False, indent=2) + "\n"  # serialise before touching the disk
    path = Path(folder) / "metadata.json"
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("x", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


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
        self.folder = self._store._reserve_work_folder(_STAGING, self.requested_name, create=True)
        return self.folder

    def __exit__(self, exc_type, exc, traceback) -> bool:
        try:
            if exc_type is None:
                self.info = self._store._publish(self.folder, self.requested_name)
        finally:
            self._store._discard_work_folder(self.folder)  # nothing left to remove once published
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
        with _REGISTRY_LOCK:
            self._lock = _ROOT_LOCKS.setdefault(self.root, threading.RLock())
        with self._lock:
            self._remove_stale_work_folders()

    def staging(self, name: str) -> AdapterStaging:
        """A context that yields a hidden folder to write an adapter into and publishes it on clean exit."""
        return AdapterStaging(self, name)

    def list(self) -> list[AdapterInfo]:
        """Every visible adapter folder, newest first; broken ones included, with ``broken`` set."""
        with self._lock:
            infos = []
            for path in self._folders():
                try:
                    infos.append(_read_info(path))
                except FileNotFoundError:  # deleted by another process while listing
                    continue
        return sorted(infos, key=lambda info: (-(_timestamp(info.created) or 0.0), info.name))

    def get(self, name: str, *, allow_broken: bool = False) -> AdapterInfo:
        """The adapter called ``name``; InputError if there is none, UserError if broken (unless allowed)."""
        with self._lock:
            info = _read_info(self._existing(sanitize_name(name)))
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
                    os.rename(source, target)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        raise taken from exc
                    raise UserError(f"Could not rename adapter {old_name!r}: {exc.strerror}.") from exc
                _fsync_path(self.root)
                _update_metadata_name(target)
            return _read_info(target)

    def delete(self, name: str) -> None:
        """Delete an adapter: renamed to a hidden ``.trash-*`` folder first, so it leaves the list at once."""
        clean = sanitize_name(name)
        with self._lock:
            source = self._existing(clean)
            trash = self._reserve_work_folder(_TRASH, clean, create=False)
            try:
                os.rename(source, trash)
            except OSError as exc:
                self._discard_work_folder(trash)
                raise UserError(f"Could not delete adapter {clean!r}: {exc.strerror}.") from exc
            _fsync_path(self.root)
        self._discard_work_folder(trash)  # a crash here leaves only a hidden folder, removed on next start

    def export_zip(self, name: str, dest_dir: Path) -> Path:
        """Write ``dest_dir/<name>.zip`` (files under ``<name>/``); an older zip of that name is replaced."""
        clean = sanitize_name(name)
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        final = dest / f"{clean}.zip"
        temp = dest / f".{clean}.zip.{secrets.token_hex(4)}.tmp"
        with self._lock:  # no rename or delete while the files are read
            info = self.get(clean)
            try:
                with zipfile.ZipFile(temp, "x") as archive:
                    for path in _files(info.path, include_hidden=False):
                        method = zipfile.ZIP_STORED if path.suffix == ".safetensors" else zipfile.ZIP_DEFLATED
                        archive.write(path, f"{clean}/{path.relative_to(info.path).as_posix()}", method)
                os.replace(temp, final)
            except BaseException:
                temp.unlink(missing_ok=True)
                raise
        return final

    # --- internals -------------------------------------------------------------------------------

    def _folders(self) -> Iterator[Path]:
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                yield Path(entry.path)

    def _existing(self, clean: str) -> Path:
        path = self.root / clean
        if path.is_symlink() or not path.is_dir():
            names = ", ".join(repr(p.name) for p in self._folders()) or "none yet (train one first)"
            raise InputError(f"There is no adapter named {clean!r} in {self.root}. Available: {names}.")
        return path

    def _publish(self, folder: Path, requested: str) -> AdapterInfo:
        metadata = _read_json_object(folder / "metadata.json")
        if isinstance(metadata, dict) and metadata.get("created") is None:
            metadata["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_metadata(folder, metadata)
        problems = _problems(folder)[0]
        if problems:
            raise InputError(f"Adapter {requested!r} was not saved: " + "; ".join(problems) + ".")
        for path in _files(folder, include_hidden=True):
            _fsync_path(path)  # contents reach the disk before the rename makes them visible
        with self._lock:
            for candidate in _candidate_names(requested):
                target = self.root / candidate
                if os.path.lexists(target):
                    continue
                if metadata.get("name") != candidate:
                    metadata["name"] = candidate
                    write_metadata(folder, metadata)
                try:
                    os.rename(folder, target)  # on POSIX this fails on a non-empty folder: never overwrites
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        continue  # another process took the name just now
                    raise UserError(f"Could not save adapter {candidate!r} in {self.root}: {exc.strerror}. "
                                    "Check that the folder is writable and the disk is not full.") from exc
                _fsync_path(self.root)
                return _read_info(target)
        raise AssertionError("unreachable: _candidate_names never ends")

    def _reserve_work_folder(self, prefix: str, name: str, *, create: bool) -> Path:
        while True:
            path = self.root / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}-{name}"
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
                self._discard_work_folder(path, remove=False)

    def _discard_work_folder(self, path: Path | None, *, remove: bool = True) -> None:
        if path is None:
            return
        if remove and os.path.lexists(path):
            _remove(path)
        with _REGISTRY_LOCK:
            _LIVE_WORK_FOLDERS.discard(path)

    def _remove_stale_work_folders(self) -> None:
        for entry in os.scandir(self.root):
            if entry.name.startswith((_STAGING, _TRASH)) and not _is_live(Path(entry.path)):
                log.info("Removing %s, left over by an interrupted run", entry.path)
                _remove(Path(entry.path))


def _candidate_names(requested: str) -> Iterator[str]:
    yield requested
    for number in count(2):
        suffix = f"-{number}"
        yield requested[: MAX_NAME_LENGTH - len(suffix)] + suffix


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


def _fsync_path(path: Path) -> None:
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


def _files(folder: Path, *, include_hidden: bool) -> list[Path]:
    """Regular files under ``folder``, sorted; symbolic links are never followed nor returned."""
    found = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if include_hidden or not d.startswith("."))
        for name in sorted(names):
            path = Path(top) / name
            if (include_hidden or not name.startswith(".")) and not path.is_symlink():
                found.append(path)
    return found


def _read_json_object(path: Path) -> dict[str, Any] | str:
    """The JSON object in ``path``, or a sentence saying why there is none."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"{path.name} is not valid JSON ({exc})"
    return value if isinstance(value, dict) else f"{path.name} is not a JSON object"


def _safetensors_problem(path: Path, shown: str) -> str | None:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or length > _MAX_SAFETENSORS_HEADER or 8 + length > size:
                return f"{shown} is truncated or not a safetensors file; save the adapter again"
            header = json.loads(handle.read(length))
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror})"
    except ValueError:
        return f"{shown} is not a safetensors file (its header is not JSON)"
    entries = [entry for key, entry in header.items() if key != "__metadata__"] if isinstance(header, dict) else [None]
    offsets = [entry.get("data_offsets") if isinstance(entry, dict) else None for entry in entries]
    if not all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], int) for pair in offsets):
        return f"{shown} has a malformed safetensors header"
    ends = [pair[1] for pair in offsets]
    expected = 8 + length + max(ends, default=0)
    if size != expected:
        return f"{shown} is {size} bytes but its header describes {expected}; save the adapter again"
    return None


def _problems(folder: Path) -> tuple[list[str], dict[str, Any]]:
    """What keeps ``folder`` from being a usable adapter (empty if nothing), and its metadata."""
    problems = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        for name in sorted(dirs + names):
            path = Path(top) / name
            shown = path.relative_to(folder).as_posix()
            if path.is_symlink():
                problems.append(f"{shown} is a symbolic link (copy the real file into the folder)")
            elif path.suffix.lower() in PICKLE_SUFFIXES:
                problems.append(f"{shown} is a pickle-based file, which can run code when loaded; adapters "
                                "hold safetensors only: save with save_pretrained(folder, safe_serialization="
                                f"True) and do not write {shown} (e.g. Trainer's training_args.bin) there")
            elif path.suffix == ".safetensors" and path.is_file():
                problems.append(_safetensors_problem(path, shown))
    config = _read_json_object(folder / "adapter_config.json")
    if isinstance(config, str):
        problems.append(f"{config} (save the PEFT model with model.save_pretrained(folder))")
    if not (folder / "adapter_model.safetensors").is_file():
        problems.append("adapter_model.safetensors is missing (the LoRA weights; save with "
                        "model.save_pretrained(folder, safe_serialization=True))")
    if (folder / "head.safetensors").is_file() != (folder / "head_config.json").is_file():
        problems.append("head.safetensors and head_config.json must be saved together")
    metadata = _read_json_object(folder / "metadata.json")
    if isinstance(metadata, str):
        problems.append(f"{metadata} (write it with finetune.adapters.write_metadata)")
        metadata = {}
    else:
        problems.extend(_metadata_problems(metadata))
    return [p for p in problems if p], metadata


def _metadata_problems(metadata: dict[str, Any]) -> list[str]:
    problems = []
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        problems.append("metadata.json lacks " + ", ".join(missing))
    for key in ("task", "base_model"):
        if key in metadata and not (isinstance(metadata[key], str) and metadata[key]):
            problems.append(f"metadata.json {key} must be non-empty text")
    if "kind" in metadata and metadata["kind"] not in KINDS:
        problems.append(f"metadata.json kind is {metadata['kind']!r}; use one of {', '.join(KINDS)}")
    if "hyperparameters" in metadata and not isinstance(metadata["hyperparameters"], dict):
        problems.append("metadata.json hyperparameters must be an object")
    metrics = metadata.get("metrics", {})
    if not (isinstance(metrics, dict) and all(isinstance(metrics.get(k), dict) for k in ("base", "adapter"))):
        problems.append('metadata.json metrics must be {"base": {...}, "adapter": {...}}')
    labels = metadata.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        problems.append("metadata.json labels must be a list of texts, or null")
    created = metadata.get("created")
    if created is not None and _timestamp(created) is None:
        problems.append(f"metadata.json created is {created!r}, not an ISO date such as 2025-01-31T12:00:00")
    return problems


def _read_info(path: Path) -> AdapterInfo:
    problems, metadata = _problems(path)
    try:
        if sanitize_name(path.name) != path.name:
            raise InputError("it has surrounding spaces")
    except InputError as exc:
        problems.insert(0, f"the folder name is not a valid adapter name ({exc}); rename the folder on disk")
    created = metadata.get("created")
    if _timestamp(created) is None:
        created = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat(timespec="seconds")

    def text(key: str) -> str:
        return metadata[key] if isinstance(metadata.get(key), str) else ""

    labels = metadata.get("labels")
    metrics = metadata.get("metrics")
    return AdapterInfo(
        name=path.name, path=path, task=text("task"), base_model=text("base_model"), created=created,
        kind=text("kind"), labels=labels if isinstance(labels, list) else None,
        metrics=metrics if isinstance(metrics, dict) else {}, metadata=metadata,
        broken="; ".join(problems) or None)


def _update_metadata_name(folder: Path) -> None:
    metadata = _read_json_object(folder / "metadata.json")
    if isinstance(metadata, dict) and metadata.get("name") != folder.name:
        try:
            write_metadata(folder, {**metadata, "name": folder.name})
        except OSError as exc:  # the folder name is the truth; a stale "name" field is harmless
            log.warning("Could not update the name in %s: %s", folder / "metadata.json", exc)


def _timestamp(value: Any) -> float | None:
    """Seconds since the epoch for an ISO date (naive means local time), else None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return None
