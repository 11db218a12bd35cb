"""Read a GGUF file's header cheaply: its metadata (architecture, name, license, file type, sizes for the
memory estimate) and whether the file holds all the tensor data the header promises.

Only the header is read (metadata values are skipped unless wanted, tensor data never), so listing a
folder of multi-GB files takes milliseconds. A file that is not GGUF, is cut short (an interrupted copy or
download) or has a malformed header raises ``InputError`` naming the file and what is wrong with it.

    python -m assistant.core.gguf.header model.gguf      # print what the header says
"""

from __future__ import annotations

import functools
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import InputError

WANTED_SUFFIXES = ("general.architecture", "general.name", "general.license", "general.file_type",
                   ".context_length", ".block_count", ".embedding_length", ".attention.head_count",
                   ".attention.head_count_kv", "tokenizer.ggml.tokens")
MAX_COUNT = 1 << 24
"""More tensors or metadata entries than this is a damaged header, not a model."""
MAX_STRING = 1 << 26
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class GgufHeader:
    path: Path
    size_bytes: int
    metadata: dict
    """The wanted scalar and string values (``WANTED_SUFFIXES``), by key; an array's length."""
    tensor_count: int
    data_bytes: int
    """Bytes of tensor data the header describes."""

    def value(self, suffix: str, default=None):
        """The metadata value whose key is or ends with ``suffix`` (``.context_length`` for any architecture)."""
        for key, value in self.metadata.items():
            if key == suffix or (suffix.startswith(".") and key.endswith(suffix)):
                return value
        return default

    @property
    def quantization(self) -> str:
        """llama.cpp's file type (``Q4_K_M``, ``F32`` ...), or "" when the header does not say."""
        import gguf

        file_type = self.metadata.get("general.file_type")
        try:
            return gguf.LlamaFileType(int(file_type)).name.removeprefix("MOSTLY_").removeprefix("ALL_")
        except (TypeError, ValueError):
            return ""

    @property
    def vocab_size(self) -> int:
        return int(self.metadata.get("tokenizer.ggml.tokens") or 0)

    def kv_cache_bytes(self, context: int) -> int:
        """The f16 K and V cache llama.cpp reserves for ``context`` tokens (0 when the header lacks the sizes)."""
        layers, width = self.value(".block_count", 0), self.value(".embedding_length", 0)
        heads = self.value(".attention.head_count", 0)
        kv_heads = self.value(".attention.head_count_kv", heads)
        if not (layers and width and heads):
            return 0
        return int(2 * layers * context * kv_heads * (width // heads) * 2)


class _Reader:
    def __init__(self, handle, path: Path):
        self.handle, self.path = handle, path

    def bad(self, what: str) -> InputError:
        return InputError(f"'{self.path.name}' is not a usable GGUF file: {what}. Copy or download it again.")

    def take(self, count: int) -> bytes:
        raw = self.handle.read(count)
        if len(raw) != count:
            raise self.bad("it ends inside its header (cut short)")
        return raw

    def scalar(self, kind: int):
        fmt = _SCALARS[kind]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self, what: str) -> int:
        value = self.scalar(10)
        if value > MAX_COUNT:
            raise self.bad(f"its header claims {value:,} {what}")
        return value

    def string(self) -> str:
        length = self.scalar(10)
        if length > MAX_STRING:
            raise self.bad(f"its header holds a {length:,}-byte string")
        return self.take(length).decode("utf-8", "replace")

    def value(self, kind: int, keep: bool):
        if kind in _SCALARS:
            return self.scalar(kind)
        if kind == STRING:
            return self.string() if keep else self._skip_string()
        if kind == ARRAY:  # skipped; its length is the value kept (the vocabulary's size for the tokens)
            item, length = self.scalar(4), self.count("array items")
            if item in _SCALARS:  # fixed size: seek past it
                self.handle.seek(struct.calcsize(_SCALARS[item]) * length, 1)
            else:
                for _ in range(length):
                    self.value(item, False)
            return length
        raise self.bad(f"unknown metadata type {kind}")

    def _skip_string(self) -> None:
        length = self.scalar(10)
        if length > MAX_STRING:
            raise self.bad(f"its header holds a {length:,}-byte string")
        self.handle.seek(length, 1)


def read_header(path: str | Path, whole_size: int | None = None) -> GgufHeader:
    """The header of the GGUF file ``path``; ``InputError`` when it is not a complete GGUF file. Remembered
    while the file keeps its size and modification time (a model's vocabulary takes a while to skip).
    ``whole_size``: ``path`` is only the first part of a file of that many bytes (a model shipped in parts,
    read before it is assembled); the header must fit in it and describe exactly that size."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(f"Cannot read '{path}': {exc.strerror or exc}. Check the file's permissions.") from None
    return _read_header(path, whole_size or stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _read_header(path: Path, size: int, _mtime_ns: int) -> GgufHeader:
    import gguf

    try:
        with path.open("rb") as handle:
            reader = _Reader(handle, path)
            if reader.take(4) != b"GGUF":
                raise reader.bad("it does not start with the GGUF magic bytes")
            version = reader.scalar(4)
            if version not in (2, 3):
                raise reader.bad(f"GGUF version {version} is not one llama.cpp reads (2 or 3)")
            tensors, entries = reader.count("tensors"), reader.count("metadata entries")
            metadata, alignment = {}, 32
            for _ in range(entries):
                key, kind = reader.string(), reader.scalar(4)
                keep = key.endswith(WANTED_SUFFIXES) or key == "general.alignment"
                value = reader.value(kind, keep)
                if keep:
                    metadata[key] = value
            alignment = int(metadata.pop("general.alignment", alignment) or 32)
            end = 0
            for _ in range(tensors):
                reader.string()
                dims = reader.scalar(4)
                if dims > 8:
                    raise reader.bad(f"a tensor has {dims} dimensions")
                shape = [reader.scalar(10) for _ in range(dims)]
                kind, offset = reader.scalar(4), reader.scalar(10)
                try:
                    block, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(kind)]
                except (ValueError, KeyError):
                    raise reader.bad(f"a tensor has unknown type {kind}") from None
                elements = 1
                for dim in shape:
                    elements *= dim
                end = max(end, offset + elements // block * block_bytes)
            start = -(-handle.tell() // alignment) * alignment
    except OSError as exc:
        raise InputError(f"Cannot read '{path}': {exc.strerror or exc}. Check the file's permissions.") from None
    except (struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise InputError(f"'{path.name}' is not a usable GGUF file ({exc}). Copy or download it again.") from None
    if start + end > size:
        raise InputError(f"'{path.name}' is not a usable GGUF file: it is cut short ({size:,} of the "
                         f"{start + end:,} bytes its header describes). Copy or download it again.")
    return GgufHeader(path, size, metadata, tensors, end)


if __name__ == "__main__":
    header = read_header(sys.argv[1])
    print(header.quantization, header.size_bytes, header.metadata)
