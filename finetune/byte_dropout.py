"""Dropout for LoRA inputs on a CPU, with its mask drawn as random bytes.

``nn.Dropout`` on a CPU spends most of its time drawing one random float per element: in a
QLoRA step of SmolLM2-135M PEFT's ``lora_dropout`` was a large share of the step (bench/README.md,
"Fine-tune throughput"). Seven random bytes per 64-bit draw are much cheaper; an element is kept when its byte
is at or above ``round(p * 256)``, so ``p`` is rounded to a multiple of 1/256 (0.05 becomes
0.0508).

    python -m pytest tests/test_byte_dropout.py -q
"""

from __future__ import annotations

import math

import torch


def random_bytes(shape: tuple[int, ...], device=None) -> torch.Tensor:
    """Uniform random uint8s, seven from each 64-bit draw (its top byte is never above 127)."""
    count = math.prod(shape)
    draws = torch.empty((count + 6) // 7, dtype=torch.int64, device=device).random_()
    return draws.view(torch.uint8).view(-1, 8)[:, :7].reshape(-1)[:count].view(shape)


class ByteMaskDropout(torch.nn.Module):
    """Inverted dropout (kept elements scaled by 1 / keep rate), active in training mode only."""

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1); got {p}")
        self.threshold = round(p * 256)
        self.p = self.threshold / 256

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        keep = random_bytes(x.shape, x.device) >= self.threshold
        # One float mask, scaled in place: forward and backward are then one multiply each.
        return x * keep.to(x.dtype).mul_(1 / (1 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"


def use_byte_dropout(model) -> int:
    """Swap PEFT's ``lora_dropout`` modules (``nn.Dropout``) for ``ByteMaskDropout``; returns how many."""
    swapped = 0
    for module in model.modules():
        dropouts = getattr(module, "lora_dropout", None)
        if isinstance(dropouts, torch.nn.ModuleDict):
            for name, dropout in list(dropouts.items()):
                if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0:
                    dropouts[name] = ByteMaskDropout(dropout.p)
                    swapped += 1
    return swapped
