"""Memory: give freed heap memory back to the operating system after a big one-off build, and read what the
system has available and what this process holds (for the model pool's estimates and measurements).

Loading and quantizing a model, or building the fast decoder's weight copy, allocates and
frees hundreds of MiB of temporary tensors; glibc keeps much of that in its heap, so the
process's resident memory stays high although nothing uses it (a few hundred MiB after a
SmolLM2 load). ``malloc_trim`` returns it. A no-op where the C library has no such call.

    python -c "from assistant.core.memory import release_free_memory; release_free_memory()"
    python -c "from assistant.core.memory import available_memory_bytes as a; print(a())"   # MemAvailable
"""

from __future__ import annotations

import ctypes
import ctypes.util


def release_free_memory() -> bool:
    """Ask the C allocator to return free heap pages; True when it could be asked."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return False
    return True


def available_memory_bytes() -> int | None:
    """Memory the kernel says new allocations can take without swapping (``MemAvailable``); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def resident_bytes() -> int | None:
    """This process's resident memory (RSS) in bytes; None where unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            import os

            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
