"""Convert a PEFT LoRA adapter folder to a GGUF LoRA file that llama.cpp applies on a GGUF base.

llama.cpp's layout matches PEFT's matrices as they are: ``<weight>.lora_a`` holds A (rank x in) and
``<weight>.lora_b`` holds B (out x rank); llama.cpp scales B·A by ``adapter.lora.alpha / rank``,
PEFT by ``lora_alpha / r`` (``lora_alpha / sqrt(r)`` with rsLoRA, written as an equivalent alpha).
For Llama-family bases B's rows get the q/k reordering of ``assistant.core.gguf.architectures``.

    python -m assistant.core.gguf.lora_file ADAPTER_FOLDER BASE_MODEL_FOLDER OUT.gguf

``gguf_lora_for(folder, config)`` converts once and keeps ``adapter_model.gguf`` inside the adapter
folder, rebuilt only when the adapter's weights are newer than it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np

from assistant.core.atomic_files import temporary_path
from assistant.core.errors import InputError, UserError
from assistant.core.gguf.architectures import architecture_of, gguf_tensor_name, permute_rows, qk_heads, tensor_name_map
from assistant.core.gguf.writing import discard, finish

LORA_FILE = "adapter_model.gguf"
LORA_DTYPE = np.float32
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<module>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")


def _adapter_config(folder: Path) -> dict:
    try:
        return json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"Adapter folder {folder.name} has no readable adapter_config.json ({exc}).") from exc


def _check_supported(adapter_config: dict, folder: Path) -> None:
    unsupported = []
    if adapter_config.get("use_dora"):
        unsupported.append("DoRA")
    if adapter_config.get("modules_to_save"):
        unsupported.append(f"fully trained modules ({', '.join(adapter_config['modules_to_save'])})")
    if adapter_config.get("bias", "none") != "none":
        unsupported.append(f"trained biases (bias={adapter_config['bias']})")
    if adapter_config.get("rank_pattern") or adapter_config.get("alpha_pattern"):
        unsupported.append("per-module ranks")
    if unsupported:
        raise InputError(f"Adapter {folder.name} uses {', '.join(unsupported)}, which GGUF LoRA cannot hold; "
                         "serve it with --engine transformers, or export it merged.")


def lora_alpha(adapter_config: dict) -> float:
    """The ``adapter.lora.alpha`` that makes llama.cpp's alpha/rank scale equal PEFT's scale."""
    r, alpha = float(adapter_config["r"]), float(adapter_config["lora_alpha"])
    return alpha * math.sqrt(r) if adapter_config.get("use_rslora") else alpha


def write_lora_gguf(folder: str | Path, base_config, target: str | Path) -> Path:
    """Write the GGUF LoRA of the PEFT adapter in ``folder`` for a base with ``base_config``."""
    import gguf
    from safetensors.numpy import load_file

    folder, target = Path(folder), Path(target)
    adapter_config = _adapter_config(folder)
    _check_supported(adapter_config, folder)
    _, arch = architecture_of(base_config)
    name_map = tensor_name_map(arch, int(base_config.num_hidden_layers))
    try:
        weights = load_file(str(folder / "adapter_model.safetensors"))
    except Exception as exc:
        raise UserError(f"Adapter {folder.name}: adapter_model.safetensors cannot be read ({exc}).") from exc
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in weights.items():
        match = _LORA_KEY.match(key)
        if match is None:
            raise InputError(f"Adapter {folder.name} holds tensor {key!r}, which is not a LoRA matrix; "
                             "GGUF LoRA holds LoRA matrices only.")
        gguf_name = gguf_tensor_name(name_map, match["module"] + ".weight")
        if gguf_name is None or gguf_name.startswith("token_embd"):
            raise InputError(f"Adapter {folder.name} adapts {match['module']}, which GGUF LoRA cannot map.")
        pairs.setdefault(gguf_name, {})[match["which"]] = value.astype(np.float32)

    temp = temporary_path(target)
    writer = gguf.GGUFWriter(str(temp), arch.gguf_name)
    try:
        writer.add_type("adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", lora_alpha(adapter_config))
        writer.add_name(folder.name)
        for gguf_name in sorted(pairs):
            pair = pairs[gguf_name]
            if set(pair) != {"A", "B"}:
                raise UserError(f"Adapter {folder.name} has lora_A without lora_B (or the reverse) for {gguf_name}.")
            lora_b = pair["B"]
            heads = qk_heads(gguf_name, base_config) if arch.permute_qk else None
            if heads:
                lora_b = permute_rows(lora_b, heads)
            writer.add_tensor(f"{gguf_name}.lora_a", np.ascontiguousarray(pair["A"]).astype(LORA_DTYPE))
            writer.add_tensor(f"{gguf_name}.lora_b", np.ascontiguousarray(lora_b).astype(LORA_DTYPE))
        return finish(writer, temp, target)
    except BaseException:
        discard(writer, temp)
        raise


def gguf_lora_for(folder: str | Path, base_config) -> Path:
    """``folder/adapter_model.gguf``, converted now if missing or older than the adapter's weights."""
    folder = Path(folder)
    target = folder / LORA_FILE
    source = folder / "adapter_model.safetensors"
    if target.is_file() and source.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    return write_lora_gguf(folder, base_config, target)


if __name__ == "__main__":
    from transformers import AutoConfig

    print(write_lora_gguf(sys.argv[1], AutoConfig.from_pretrained(sys.argv[2]), sys.argv[3]))
