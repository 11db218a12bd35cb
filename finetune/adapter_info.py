"""One adapter folder as the store lists it (``AdapterInfo``), read from its files, and its metadata.json.

    write_metadata(folder, {"task": "sentiment", "base_model": "...", "kind": "causal-lm-lora", ...})
    info = read_info(folder)      # info.broken: None, or what keeps the folder from being used
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from assistant.core.atomic_files import atomic_write_text
from assistant.core.errors import InputError
from finetune.adapter_checks import folder_problems, read_json_object, timestamp
from finetune.adapter_names import sanitize_name

log = logging.getLogger(__name__)


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
    """Write ``folder/metadata.json`` atomically and flushed to disk; UTF-8, indent 2."""
    text = json.dumps(metadata, ensure_ascii=False, indent=2) + "\n"  # serialise before touching the disk
    return atomic_write_text(Path(folder) / "metadata.json", text, fsync=True)


def read_info(path: Path) -> AdapterInfo:
    problems, metadata = folder_problems(path)
    try:
        if sanitize_name(path.name) != path.name:
            raise InputError("it has surrounding spaces")
    except InputError as exc:
        problems.insert(0, f"the folder name is not a valid adapter name ({exc}); rename the folder on disk")
    created = metadata.get("created")
    if timestamp(created) is None:
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


def update_metadata_name(folder: Path) -> None:
    metadata = read_json_object(folder / "metadata.json")
    if isinstance(metadata, dict) and metadata.get("name") != folder.name:
        try:
            write_metadata(folder, {**metadata, "name": folder.name})
        except OSError as exc:  # the folder name is the truth; a stale "name" field is harmless
            log.warning("Could not update the name in %s: %s", folder / "metadata.json", exc)
