"""Sizes in bytes as people read them, the same everywhere (model footprint, memory estimates, file limits).

    human_bytes(2411)          # "2411 bytes"
    human_bytes(1_572_864)     # "1.5 MiB"
    human_bytes(283_115_520)   # "270 MiB"
    human_bytes(None)          # "?" (a size that could not be read)
"""

from __future__ import annotations

EXACT_BELOW = 10 * 1024
"""Smaller sizes are given exactly, in bytes (a limit of 1000 bytes reads as such)."""


def human_bytes(n: int | float | None) -> str:
    """``n`` bytes in bytes, KiB, MiB, GiB or TiB: one decimal below 10 of a unit, none from 10 up."""
    if n is None:
        return "?"
    if n < EXACT_BELOW:
        return f"{int(n)} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
