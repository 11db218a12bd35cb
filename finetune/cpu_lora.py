"""A faster LoRA forward for training on a CPU: the frozen base weight dequantized once, its matmul in
the CPU's fastest precision, and the LoRA update fused into one ``addmm``.

PEFT's LoRA layer over a bitsandbytes 4-bit base, per call: bitsandbytes dequantizes the 4-bit weight
(and again in the backward pass), runs the matmul in fp32, PEFT clones the result, scales the LoRA
output and adds it: three extra passes over every activation, and on a CPU the dequantizing and those
passes cost as much as the matmuls. Here, while training:

- the base is frozen, so its dequantized weight never changes: it is computed once per run and kept
  (for a 4-bit base that is the same values bitsandbytes would produce at every call);
- on a CPU with bf16 instructions (AVX512-BF16 or AMX) the base matmul runs in bf16, the compute
  precision of the QLoRA recipe on GPUs (oneDNN's bf16 matmul is several times faster there; on other
  CPUs bf16 is emulated and slow, so they keep fp32). The residual stream, LoRA weights, loss and
  optimizer stay fp32;
- ``base + scaling * B(A(dropout(x)))`` is one ``torch.addmm`` (no clone, no separate scale and add).

The cached weights take 2 bytes (bf16) or 4 bytes (fp32) per base parameter: the fast path is used only
when they fit in a quarter of the memory available, and it is undone when training ends, so evaluation,
saving, export and serving see the unchanged PEFT model. Written here because no library offers it for
CPUs; ``bench/finetune_benchmark.py --only trainer`` measures it against the plain Trainer + PEFT recipe.

    with fast_lora_forward(model, "auto") as mode:   # mode: "bf16", "fp32" or "off: <why>"
        ...train...

    python -m pytest tests/test_cpu_lora.py -q
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from finetune.config import FAST_LORA_MODES as MODES

MEMORY_SHARE = 0.25


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: the instructions that make oneDNN's bf16 matmul fast."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def _fusable(module) -> bool:
    """A PEFT LoRA linear layer with one plain (non-DoRA, unmerged) adapter over a linear base."""
    from peft.tuners.lora import LoraLayer

    if not isinstance(module, LoraLayer) or not hasattr(module, "base_layer") or module.merged:
        return False
    active = module.active_adapters
    return (len(active) == 1 and active[0] in module.lora_A and not getattr(module, "lora_variant", {})
            and not module.disable_adapters and hasattr(module.base_layer, "weight"))


def dequantized_weight(base) -> torch.Tensor:
    """The base layer's weight as a plain float tensor (4-bit bitsandbytes weights dequantized)."""
    weight = base.weight
    quant_state = getattr(weight, "quant_state", None)
    if quant_state is not None:
        import bitsandbytes.functional as bnbf

        return bnbf.dequantize_4bit(weight.data, quant_state)
    return weight.detach()


def _base_numel(layers) -> int:
    return sum(layer.in_features * layer.out_features for layer in layers)


def choose_mode(model, wanted: str = "auto") -> str:
    """"bf16", "fp32" or "off: <why>" for this model on this machine."""
    import psutil

    if wanted not in MODES:
        raise ValueError(f"fast LoRA mode must be one of {', '.join(MODES)}; got {wanted!r}")
    if wanted == "off":
        return "off: turned off"
    if next(model.parameters()).device.type != "cpu":
        return "off: not on a CPU (GPU kernels fuse the 4-bit matmul already)"
    layers = [m for m in model.modules() if _fusable(m)]
    if not layers:
        return "off: no LoRA linear layers"
    mode = wanted if wanted != "auto" else ("bf16" if cpu_has_bf16() else "fp32")
    needed = _base_numel(layers) * (2 if mode == "bf16" else 4)
    available = psutil.virtual_memory().available
    if needed > MEMORY_SHARE * available:
        return (f"off: the dequantized base would take {needed / 2**30:.1f} GiB, more than a quarter of the "
                f"{available / 2**30:.1f} GiB available")
    return mode


def _fused_forward(layer, weight: torch.Tensor, bias: torch.Tensor | None):
    adapter = layer.active_adapters[0]
    lora_a, lora_b = layer.lora_A[adapter], layer.lora_B[adapter]
    dropout, scaling = layer.lora_dropout[adapter], layer.scaling[adapter]
    out_features = weight.shape[0]

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        base = F.linear(x.to(weight.dtype), weight, bias).to(x.dtype)
        low_rank = lora_a(dropout(x))
        flat = torch.addmm(base.reshape(-1, out_features), low_rank.reshape(-1, low_rank.shape[-1]),
                           lora_b.weight.t(), alpha=scaling)
        return flat.view(*x.shape[:-1], out_features)

    return forward


@contextmanager
def fast_lora_forward(model, wanted: str = "auto"):
    """Swap every fusable LoRA layer's forward for the fused one while the block runs; yields the mode."""
    mode = choose_mode(model, wanted)
    if mode.startswith("off"):
        yield mode
        return
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    swapped = []
    try:
        for layer in [m for m in model.modules() if _fusable(m)]:
            base = layer.base_layer
            weight = dequantized_weight(base).to(dtype).contiguous()
            bias = None if base.bias is None else base.bias.detach().to(dtype)
            layer.forward = _fused_forward(layer, weight, bias)  # an instance attribute: ``del`` restores
            swapped.append(layer)
        yield mode
    finally:
        for layer in swapped:
            del layer.forward
