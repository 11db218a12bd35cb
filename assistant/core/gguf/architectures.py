"""Which Hugging Face architectures the GGUF writers know, and how their tensors map to llama.cpp's.

llama.cpp's own converter stores a Llama-family model's q_proj and k_proj rows in a different order
(rotary pairs interleaved per head, not split in halves); transformers' GGUF loader undoes it on
load. The writers here apply the same reordering, to whole weights and to LoRA B matrices alike
(B's rows are the projection's output rows), so a file they write reads like one llama.cpp wrote.

    python -m assistant.core.gguf.architectures      # the architectures the writers know
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.core.errors import InputError


@dataclass(frozen=True)
class Architecture:
    gguf_name: str
    """``general.architecture`` in the file (llama.cpp's name)."""
    permute_qk: bool
    """Reorder q/k rows the way llama.cpp's converter does for this family."""


ARCHITECTURES: dict[str, Architecture] = {
    "LlamaForCausalLM": Architecture("llama", permute_qk=True),
    "MistralForCausalLM": Architecture("llama", permute_qk=True),
    "Qwen2ForCausalLM": Architecture("qwen2", permute_qk=False),
}


def architecture_of(config) -> tuple[str, Architecture]:
    """The (HF class name, Architecture) of a model config; InputError naming the known ones."""
    names = list(getattr(config, "architectures", None) or [])
    for name in names:
        if name in ARCHITECTURES:
            return name, ARCHITECTURES[name]
    shown = ", ".join(names) or getattr(config, "model_type", "unknown")
    raise InputError(f"GGUF export does not know the architecture {shown}; it knows {', '.join(ARCHITECTURES)}.")


def tensor_name_map(arch: Architecture, block_count: int):
    import gguf

    return gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.gguf_name.upper()], block_count)


def gguf_tensor_name(name_map, hf_name: str) -> str | None:
    """``model.layers.0.self_attn.q_proj.weight`` -> ``blk.0.attn_q.weight`` (None when unknown)."""
    return name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))


def permute_rows(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k reordering of a projection's output rows: per head, halves -> interleaved pairs."""
    out = rows.shape[0]
    return (rows.reshape(n_head, 2, out // n_head // 2, *rows.shape[1:])
            .swapaxes(1, 2)
            .reshape(rows.shape))


def qk_heads(gguf_name: str, config) -> int | None:
    """How many heads the rows of ``gguf_name`` (a q or k weight/bias) are reordered over, or None."""
    if ".attn_q." in gguf_name:
        return int(config.num_attention_heads)
    if ".attn_k." in gguf_name:
        return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    return None


if __name__ == "__main__":
    for hf_name, arch in ARCHITECTURES.items():
        print(f"{hf_name:22s} -> {arch.gguf_name}")
