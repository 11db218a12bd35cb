"""Zip a folder for download (an adapter, an export), written atomically.

    zip_folder(adapter_folder, Path("out/sentiment-v1.zip"))                   # files under sentiment-v1/
    zip_folder(export_folder, export_folder.with_name("a.zip"), include_hidden=True)

Weights (``.safetensors``, ``.gguf``) are stored uncompressed: deflating them saves almost nothing and
costs seconds per hundred MB. Symbolic links are never followed nor archived.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from assistant.core.atomic_files import atomic_write

STORED_SUFFIXES = frozenset({".safetensors", ".gguf"})


def files_in(folder: Path, *, include_hidden: bool) -> list[Path]:
    """Regular files under ``folder``, sorted; symbolic links are never followed nor returned."""
    found = []
    for top, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if include_hidden or not d.startswith("."))
        for name in sorted(names):
            path = Path(top) / name
            if (include_hidden or not name.startswith(".")) and not path.is_symlink():
                found.append(path)
    return found


def zip_folder(folder: Path, archive: Path, *, root: str | None = None, include_hidden: bool = False) -> Path:
    """Write the files of ``folder`` to ``archive`` under ``root/`` (default: the folder's name); an older
    archive of that name is replaced only once the new one is complete."""
    folder, root = Path(folder), root or Path(folder).name

    def write(temp: Path) -> None:
        with zipfile.ZipFile(temp, "x") as zipped:
            for path in files_in(folder, include_hidden=include_hidden):
                method = zipfile.ZIP_STORED if path.suffix in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
                zipped.write(path, f"{root}/{path.relative_to(folder).as_posix()}", method)

    return atomic_write(archive, write)
