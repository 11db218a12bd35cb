"""Merge an adapter into its base model and save one plain safetensors model folder.

    python -m finetune.export sentiment-v1 --output exports/sentiment-v1
    python -m finetune.export sentiment-v1 --output exports/sentiment-v1 --overwrite --data-dir /srv/data
    python -m finetune.export sentiment-v1 --format gguf --output exports/sentiment-gguf    # see finetune.export_gguf

    folder = export_merged(store.get("sentiment-v1"), Path("exports/sentiment-v1"))

For serving engines that need merged weights (llama.cpp conversion, ONNX, plain ``transformers``). vLLM
(``--enable-lora``) and TGI (``LORA_ADAPTERS``) can also load the PEFT adapter folder itself, next to the
unchanged base model; that keeps one base for many adapters and needs no export.

The base is loaded in full precision (fp32 on a CPU, bf16 on CUDA), never 4-bit: merging a LoRA update
into 4-bit weights rounds it away. The folder is written under a hidden temporary name beside the target
and renamed into place, so it appears complete or not at all; it holds config.json, model.safetensors,
generation_config.json (causal LMs), the adapter's tokenizer files and ``exported_from.json``.

- causal-lm-lora adapters -> an ``AutoModelForCausalLM`` folder.
- encoder-head-lora adapters -> the encoder with its trained head, an ``AutoModelForSequenceClassification``
  (classification) or ``AutoModelForTokenClassification`` (NER) folder with ``id2label`` set.

Tests: ``pytest tests/test_export.py -q``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from assistant.core.errors import InputError, UserError, run_command
from finetune.adapters import AdapterInfo, AdapterStore
from finetune.archives import zip_folder
from finetune.export_folder import MARKER, check_target, write_export
from finetune.merging import merged_causal_lm, merged_head

log = logging.getLogger(__name__)
__all__ = ["MARKER", "export_merged", "main", "zip_export"]


def export_merged(info: AdapterInfo, output: str | Path, *, overwrite: bool = False, device: str = "auto") -> Path:
    """Write the merged model of ``info`` to ``output`` atomically; returns the folder.

    An existing ``output`` is refused, unless ``overwrite`` and it is an earlier export (has ``exported_from.json``).
    """
    from assistant.core.loading import load_tokenizer

    if info.broken:
        raise UserError(f"Adapter {info.name!r} cannot be exported: {info.broken}.")
    if info.kind not in ("causal-lm-lora", "encoder-head-lora"):
        raise InputError(f"Adapter {info.name!r} is of kind {info.kind!r}; only causal-lm-lora and "
                         "encoder-head-lora adapters can be merged.")
    target = Path(output).expanduser().resolve()
    check_target(target, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("Merging adapter %s into %s -> %s", info.name, info.base_model, target)
    try:
        with torch.no_grad():
            merge = merged_head if info.kind == "encoder-head-lora" else merged_causal_lm
            model = merge(info, device)
    except (OSError, ValueError, RuntimeError, KeyError) as exc:  # a corrupt or mismatched adapter file
        raise UserError(f"Adapter {info.name!r} could not be merged into {info.base_model!r} "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}).") from exc
    def build(temp: Path) -> dict:
        model.save_pretrained(temp)
        load_tokenizer(str(info.path)).save_pretrained(temp)
        return {"dtype": str(next(model.parameters()).dtype).replace("torch.", "")}

    return write_export(info, target, overwrite, build, "the full-precision model")


def zip_export(folder: str | Path) -> Path:
    """Write ``<folder>.zip`` beside an export (files under ``<name>/``, weights stored uncompressed), atomically."""
    folder = Path(folder)
    final = folder.parent / f"{folder.name}.zip"
    try:
        return zip_folder(folder, final, include_hidden=True)
    except OSError as exc:
        raise UserError(f"Could not write {final}: {exc.strerror or exc}.") from exc


def main(argv: list[str] | None = None) -> int:
    from assistant.core.machine_settings import default_data_dir

    from assistant.core.gguf.model_file import QUANT_TYPES
    from finetune.export_gguf import FORMATS, export_gguf

    parser = argparse.ArgumentParser(prog="python -m finetune.export", description=(
        "Merge an adapter into its full-precision base and save it as a plain safetensors model folder or as "
        "one GGUF file (llama.cpp, Ollama), or write the adapter alone as a GGUF LoRA. vLLM and TGI can serve "
        "the adapter folder directly instead."))
    parser.add_argument("adapter", metavar="ADAPTER_NAME", help="adapter name under DATA_DIR/adapters")
    parser.add_argument("--output", required=True, help="folder to create (must not exist, see --overwrite)")
    parser.add_argument("--format", default="safetensors", choices=("safetensors", *FORMATS),
                        help="safetensors (merged folder), gguf (merged, one file + Modelfile) or gguf-lora")
    parser.add_argument("--quant", default="q8_0", choices=QUANT_TYPES, help="weight type of --format gguf")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export at --output")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="where to merge: cpu (fp32) or cuda (bf16)")
    parser.add_argument("--data-dir", help=f"where adapters/ lives (default: {default_data_dir()})")
    args = parser.parse_args(argv)

    def export() -> Path:
        info = AdapterStore(Path(args.data_dir or default_data_dir()) / "adapters").get(args.adapter)
        if args.format == "safetensors":
            return export_merged(info, args.output, overwrite=args.overwrite, device=args.device)
        return export_gguf(info, args.output, fmt=args.format, quant=args.quant, overwrite=args.overwrite)

    return run_command(export)


if __name__ == "__main__":
    sys.exit(main())
