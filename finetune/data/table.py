"""What every format reader fills in and stops at: ``Table`` (raw records, their row numbers, the file's hash)
and ``Limits`` (upload size, columns, rows), with the refusal for a file that has too many examples.

Used by ``finetune.data.readers`` and the per-format readers; run ``pytest tests/test_data_readers.py -q``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from assistant.core.errors import InputError
from finetune.data.validation import Problem


@dataclass
class Limits:
    """Hard limits on an upload (checked before parsing) and the minimum data needed to train."""

    max_bytes: int = 200 * 1024 * 1024
    max_columns: int = 100
    min_rows: int = 10
    preview_rows: int = 20
    max_rows: int = 500_000
    """Examples read at most; a file with more is refused while it is read, before it is all held."""

    def __post_init__(self):
        for name in ("max_bytes", "max_columns", "min_rows", "max_rows"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"Limits.{name} must be a whole number of at least 1; got {getattr(self, name)!r}.")
        if not isinstance(self.preview_rows, int) or self.preview_rows < 0:
            raise InputError(f"Limits.preview_rows must be 0 or more; got {self.preview_rows!r}.")


@dataclass
class Table:
    """Raw records as read, before any column mapping."""

    name: str
    format: str
    columns: list[str]
    records: list[dict[str, Any]]
    row_numbers: list[int]
    unit: str  # "line" or "row": how row_numbers count
    sha256: str  # of the file bytes
    problems: list[Problem] = field(default_factory=list)  # rows the reader could not use
    skipped_rows: int = 0
    notes: list[str] = field(default_factory=list)


def too_many_rows(name: str, limits: Limits) -> None:
    raise InputError(f"{name} has more than {limits.max_rows:,} examples; the limit is {limits.max_rows:,}. Keep a "
                     "sample, or split it into several runs.")


def count_row(name: str, numbers: list, limits: Limits) -> None:
    """Refuse the file as soon as one example more than the limit has been read (after each example is added)."""
    if len(numbers) > limits.max_rows:
        too_many_rows(name, limits)
