"""What makes a folder a usable adapter: the checks behind ``AdapterInfo.broken`` and publishing.

    problems, metadata = folder_problems(folder)   # [] when the folder is a complete, safe adapter

An adapter holds adapter_config.json, adapter_model.safetensors (complete: its size matches its header),
metadata.json with the fields in ``REQUIRED_METADATA``, optionally head.safetensors + head_config.json;
no symbolic links and no pickle-based files (they can run code when loaded).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

KINDS = ("causal-lm-lora", "encoder-head-lora")
REQUIRED_METADATA = ("task", "base_model", "kind", "prompt_version", "prompt_format", "hyperparameters",
                     "data_fingerprint", "metrics")
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})


def read_json_object(path: Path) -> dict[str, Any] | str:
    """The JSON object in ``path``, or a sentence saying why there is none."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"{path.name} is not valid JSON ({exc})"
    return value if isinstance(value, dict) else f"{path.name} is not a JSON object"


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch for an ISO date (naive means local time), else None."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _safetensors_problem(path: Path, shown: str) -> str | None:
    """Why ``path`` is not a complete safetensors file, or None: the safetensors library reads the header and
    checks that its tensors cover the file exactly."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy"):
            pass  # opening is the check
    except OSError as exc:
        return f"{shown} cannot be read ({exc.strerror or exc})"
    except SafetensorError as exc:
        reason = str(exc).removeprefix("Error while deserializing header: ")
        if "not fully covered" in reason:
            return (f"{shown} is {path.stat().st_size} bytes but its header describes another size (cut short or "
                    "added to); save the adapter again")
        return f"{shown} is not a safetensors file ({reason}); save the adapter again"
    return None


def folder_problems(folder: Path) -> tuple[list[str], dict[str, Any]]:
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
    config = read_json_object(folder / "adapter_config.json")
    if isinstance(config, str):
        problems.append(f"{config} (save the PEFT model with model.save_pretrained(folder))")
    if not (folder / "adapter_model.safetensors").is_file():
        problems.append("adapter_model.safetensors is missing (the LoRA weights; save with "
                        "model.save_pretrained(folder, safe_serialization=True))")
    if (folder / "head.safetensors").is_file() != (folder / "head_config.json").is_file():
        problems.append("head.safetensors and head_config.json must be saved together")
    metadata = read_json_object(folder / "metadata.json")
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
    if created is not None and timestamp(created) is None:
        problems.append(f"metadata.json created is {created!r}, not an ISO date such as 2025-01-31T12:00:00")
    return problems
