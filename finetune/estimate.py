"""Before training: a rough memory and time estimate for this machine.

    from finetune.estimate import estimate_for_config
    estimate = estimate_for_config(config, rows=120, mean_chars=80, language="en")
    print(estimate.summary(), estimate.warning)

The numbers are deliberately simple (params x bytes per weight, a per-token activation rule, and the
embedded models' measured CPU training throughput: ``CPU_TOKENS_PER_SECOND_135M`` for SmolLM2,
``CPU_TOKENS_PER_SECOND_QWEN_05B`` for Qwen2.5-0.5B, other models scaled from SmolLM2's by size), good to
a factor of about two: enough to tell "a minute" from "an hour" and "fits" from "will swap".
Tests: ``pytest tests/test_jobs.py -q -k estimate``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from assistant.core.byte_sizes import human_bytes
from finetune.auto_choice import AUTO, choose_base
from finetune.config import FinetuneConfig

CPU_TOKENS_PER_SECOND_135M = (150.0, 400.0)  # measured range for SmolLM2-135M QLoRA training on a laptop CPU
CPU_TOKENS_PER_SECOND_QWEN_05B = (95.0, 260.0)
"""Qwen2.5-Coder-0.5B QLoRA (nf4, LoRA r16 all-linear, the bf16 fast path), measured 2026-12-05 on the 2-core
Intel Xeon (AMX) VM with other jobs running: the project loop on the same 300 ChnSentiCorp rows, batch 8, steps
2-8 (after the one-off dequantizing), trained 41.5 tokens per CPU-second of the process where SmolLM2-135M
trained 63.7 (0.65x; 15.4 vs 36.9 tokens per wall second at load 6-9). SmolLM2's range times 0.65; the real
Chinese sentiment run is in bench/README.md ("Fine-tuning the default chat model on Chinese data")."""
GPU_SPEEDUP = 20.0
REFERENCE_PARAMS = 135_000_000
RUNTIME_OVERHEAD_BYTES = 300 * 2**20  # allocator slack, tokenizer, optimizer bookkeeping
CHARS_PER_TOKEN = 3.5
CHINESE_CHARS_PER_TOKEN = {"qwen2.5-coder-0.5b-instruct": 1.5, "smollm2-135m-instruct": 0.6}
"""Measured on 300 ChnSentiCorp reviews (English: 4.7-4.8 for both); other models: ``CHINESE_DEFAULT``."""
CHINESE_DEFAULT = 1.0
PROMPT_TOKENS = {"generative": 40, "head": 2}  # chat template + instructions around each example


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about a base model."""

    params: int
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    heads: int
    kv_dim: int  # width of the key/value projections (smaller than hidden with grouped-query attention)
    causal: bool
    cpu_tokens_per_second: tuple[float, float] | None = None
    """Measured QLoRA training throughput on a CPU (slow, fast); None: SmolLM2's scaled by parameter count."""

    @property
    def linear_params(self) -> int:
        """Weights in the transformer blocks' Linear layers: the ones 4-bit quantization shrinks."""
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_dim
        mlp = (3 if self.causal else 2) * self.hidden * self.intermediate
        return self.layers * (attention + mlp)


EMBEDDED_SHAPES = {  # from the embedded models' config.json (so no GGUF conversion is needed to estimate)
    "smollm2-135m-instruct": ModelShape(134_515_008, 30, 576, 1536, 49152, 9, 192, True, CPU_TOKENS_PER_SECOND_135M),
    "qwen2.5-coder-0.5b-instruct": ModelShape(630_167_424, 24, 896, 4864, 151936, 14, 128, True,
                                              CPU_TOKENS_PER_SECOND_QWEN_05B),  # untied lm_head, as converted
    "minilm-l6-v2": ModelShape(22_713_728, 6, 384, 1536, 30522, 12, 384, False),
}


