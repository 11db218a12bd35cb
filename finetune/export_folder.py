"""An export folder written atomically: built under a hidden name beside the target, marked with
``exported_from.json`` and renamed into place, so it appears complete or not at all; an existing folder is
replaced only when it is an earlier export and ``--overwrite`` asks for it.

    write_export(info, Path("exports/sentiment-v1"), overwrite=False, build=save_into, what="the model")

Used by ``finetune.export`` and ``finetune.export_gguf``. Tests: ``pytest tests/test_export.py -q``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from assistant.core.atomic_files import staged_folder
from assistant.core.errors import InputError, UserError
from finetune.adapters import AdapterInfo

MARKER = "exported_from.json"  # also what makes an existing folder safe to replace with --overwrite


def write_export(info: AdapterInfo, target: Path, overwrite: bool, build, what: str) -> Path:
    """Build an export in a hidden folder beside ``target`` (``build(folder) -> marker fields``), write its
    ``exported_from.json`` and rename it into place; nothing half-written is ever left at ``target``."""
    try:
        with staged_folder(target, prefix=f".{target.name}.exporting-", replace=True) as temp:
            written = build(temp)
            marker = {"adapter": info.name, "kind": info.kind, "task": info.task, "base_model": info.base_model,
                      "adapter_created": info.created, **written,
                      "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            (temp / MARKER).write_text(json.dumps(marker, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            check_target(target, overwrite)  # again: the folder may have appeared while the model was saved
    except OSError as exc:
        raise UserError(f"Could not write the export to {target}: {exc.strerror or exc}. Check that the folder "
                        f"is writable and the disk has room for {what}.") from exc
    return target


def check_target(target: Path, overwrite: bool) -> None:
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise InputError(f"{target} already exists; choose another --output or pass --overwrite to replace an "
                         "earlier export.")
    if target.is_symlink() or not (target / MARKER).is_file():
        raise InputError(f"{target} exists and is not an earlier export (no {MARKER}); it is not replaced. "
                         "Choose another --output.")
