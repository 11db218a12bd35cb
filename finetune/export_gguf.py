"""Export a generative adapter as GGUF for llama.cpp, Ollama and LM Studio.

    python -m finetune.export sentiment-v1 --format gguf --output exports/sentiment-gguf --quant q8_0
    python -m finetune.export sentiment-v1 --format gguf-lora --output exports/sentiment-lora

- ``gguf``: the adapter merged into its full-precision base, one GGUF file with the tokenizer and
  chat template (``q8_0`` by default; ``f16``, ``q4_0`` or ``f32``), and an Ollama ``Modelfile``.
- ``gguf-lora``: the adapter alone as a GGUF LoRA (the file the app's llama.cpp engine loads), and a
  ``Modelfile`` that puts it on the base (``ollama create NAME -f Modelfile``).

The folder is built under a hidden temporary name and renamed into place, like the safetensors
export (``finetune.export``), with ``exported_from.json`` saying what it holds.
"""

from __future__ import annotations

from pathlib import Path

import torch

from assistant.core.errors import InputError, UserError
from finetune.adapters import AdapterInfo
from finetune.export_folder import check_target, write_export
from finetune.merging import merged_causal_lm

FORMATS = ("gguf", "gguf-lora")


def _modelfile(weights: str, tokenizer, adapter: str | None = None) -> str:
    """An Ollama Modelfile: the weights (base + ADAPTER for a LoRA), the chat template, the stop token."""
    lines = [f"FROM {weights}"]
    if adapter:
        lines.append(f"ADAPTER ./{adapter}")
    template = getattr(tokenizer, "chat_template", "") or ""
    if "<|im_start|>" in template:  # ChatML, in Ollama's template language
        lines.append('TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
                     '{{ end }}<|im_start|>assistant\n"""')
    if tokenizer.eos_token:
        lines.append(f'PARAMETER stop "{tokenizer.eos_token}"')
    return "\n".join(lines) + "\n"


def _write(info: AdapterInfo, folder: Path, fmt: str, quant: str) -> dict:
    from assistant.core.gguf.lora_file import write_lora_gguf
    from assistant.core.gguf.model_file import write_model_gguf
    from assistant.core.loading import load_tokenizer
    from assistant.core.model_sources import gguf_source, resolve_model

    tokenizer = load_tokenizer(str(info.path))
    base_gguf = gguf_source(info.base_model)
    if fmt == "gguf-lora":
        from transformers import AutoConfig

        file = f"{info.name}-lora.gguf"
        write_lora_gguf(info.path, AutoConfig.from_pretrained(resolve_model(info.base_model).location), folder / file)
        base = str(base_gguf[0]) if base_gguf else info.base_model
        (folder / "Modelfile").write_text(_modelfile(base, tokenizer, adapter=file), encoding="utf-8")
        return {"file": file, "base_file": base}
    with torch.no_grad():
        model = merged_causal_lm(info, "cpu")  # fp32: a LoRA update merged into 4-bit weights is rounded away
    file = f"{info.name}-{quant}.gguf"
    write_model_gguf(model, tokenizer, folder / file, quant, name=info.name,
                     tokenizer_gguf=base_gguf[0] if base_gguf else None)
    (folder / "Modelfile").write_text(_modelfile(f"./{file}", tokenizer), encoding="utf-8")
    return {"file": file, "quant": quant}


def export_gguf(info: AdapterInfo, output: str | Path, *, fmt: str = "gguf", quant: str = "q8_0",
                overwrite: bool = False) -> Path:
    """Write the GGUF export of ``info`` to the folder ``output`` atomically; returns the folder."""
    from assistant.core.gguf.model_file import QUANT_TYPES

    if fmt not in FORMATS:
        raise InputError(f"--format '{fmt}' is not one of safetensors, {', '.join(FORMATS)}.")
    if quant not in QUANT_TYPES:
        raise InputError(f"--quant '{quant}' is not one of {', '.join(QUANT_TYPES)}.")
    if info.broken:
        raise UserError(f"Adapter {info.name!r} cannot be exported: {info.broken}.")
    if info.kind != "causal-lm-lora":
        raise InputError(f"Adapter {info.name!r} is a classifier head on an encoder; GGUF export is for generative "
                         "(causal-lm-lora) adapters. Export it as safetensors instead.")
    target = Path(output).expanduser().resolve()
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_export(info, target, overwrite, lambda temp: {"format": fmt, **_write(info, temp, fmt, quant)},
                        "the GGUF file")
