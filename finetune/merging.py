"""An adapter merged into its full-precision base model, in memory: what every export writes.

    model = merged_causal_lm(store.get("sentiment-v1"), "cpu")      # a PEFT-free AutoModelForCausalLM
    model = merged_head(store.get("ner-v1"), "auto")                # encoder + trained head, merged

The base is loaded in full precision (fp32 on a CPU, bf16 on CUDA), never 4-bit: merging a LoRA update
into 4-bit weights rounds it away. Used by ``finetune.export`` (safetensors) and ``finetune.export_gguf``.
Tests: ``pytest tests/test_export.py tests/test_export_gguf.py -q``.
"""

from __future__ import annotations

from assistant.core.errors import UserError
from finetune.adapters import AdapterInfo


def merged_causal_lm(info: AdapterInfo, device: str):
    """A generative adapter merged into its full-precision base (an ``AutoModelForCausalLM``)."""
    from peft import PeftModel

    from assistant.core.loading import load_causal_lm

    loaded = load_causal_lm(info.base_model, quant="none", device=device)  # fp32 on CPU, bf16 on CUDA
    model = PeftModel.from_pretrained(loaded.model, str(info.path))
    return model.merge_and_unload()


def merged_head(info: AdapterInfo, device: str):
    """A classifier-head adapter merged into its full-precision encoder, with the trained head."""
    from peft import PeftModel

    from assistant.core.head_loading import load_head_model
    from assistant.core.loading import full_precision_dtype, pick_device
    from assistant.core.model_sources import resolve_model

    labels = list(info.labels or [])
    if not labels:
        raise UserError(f"Adapter {info.name!r} has no labels in metadata.json; its head cannot be rebuilt.")
    device = pick_device(device)
    base, loading = load_head_model(resolve_model(info.base_model).location, labels, info.task == "ner",
                                    dtype=full_precision_dtype(device), output_loading_info=True)
    unexpected = [key for key in loading.get("missing_keys", []) if not key.startswith("classifier.")]
    if unexpected:  # they would be random: the export could not reproduce what was trained
        raise UserError(f"The base {info.base_model!r} lacks weights the adapter was trained with "
                        f"({', '.join(sorted(unexpected)[:5])}); it cannot be exported.")
    model = PeftModel.from_pretrained(base.to(device), str(info.path))
    return model.merge_and_unload()
