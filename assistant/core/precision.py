"""The precision a served model's weights are in, as a typed value; ``str()`` gives the label the UI shows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    weights: str
    """``nf4``, ``int8``, ``bf16``, ``fp32``, or a GGUF file's weight type such as ``Q4_K_M``."""
    double_quant: bool = False
    """bitsandbytes nf4 with its quantization constants quantized again."""
    gguf: bool = False
    """Weights read from a GGUF file by llama.cpp."""
    prepared: bool = False
    """llama.cpp serves a copy requantized once for this CPU (``assistant.core.gguf.prepared``)."""

    def __str__(self) -> str:
        return (self.weights + (" (double quant)" if self.double_quant else "") + (" GGUF" if self.gguf else "")
                + (" (prepared copy)" if self.prepared else ""))
