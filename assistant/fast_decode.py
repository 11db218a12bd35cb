"""Fast CPU decoding for Llama-family causal LMs: a small inference-only copy of the weights.

The bitsandbytes NF4 model stays loaded for adapters and fine-tuning; next to it this keeps
its matrices weight-only quantized for PyTorch's CPU kernels (``assistant.quantized_weights``)
and runs a lean decoder on them, several times faster per token than ``generate`` on NF4.

- weights, by default: int8 per output row of the served model's dequantized weights. From
  NF4 that adds little error (top-1 agreement with the NF4 model 0.94-0.99) and keeps what the
  NF4 model answers. Not int4 there: rounding NF4's uneven levels onto an even grid loses far
  more (agreement 0.65).
- or, given the checkpoint folder: int4 in groups of 32 of its float weights. A decode step
  streams every matrix from memory; int4 halves that and is ~1.6x faster. For a GGUF Q4_1
  model (the embedded SmolLM2) the folder holds the Q4_1 values, which int4 groups reproduce,
  so this copy answers like the checkpoint and llama.cpp (top-1 agreement 0.97-1.0, where
  NF4 has 0.70-0.90).
- fused QKV and gate/up matrices; an int8 lm_head; the embedding table is shared, not copied.
- the residual stream stays fp32, as in transformers (bf16 there doubles the logit error).
- RoPE tables come from the model's own rotary module, so rope_parameters are respected.
- a static bf16 KV cache sized to prompt + max_new_tokens; the prompt is prefilled in one pass.

    python -m assistant.fast_decode "What is the capital of France?"   # build, time, one reply
    python -m assistant.fast_decode --checkpoint "What is LoRA?"        # the int4 copy instead
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from assistant.quantized_weights import Checkpoint, Int4Linear, Int8Linear, dequantized_weight

FAST_DECODE_CHOICES = ("auto", "checkpoint", "served", "off")
"""Which copy a chat engine decodes on (``assistant.chat`` explains each); also ``--fast-decode``."""
HF_DEFAULT_TOP_K = 50
"""transformers' generate samples with top_k=50 unless told otherwise; so does this."""
PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def unsupported_reason(model) -> str | None:
    """Why the fast decoder cannot serve ``model``, or None when it can."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) != "llama":
        return f"model type {getattr(config, 'model_type', '?')!r} is not Llama"
    if next(model.parameters()).device.type != "cpu":
        return "the model is not on the CPU"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "the model has linear biases"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not silu"
    rope_type = (getattr(config, "rope_parameters", None) or {}).get("rope_type", "default")
    if rope_type in ("dynamic", "longrope"):
        return f"RoPE type {rope_type!r} depends on the sequence length"
    return None


@dataclass
class _Layer:
    attn_norm: torch.Tensor  # RMSNorm weights padded with zeros to 2 x hidden (see FastDecoder._norm)
    qkv: Int4Linear | Int8Linear
    o: Int4Linear | Int8Linear
    mlp_norm: torch.Tensor
    gate_up: Int4Linear | Int8Linear
    down: Int4Linear | Int8Linear


@dataclass
class KVCache:
    """Per layer, keys and values [kv_heads, length, head_dim] in bf16, filled as tokens arrive."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]


def _padded_norm_weight(norm) -> torch.Tensor:
    return torch.cat([norm.weight.detach().float(), torch.zeros_like(norm.weight, dtype=torch.float32)])


