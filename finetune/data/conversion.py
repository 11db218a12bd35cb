"""What a converter reports into: ``Conversion`` (canonical rows, their row numbers, the problems) and the cell
helpers every task's converter shares (``is_blank``, ``cell_text``, ``unicode_ok``).

Used by ``finetune.data.canonical`` and its per-task converters; run ``pytest tests/test_data_validation.py -q``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from finetune.data.validation import Problem


@dataclass
class Conversion:
    rows: list[dict] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    unlabelled: list[dict] = field(default_factory=list)
    unlabelled_numbers: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unit: str = "row"

    def error(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(row, column, message, "error", self.unit))

    def warning(self, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(Problem(row, column, message, "warning", self.unit))

    def add(self, row: dict, number: int) -> None:
        self.rows.append(row)
        self.numbers.append(number)


def is_blank(value: Any) -> bool:
    """None, NaN or only whitespace: a cell with nothing in it."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def cell_text(out: Conversion, value: Any, number: int, column: str) -> str | None:
    """The value as text, or None (after reporting why) when it is missing, empty or not text."""
    if isinstance(value, (list, dict)):
        out.error(number, column, f"is {'a list' if isinstance(value, list) else 'an object'}, expected text")
        return None
    if is_blank(value):
        out.error(number, column, "is empty" if value is not None else "is missing")
        return None
    if isinstance(value, bytes):
        out.error(number, column, "holds binary data, expected text")
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text if unicode_ok(out, text, number, column) else None


def unicode_ok(out: Conversion, text: str, number: int, column: str) -> bool:
    """JSON may escape half of a surrogate pair ("\\ud800"): not a character, tokenizers fail on it."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError as exc:
        out.error(number, column, f"contains an invalid character (unpaired surrogate {text[exc.start]!r} at "
                  f"position {exc.start}); remove the \\u{ord(text[exc.start]):04x} escape")
        return False
