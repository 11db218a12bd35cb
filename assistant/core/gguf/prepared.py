"""The served copy of a GGUF file in the format llama.cpp runs fastest on this CPU, made once.

llama.cpp's speed on a CPU depends on the quantization type more than on the bits: Q4_0 is repacked at load
into interleaved blocks that its AVX2 / AVX-512 / NEON matrix kernels read in one sweep ("REPACK" in
``llama_print_system_info``), while the k-quant mixes and Q4_1 that models usually ship in are only partly
repacked or not at all. So where the shipped file is one of ``PREPARE_FROM`` and llama.cpp repacks here, the
file is requantized once with llama.cpp's own ``llama_model_quantize`` to Q4_0 (output and embedding tensors
keep llama.cpp's default higher-precision types) into the cache, written atomically, and served instead.
The shipped file stays the source of truth: the tokenizer, the adapters' base, conversion for training and
export all read it; the prepared copy is only what llama.cpp decodes with, and can be deleted at any time.
Speed and quality (perplexity and greedy agreement with the shipped file): ``bench/prepared_format.py``,
figures in bench/README.md.

The work runs in a child process, once per file and machine (as the llama.cpp probe does): it reads the
file type with llama.cpp, quantizes, and test-runs the copy, so neither llama.cpp's log lines nor a kernel
this CPU cannot run reach the app. The outcome (the copy, or "serve as shipped") is remembered in the cache.

    served = prepared_gguf(shipped, cache_dir, "auto")   # shipped, or its Q4_0 copy where that pays
    python -m assistant.core.gguf.prepared model.gguf CACHE_DIR   # the child: prepare, print "served: PATH"
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from assistant.core.atomic_files import atomic_write, atomic_write_text

PREPARED_TYPE = "Q4_0"
PREPARE_FROM = {"Q4_K_M", "Q4_K_S"}
"""Shipped types whose Q4_0 copy was measured faster at held quality (bench/prepared_format.py). Not Q4_1:
SmolLM2's Q4_0 copy ran faster but lost too much (perplexity +19-32%, top-1 agreement 72%)."""
MODES = ("auto", "shipped")
"""``auto``: the prepared copy where it pays; ``shipped``: always the file as it is."""
PREPARE_TIMEOUT_S = 600
ANSWER = "served: "
"""The child's answer line (llama.cpp writes its own log lines to the same streams)."""


def llama_cpp_repacks() -> bool:
    """Whether this llama.cpp build repacks Q4_0 for the CPU's matrix kernels."""
    import llama_cpp

    return "REPACK = 1" in llama_cpp.llama_print_system_info().decode(errors="replace")


def _key(shipped: Path) -> str:
    """Names the shipped file by its size and first MiB, so a changed file gets a new copy."""
    with shipped.open("rb") as head:
        return hashlib.sha1(head.read(1 << 20) + str(shipped.stat().st_size).encode()).hexdigest()[:12]


def prepared_path(shipped: Path, cache_dir: Path) -> Path:
    return Path(cache_dir) / "prepared" / f"{shipped.stem}-{_key(shipped)}-{PREPARED_TYPE}.gguf"


def _as_shipped_marker(shipped: Path, cache_dir: Path) -> Path:
    return Path(cache_dir) / "prepared" / f"{shipped.stem}-{_key(shipped)}.as-shipped"


def prepared_gguf(shipped: Path, cache_dir: Path, mode: str = "auto") -> Path:
    """The file llama.cpp should load for ``shipped``: its prepared Q4_0 copy where that pays, else itself.

    A copy that cannot be made (read-only cache, full disk, a crash of the child) costs only the speed-up:
    the shipped file is served and the reason goes to stderr.
    """
    shipped = Path(shipped)
    if mode == "shipped":
        return shipped
    target, marker = prepared_path(shipped, cache_dir), _as_shipped_marker(shipped, cache_dir)
    if target.is_file():
        return target
    if marker.is_file():
        return shipped
    try:
        result = subprocess.run([sys.executable, "-m", __name__, str(shipped), str(cache_dir)], capture_output=True,
                                text=True, timeout=PREPARE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        result = None
    if result is None or result.returncode != 0:
        why = "timed out" if result is None else (result.stderr.strip().splitlines() or ["exit code"])[-1]
        print(f"note: serving {shipped.name} as shipped (preparing a faster copy failed: {why})", file=sys.stderr)
        return shipped
    served = Path([line for line in result.stdout.splitlines() if line.startswith(ANSWER)][-1][len(ANSWER):])
    if served == shipped:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(marker, "llama.cpp serves this file as shipped here\n")
        except OSError:
            pass  # a read-only cache: the next start asks the child again
    return served


def quantize(source: Path, target: Path, threads: int, type_name: str = PREPARED_TYPE) -> None:
    """``llama_model_quantize(source -> target)`` to ``type_name`` (a llama.cpp file type such as ``Q4_0``),
    requantizing an already quantized file."""
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{type_name}")
    params.allow_requantize = True
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    if status != 0:
        raise OSError(f"llama_model_quantize returned {status}")


def _prepare(shipped: Path, cache_dir: Path) -> Path:
    """In the child: the Q4_0 copy where it pays (made and test-run), else the shipped file."""
    import llama_cpp

    from assistant.core.engines.llama_cpp_engine import cpu_threads
    from assistant.core.engines.llama_cpp_probe import test_run

    file_type = llama_cpp.Llama(str(shipped), vocab_only=True, verbose=False).metadata.get("general.file_type")
    preparable = {getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{name}") for name in PREPARE_FROM}
    if not llama_cpp_repacks() or int(file_type if file_type is not None else -1) not in preparable:
        return shipped
    target = prepared_path(shipped, cache_dir)
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(temp: Path) -> None:
        quantize(shipped, temp, cpu_threads())
        test_run(str(temp))  # the repacked kernels run on this CPU before the copy is put in place

    atomic_write(target, write)
    return target


if __name__ == "__main__":
    print(f"{ANSWER}{_prepare(Path(sys.argv[1]), Path(sys.argv[2]))}", flush=True)
