"""Check in a child process that llama.cpp runs a GGUF file on this CPU, before the app relies on it.

A llama.cpp build can hold kernels the CPU cannot run (once: AMX kernels in a VM whose CPU reported
AMX it could not use); they die with SIGILL, which no ``except`` catches. So the first start on a
machine loads the file and decodes a few tokens in a child process; a crash there becomes a
one-line notice and the transformers engine. A success is remembered in the cache (per llama.cpp
version, CPU flags and file), so later starts skip the child.

    python -m assistant.core.engines.llama_cpp_probe FILE.gguf     # exit 0 when llama.cpp runs the file
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

PROBE_TIMEOUT_S = 180


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return ""


def _stamp(gguf: Path) -> str:
    from importlib.metadata import version

    stat = gguf.stat()
    raw = f"{version('llama_cpp_python')}|{_cpu_flags()}|{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def probe_failure(gguf: Path, cache_dir: Path) -> str | None:
    """Why llama.cpp cannot run ``gguf`` here (one line), or None when it can."""
    marker = cache_dir / "llama-cpp-probe" / f"{_stamp(gguf)}.ok"
    if marker.is_file():
        return None
    try:
        result = subprocess.run([sys.executable, "-m", __name__, str(gguf)], capture_output=True, text=True,
                                timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"llama.cpp did not finish a test run of {gguf.name} within {PROBE_TIMEOUT_S} s"
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name if -result.returncode in signal.valid_signals() else ""
        return (f"llama.cpp crashed on this CPU running {gguf.name} ({name or result.returncode}); rebuild "
                "llama-cpp-python with scripts/setup.sh's flags for this CPU")
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        return f"llama.cpp could not run {gguf.name}: {lines[-1] if lines else 'exit ' + str(result.returncode)}"
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a read-only cache only means the next start probes again
    return None


def test_run(path: str) -> None:
    """Load ``path`` and decode a few tokens: the prompt kernels and the single-token ones."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, verbose=False)
    try:
        tokens = llm.tokenize(b"Hello, world. The quick brown fox", add_bos=True)[:16]
        llm.eval(tokens)  # a batch (prompt kernels) ...
        for _ in range(4):  # ... and single-token steps (decode kernels)
            llm.eval([llm.sample(temp=0.0)])
    finally:
        llm.close()


if __name__ == "__main__":
    try:
        test_run(sys.argv[1])
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
