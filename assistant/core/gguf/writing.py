"""The end of every GGUF write: header, metadata, tensors, then an atomic rename into place.

    temp = temporary_path(target)     # assistant.core.atomic_files
    writer = gguf.GGUFWriter(str(temp), arch)
    ...add fields and tensors...
    finish(writer, temp, target)      # on failure: discard(writer, temp)
"""

from __future__ import annotations

import os
from pathlib import Path


def finish(writer, temp: Path, target: Path) -> Path:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(temp, target)
    return target


def discard(writer, temp: Path) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - closing a writer that never opened its file
        pass
    temp.unlink(missing_ok=True)