@lru_cache(maxsize=32)
def model_shape(base: str) -> ModelShape | None:
    """The shape of an embedded model or a local folder with config.json; None when unknown (a hub id)."""
    if base in EMBEDDED_SHAPES:
        return EMBEDDED_SHAPES[base]
    config_path = Path(base).expanduser() / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        hidden, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
        intermediate, vocab = int(config.get("intermediate_size") or 4 * hidden), int(config["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    heads = int(config.get("num_attention_heads") or max(1, hidden // 64))
    kv_dim = int(config.get("num_key_value_heads") or heads) * (hidden // heads)
    architectures = " ".join(config.get("architectures") or [])
    causal = "CausalLM" in architectures or "LMHead" in architectures
    untied = causal and not config.get("tie_word_embeddings", True)
    shape = ModelShape(0, layers, hidden, intermediate, vocab, heads, kv_dim, causal)
    params = shape.linear_params + vocab * hidden * (2 if untied else 1) + layers * 2 * hidden
    return ModelShape(params, layers, hidden, intermediate, vocab, heads, kv_dim, causal)


def lora_params(shape: ModelShape, rank: int, target_modules: str) -> int:
    """Trainable LoRA weights: rank x (in + out) for every targeted Linear."""
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_dim
    modules = {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h), "up": (h, i), "down": (i, h)}
    if shape.causal:
        modules["gate"] = (h, i)
    targets = target_modules.strip()
    if targets != "all-linear":
        names = [t.strip().lower() for t in targets.split(",") if t.strip()]
        aliases = {"q": ("q_proj", "query"), "k": ("k_proj", "key"), "v": ("v_proj", "value"),
                   "o": ("o_proj", "out_proj", "dense"), "gate": ("gate_proj",), "up": ("up_proj", "intermediate"),
                   "down": ("down_proj", "output")}
        modules = {k: v for k, v in modules.items() if any(a in names for a in aliases[k])}
    return shape.layers * rank * sum(a + b for a, b in modules.values())


@dataclass(frozen=True)
class Estimate:
    weights_bytes: int
    trainable_params: int
    trainable_bytes: int
    activation_bytes: int
    memory_bytes: int
    train_tokens: int
    steps: int
    seconds_low: float
    seconds_high: float
    eval_seconds: float
    device: str
    available_bytes: int | None = None
    early_stopping: bool = False  # steps and time are then upper bounds: the run may stop sooner

    @property
    def bound(self) -> str:
        return "at most " if self.early_stopping else ""

    @property
    def fits(self) -> bool | None:
        return None if self.available_bytes is None else self.memory_bytes <= 0.9 * self.available_bytes

    @property
    def warning(self) -> str:
        if self.fits is not False:
            return ""
        where = "GPU memory" if self.device == "cuda" else "RAM"
        return (f"This run needs about {human_bytes(self.memory_bytes)} but only {human_bytes(self.available_bytes)} "
                f"of {where} is free: lower the batch size or max sequence length, or close other programs.")

    def summary(self) -> str:
        low, high = self.seconds_low + self.eval_seconds, self.seconds_high + self.eval_seconds
        free = f" of {human_bytes(self.available_bytes)} free" if self.available_bytes is not None else ""
        return (f"≈ {human_bytes(self.memory_bytes)}{free} ({human_bytes(self.weights_bytes)} weights, "
                f"{human_bytes(self.activation_bytes)} activations, {self.trainable_params / 1e6:.2f} M trainable) · "
                f"{self.bound}{self.steps} steps, ~{self.train_tokens:,} tokens · "
                f"{self.bound}≈ {duration(low)}–{duration(high)} on {self.device.upper()} (rough)")


def estimate_run(shape: ModelShape, *, quant: str, approach: str, lora_r: int, target_modules: str,
                 batch_size: int, grad_accum: int, seq_tokens: int, steps: int, eval_rows: int, task: str,
                 device: str = "cpu", available_bytes: int | None = None) -> Estimate:
    """Memory and time of one run; ``seq_tokens`` is the typical padded length of a training example."""
    full_bytes = 4 if device == "cpu" else 2  # CPUs compute in fp32, GPUs in bf16
    other_params = max(0, shape.params - shape.linear_params)
    if quant == "nf4":
        weights = int(shape.linear_params * 0.5625 + other_params * full_bytes)  # 4 bits + fp32 absmax per 64
    else:
        weights = shape.params * full_bytes
    trainable = lora_params(shape, lora_r, target_modules)
    trainable_bytes = trainable * 16  # fp32 weight + gradient + two AdamW moments
    tokens_in_batch = batch_size * seq_tokens
    per_layer = tokens_in_batch * (34 * shape.hidden + 5 * shape.heads * seq_tokens) * full_bytes // 2
    logits = tokens_in_batch * shape.vocab * 4 * 3 if approach == "generative" else 0  # fp32 logits, softmax, grad
    activations = shape.layers * per_layer + logits
    memory = weights + trainable_bytes + activations + RUNTIME_OVERHEAD_BYTES
    train_tokens = steps * grad_accum * tokens_in_batch
    cpu_rates = shape.cpu_tokens_per_second or tuple(
        rate * REFERENCE_PARAMS / max(shape.params, 1) for rate in CPU_TOKENS_PER_SECOND_135M)
    slow, fast = (rate * (GPU_SPEEDUP if device == "cuda" else 1.0) for rate in cpu_rates)
    per_row = 0.02 if approach == "head" else (
        0.3 if task == "classification" else 0.05 if task in ("instruction", "unsupervised") else 2.0)
    eval_seconds = 2 * eval_rows * per_row * max(shape.params, 1) / REFERENCE_PARAMS
    eval_seconds /= GPU_SPEEDUP / 2 if device == "cuda" else 1.0
    return Estimate(weights, trainable, trainable_bytes, activations, memory, train_tokens, steps,
                    train_tokens / fast, train_tokens / slow, eval_seconds, device, available_bytes)


def training_steps(config: FinetuneConfig, rows: int) -> int:
    """Optimizer steps the recipe will run for ``rows`` usable rows (same rule as ``finetune.loop.steps_for``)."""
    if config.max_steps > 0:
        return config.max_steps
    train_rows = max(1, rows - max(1, round(rows * config.validation_split)))
    return max(1, math.ceil(math.ceil(train_rows / config.batch_size / config.grad_accum) * config.epochs))


def estimate_for_config(config: FinetuneConfig, rows: int, mean_chars: float,
                        device: str | None = None, language: str = "en") -> Estimate | None:
    """The estimate for a run of ``config`` on ``rows`` rows of ``mean_chars`` characters in ``language``
    (which ``--base auto`` looks at); None for an unknown base (a hub id that is not on disk)."""
    if device is None:
        from assistant.core.loading import pick_device

        device = pick_device()
    if config.base == AUTO:
        choice = choose_base(config.task, language, device, rows, config.approach)
        config = dataclasses.replace(config, base=choice.base, approach=choice.approach)
    shape = model_shape(config.base)
    if shape is None:
        return None
    approach = config.resolved_approach
    per_token = CHINESE_CHARS_PER_TOKEN.get(config.base, CHINESE_DEFAULT) if language == "zh" else CHARS_PER_TOKEN
    seq = min(config.max_seq_len, int(mean_chars / per_token) + PROMPT_TOKENS.get(approach, 40))
    eval_rows = min(config.eval_limit, max(1, round(rows * config.validation_split)))
    plan = estimate_run(shape, quant=config.quant, approach=approach, lora_r=config.lora_r,
                        target_modules=config.target_modules, batch_size=config.batch_size,
                        grad_accum=config.grad_accum, seq_tokens=max(seq, 8), steps=training_steps(config, rows),
                        eval_rows=eval_rows, task=config.task, device=device, available_bytes=free_memory(device))
    return dataclasses.replace(plan, early_stopping=config.early_stopping_patience > 0)


def free_memory(device: str) -> int | None:
    """Free bytes of GPU memory (cuda) or RAM (cpu); None when it cannot be read."""
    try:
        if device == "cuda":
            import torch

            return int(torch.cuda.mem_get_info()[0])
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - an estimate without a free-memory figure is still useful
        return None


def duration(seconds: float) -> str:
    """00:41, 12:05 or 1:02:03."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"