class FastDecoder:
    """Greedy or sampled decoding of one sequence at a time, with a static KV cache.

    ``checkpoint``: the folder the model was loaded from. When it holds float safetensors the
    copy is int4 of those; without it (or them), int8 of the model's own dequantized weights.
    """

    def __init__(self, model, checkpoint: str | Path | None = None):
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"The fast decoder cannot serve this model: {reason}.")
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        config = base.config
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.hidden = config.hidden_size
        self.eps = float(config.rms_norm_eps)
        self.max_positions = int(config.max_position_embeddings)
        files = Checkpoint.find(checkpoint)
        layer_count = len(base.model.layers)
        if files is not None and any(f"model.layers.{i}.{name}.weight" not in files
                                     for i in range(layer_count) for name in PROJECTIONS):
            files = None  # not the layout this model was loaded from
        self.weight_format = "int4" if files is not None else "int8"

        def weight(name: str) -> torch.Tensor:  # fp32 [out, in]
            return files.weight(f"{name}.weight") if files is not None else dequantized_weight(base.get_submodule(name))

        def quantized(*names: str) -> Int4Linear | Int8Linear:
            matrix = torch.cat([weight(name) for name in names])
            return Int4Linear(matrix) if files is not None and Int4Linear.supports(matrix.shape) else Int8Linear(matrix)

        with torch.inference_mode():
            self.layers = []
            for i, block in enumerate(base.model.layers):
                q, k, v, o, gate, up, down = (f"model.layers.{i}.{name}" for name in PROJECTIONS)
                self.layers.append(_Layer(_padded_norm_weight(block.input_layernorm), quantized(q, k, v),
                                          quantized(o), _padded_norm_weight(block.post_attention_layernorm),
                                          quantized(gate, up), quantized(down)))
            self.embedding = base.model.embed_tokens.weight  # shared with the HF model: no copy
            self.final_norm = _padded_norm_weight(base.model.norm)
            tied = files is not None and "lm_head.weight" not in files
            self.lm_head = Int8Linear(weight("model.embed_tokens" if tied else "lm_head"))
            positions = torch.arange(self.max_positions)[None]
            cos, sin = base.model.rotary_emb(torch.zeros(1), positions)  # [1, positions, head_dim] fp32
            half = self.head_dim // 2
            sin = torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)  # rotate_half(x) = roll(x) * sign
            self.cos, self.sin = cos[0, :, None].bfloat16(), sin[0, :, None].bfloat16()  # [positions, 1, hd]
        self.intermediate = self.layers[0].down.shape[1]

    @property
    def nbytes(self) -> int:
        """Memory this decoder adds to the loaded model (the embedding table is shared)."""
        linears = [p for layer in self.layers for p in (layer.qkv, layer.o, layer.gate_up, layer.down)]
        return sum(p.nbytes for p in linears + [self.lm_head]) + self.cos.nbytes + self.sin.nbytes

    def new_cache(self, length: int) -> KVCache:
        if length > self.max_positions:
            raise ValueError(f"{length} positions exceed the model's {self.max_positions}.")
        shape = (len(self.layers), self.kv_heads, length, self.head_dim)
        keys, values = torch.empty(shape, dtype=torch.bfloat16), torch.empty(shape, dtype=torch.bfloat16)
        return KVCache(list(keys), list(values))

    def _norm(self, x: torch.Tensor, padded_weight: torch.Tensor) -> torch.Tensor:
        """RMSNorm of the fp32 residual, in bf16 for the next matmul. LayerNorm over [x, -x] has mean 0
        and variance mean(x^2), so it is RMSNorm; one fused kernel instead of F.rms_norm's dozen on a CPU."""
        both = torch.cat([x, -x], dim=-1)
        return F.layer_norm(both, both.shape[-1:], padded_weight, None, self.eps)[:, :self.hidden].bfloat16()

    def forward(self, ids: torch.Tensor, start: int, cache: KVCache, all_logits: bool = False) -> torch.Tensor:
        """fp32 logits of the last position (or of every one) for ``ids`` placed at ``start``.

        Several tokens at once must start at position 0 (a prompt); later calls add one token.
        """
        count, hd, heads, kv = ids.shape[0], self.head_dim, self.heads, self.kv_heads
        end, causal = start + count, count > 1
        if causal and start:
            raise ValueError("A multi-token forward must start at position 0.")
        x = F.embedding(ids, self.embedding)  # fp32 residual stream
        cos, sin = self.cos[start:end], self.sin[start:end]
        for i, layer in enumerate(self.layers):
            qkv = layer.qkv(self._norm(x, layer.attn_norm))
            qk = qkv[:, :(heads + kv) * hd].view(count, heads + kv, hd)
            qk = torch.addcmul(qk * cos, qk.roll(hd // 2, -1), sin)  # RoPE on queries and keys at once
            keys, values = cache.keys[i], cache.values[i]
            keys[:, start:end] = qk[:, heads:].transpose(0, 1)
            values[:, start:end] = qkv[:, (heads + kv) * hd:].view(count, kv, hd).transpose(0, 1)
            attn = F.scaled_dot_product_attention(qk[:, :heads].transpose(0, 1)[None], keys[None, :, :end],
                                                  values[None, :, :end], is_causal=causal, enable_gqa=True)
            x = x + layer.o(attn[0].transpose(0, 1).reshape(count, heads * hd))
            gate, up = layer.gate_up(self._norm(x, layer.mlp_norm)).split(self.intermediate, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        return self.lm_head(self._norm(x if all_logits else x[-1:], self.final_norm)).float()

    def generate(self, prompt: list[int], max_new_tokens: int, eos_ids: Iterable[int] = (),
                 temperature: float = 0.0, top_p: float = 1.0, repetition_penalty: float = 1.0,
                 top_k: int = HF_DEFAULT_TOP_K, stop_event: threading.Event | None = None) -> Iterator[int]:
        """Yield new token ids; ends after an eos id (which is yielded), max_new_tokens, or the stop event.

        Sampling draws from torch's global generator, as transformers' generate does.
        """
        eos = set(eos_ids)
        cache = self.new_cache(len(prompt) + max_new_tokens)
        seen = torch.zeros(self.lm_head.shape[0], dtype=torch.bool)
        seen[torch.tensor(prompt)] = True
        with torch.inference_mode():
            logits = self.forward(torch.tensor(prompt), 0, cache)[0]
            for position in range(len(prompt), len(prompt) + max_new_tokens):
                if stop_event is not None and stop_event.is_set():
                    return
                scores = process_logits(logits, seen, temperature, top_p, repetition_penalty, top_k)
                token = int(scores.argmax() if temperature == 0 else torch.multinomial(scores.softmax(-1), 1))
                yield token
                if token in eos or position == len(prompt) + max_new_tokens - 1:
                    return
                seen[token] = True
                logits = self.forward(torch.tensor([token]), position, cache)[0]


def process_logits(logits: torch.Tensor, seen: torch.Tensor, temperature: float, top_p: float,
                   repetition_penalty: float, top_k: int = HF_DEFAULT_TOP_K) -> torch.Tensor:
    """What transformers' generate does to the scores, in its order: the repetition penalty on every
    token already in the sequence (prompt included); then, when sampling, temperature, top-k, top-p."""
    if repetition_penalty != 1.0:
        penalised = torch.where(logits < 0, logits * repetition_penalty, logits / repetition_penalty)
        logits = torch.where(seen, penalised, logits)
    if temperature == 0:
        return logits
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        logits = logits.masked_fill(logits < logits.topk(top_k).values[-1], float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort()
        drop = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
        drop[-1] = False  # the most likely token always stays
        logits = logits.masked_fill(drop.scatter(0, order, drop), float("-inf"))
    return logits


def eos_token_ids(model, tokenizer=None) -> list[int]:
    """The ids that end a reply: generation_config's (an int or a list), else config's, else the tokenizer's."""
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if value is not None:
            return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    return []


if __name__ == "__main__":
    from assistant.loading import load_causal_lm

    args = sys.argv[1:]
    from_checkpoint = "--checkpoint" in args
    loaded = load_causal_lm("smollm2-135m-instruct")
    began = time.perf_counter()
    decoder = FastDecoder(loaded.model, loaded.location if from_checkpoint else None)
    print(f"{decoder.weight_format} copy built in {time.perf_counter() - began:.2f} s, {decoder.nbytes / 2**20:.0f} MiB")
    messages = [{"role": "user", "content": " ".join(a for a in args if a != "--checkpoint") or "Hello!"}]
    prompt = loaded.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
    began, ids = time.perf_counter(), []
    for token in decoder.generate(prompt, 128, eos_token_ids(loaded.model, loaded.tokenizer)):
        ids.append(token)
    seconds = time.perf_counter() - began
    print(loaded.tokenizer.decode(ids, skip_special_tokens=True))
    print(f"{len(ids)} tokens in {seconds:.2f} s ({len(ids) / seconds:.1f} tok/s, prefill included)")
