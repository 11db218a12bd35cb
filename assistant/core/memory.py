"""Give freed heap memory back to the operating system after a big one-off build.

Loading and quantizing a model, or building the fast decoder's weight copy, allocates and
frees hundreds of MiB of temporary tensors; glibc keeps much of that in its heap, so the
process's resident memory stays high although nothing uses it (a few hundred MiB after a
SmolLM2 load). ``malloc_trim`` returns it. A no-op where the C library has no such call.

    python -c "from assistant.core.memory import release_free_memory; release_free_memory()"
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
