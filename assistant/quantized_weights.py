"""Weight-only quantized matrices for PyTorch's CPU kernels, and where their float weights come from.

- ``Int8Linear``: int8 rows with one bf16 scale each (``aten._weight_int8pack_mm``).
- ``Int4Linear``: 4-bit groups of 32 with a bf16 scale and zero (``aten._weight_int4pack_mm_for_cpu``).
  Both kernels want bf16 activations; with fp32 ones they are 15-30x slower.
- ``dequantized_weight``: the fp32 weight of a served layer: bitsandbytes NF4 (either memory
  layout), LLM.int8, or plain float, under a PEFT LoRA wrapper or not.
- ``Checkpoint``: the float weights of a safetensors checkpoint folder, one tensor at a time.

Used by ``assistant.fast_decode``; ``python -m pytest tests/test_fast_decode.py -q`` tests both.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

GEMV_MAX_ROWS = 16
"""Above this many tokens at once, dequantize to bf16 and use a GEMM: the int GEMV kernels scale with rows."""
INT4_GROUP = 32
INT4_KERNEL_MAX_ROWS = 160
"""Up to this many tokens the int4 kernel beats unpacking every matrix (~0.45 s for SmolLM2's)
and a bf16 GEMM: 40 prompt tokens took 0.17 s through the kernel, 0.54 s unpacked; 320 took
0.78 s and 0.71 s."""


def dequantized_weight(linear) -> torch.Tensor:
    """The fp32 [out, in] weight of a Linear, a bitsandbytes Linear4bit (either layout) or Linear8bitLt."""
    while hasattr(linear, "base_layer"):  # under a PEFT LoRA wrapper
        linear = linear.base_layer
    weight = linear.weight
    state = getattr(weight, "quant_state", None)
    if state is not None:
        if getattr(state, "packing_format_for_cpu", False):
            return _dequantize_cpu_packed(weight.data, state)
        from bitsandbytes.functional import dequantize_4bit

        return dequantize_4bit(weight.data, state).float()
    if getattr(weight, "SCB", None) is not None:  # LLM.int8: int8 rows times absmax / 127
        return weight.data.float() * (weight.SCB.float()[:, None] / 127)
    return weight.detach().float()


def _dequantize_cpu_packed(packed: torch.Tensor, state) -> torch.Tensor:
    """NF4 weights that bitsandbytes repacked for its AVX512-BF16 kernel on their first eval forward.

    Undoes the layout as ``_convert_weight_packed_for_cpu_inverse`` does, but without touching
    the layer (that function also re-quantizes absmax in place, lossily).
    """
    n, k = state.shape
    rows = packed.reshape(-1, 32)
    codes = torch.cat([rows & 0xF, rows >> 4], dim=-1).reshape(n // 32, k // 2, 32, 2)
    codes = codes.transpose(1, 2).reshape(n, k).long()
    absmax = state.absmax.float().T.repeat_interleave(state.blocksize, dim=1)  # [k/blocksize, n] -> [n, k]
    return state.code.float()[codes] * absmax


class Int8Linear:
    """``x @ W.T`` for bf16 ``x``, with W stored as int8 rows and one bf16 scale per row."""

    def __init__(self, weight: torch.Tensor):
        self.scales = (weight.abs().amax(1) / 127).clamp_min(1e-12).bfloat16()
        self.weight = (weight / self.scales.float()[:, None]).round().clamp(-127, 127).to(torch.int8)
        self.shape = tuple(weight.shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= GEMV_MAX_ROWS:
            return torch.ops.aten._weight_int8pack_mm(x, self.weight, self.scales)
        return F.linear(x, self.weight.bfloat16()) * self.scales  # int8 -> bf16 is exact

    def dequantized(self) -> torch.Tensor:
        """The fp32 weight this layer multiplies by (for reference models in tests)."""
        return self.weight.float() * self.scales.float()[:, None]

    @property
    def nbytes(self) -> int:
        return self.weight.nbytes + self.scales.nbytes


class Int4Linear:
    """``x @ W.T`` for bf16 ``x``, with W in 4 bits: groups of 32 inputs share a bf16 scale and zero.

    Needs ``out % 64 == 0`` and ``in % 32 == 0`` (``supports``). Up to ``INT4_KERNEL_MAX_ROWS``
    tokens at a time go through the int4 kernel; a longer prompt unpacks W to bf16 and uses a
    GEMM (the kernel's cost grows with the rows; 500 prompt tokens took 2.2x longer through it).
    """

    BLOCK_ROWS = 64
    """The CPU packing interleaves blocks of 64 output rows: for each input column, 32 bytes hold
    rows j (low nibble) and j + 32 (high nibble) of the block."""

    @classmethod
    def supports(cls, shape: tuple[int, int]) -> bool:
        return shape[0] % cls.BLOCK_ROWS == 0 and shape[1] % INT4_GROUP == 0

    def __init__(self, weight: torch.Tensor):
        n, k = weight.shape
        if not self.supports((n, k)):
            raise ValueError(f"int4 packing needs rows % {self.BLOCK_ROWS} and columns % {INT4_GROUP}; got {n}x{k}.")
        groups = weight.reshape(n, k // INT4_GROUP, INT4_GROUP)
        low, high = groups.amin(-1), groups.amax(-1)
        scale = ((high - low) / 15).clamp_min(1e-12).bfloat16()
        zero = (low + 8 * scale.float()).bfloat16()  # the kernel computes (q - 8) * scale + zero
        q = (groups - (zero.float() - 8 * scale.float())[..., None]) / scale.float()[..., None]
        q = q.round().clamp(0, 15).to(torch.int32).reshape(n, k)
        self.weight = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 2)
        self.scales_zeros = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()  # [k/32, n, 2]
        self.shape = (n, k)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= INT4_KERNEL_MAX_ROWS:
            return torch.ops.aten._weight_int4pack_mm_for_cpu(x, self.weight, INT4_GROUP, self.scales_zeros)
        return F.linear(x, self.unpacked())

    def unpacked(self) -> torch.Tensor:
        """The bf16 [out, in] weight the kernel multiplies by, unpacked with tensor ops."""
        n, k = self.shape
        blocks = self.weight.view(n // self.BLOCK_ROWS, k, self.BLOCK_ROWS // 2)
        q = torch.cat([blocks & 0xF, blocks >> 4], dim=-1).transpose(1, 2).reshape(n, k // INT4_GROUP, INT4_GROUP)
        scale, zero = self.scales_zeros.float().transpose(0, 1).unsqueeze(2).unbind(-1)  # [n, k/32, 1] each
        return ((q.float() - 8) * scale + zero).reshape(n, k).bfloat16()

    def dequantized(self) -> torch.Tensor:
        """The weight this layer multiplies by, read back through the kernel (an identity input)."""
        return torch.ops.aten._weight_int4pack_mm_for_cpu(torch.eye(self.shape[1], dtype=torch.bfloat16), self.weight,
                                                          INT4_GROUP, self.scales_zeros).float().T.contiguous()

    @property
    def nbytes(self) -> int:
        return self.weight.nbytes + self.scales_zeros.nbytes


class Checkpoint:
    """The float weights of a safetensors checkpoint folder, read one tensor at a time."""

    FLOAT_DTYPES = ("F32", "BF16", "F16")

    def __init__(self, files: dict[str, Path]):
        from safetensors import safe_open

        self.files = files
        self._open = {path: safe_open(path, "pt") for path in set(files.values())}

    @classmethod
    def find(cls, folder: str | Path | None) -> Checkpoint | None:
        """The folder's checkpoint when it has float weights (not, say, pre-quantized ones), else None."""
        folder = Path(folder) if folder else None
        index = folder / "model.safetensors.index.json" if folder else None
        if index is not None and index.is_file():
            files = {name: folder / file for name, file in json.loads(index.read_text())["weight_map"].items()}
        elif folder is not None and (folder / "model.safetensors").is_file():
            from safetensors import safe_open

            with safe_open(folder / "model.safetensors", "pt") as single:
                files = dict.fromkeys(single.keys(), folder / "model.safetensors")
        else:
            return None
        checkpoint = cls(files)
        probe = "model.layers.0.self_attn.q_proj.weight"
        return checkpoint if probe in files and checkpoint.dtype(probe) in cls.FLOAT_DTYPES else None

    def __contains__(self, name: str) -> bool:
        return name in self.files

    def dtype(self, name: str) -> str:
        return self._open[self.files[name]].get_slice(name).get_dtype()

    def weight(self, name: str) -> torch.Tensor:
        return self._open[self.files[name]].get_tensor(name).float()
