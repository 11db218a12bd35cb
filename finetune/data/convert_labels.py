"""Classification rows (and semi-supervised ones): ``{"text", "label"}``, numeric labels as whole-number strings
(1, 1.0 -> "1"); with the semi_supervised task, rows without a label go to ``unlabelled``.

Used by ``finetune.data.canonical``; run ``pytest tests/test_data_validation.py -q``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from finetune.data.columns import ColumnMapping
from finetune.data.conversion import Conversion, cell_text, is_blank, unicode_ok
from finetune.data.table import Table


def _label_strings(values: list[Any], numbers: list[int], column: str, out: Conversion) -> list[str | None]:
    """Labels as strings; None where empty. A column of numbers must hold whole numbers (1.0 -> "1")."""
    as_numbers = [None if is_blank(v) else _number(v) for v in values]
    present = [i for i, v in enumerate(values) if not is_blank(v)]
    if not present or any(as_numbers[i] is None for i in present):
        return [None if is_blank(v) else _label_text(v) for v in values]
    labels: list[str | None] = [None] * len(values)
    bad = []
    for i in present:
        x = as_numbers[i]
        if math.isfinite(x) and x.is_integer():
            labels[i] = str(int(x))
        else:
            labels[i] = ""  # reported once below; the row is dropped
            bad.append(i)
    if bad:
        out.error(numbers[bad[0]], column, f"label column '{column}' holds numbers that are not whole ({len(bad)} "
                  f"rows, first {values[bad[0]]!r}): classification needs class labels - round or bucket them")
    return labels


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        return None
    if isinstance(value, (int, float)):
        return float(value) if not isinstance(value, int) or abs(value) < 10**300 else None
    try:
        return float(str(value).strip())
    except (TypeError, ValueError, OverflowError):
        return None


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value).strip()


def classification_rows(table: Table, mapping: ColumnMapping, out: Conversion, _types) -> None:
    text_col, label_col = mapping.roles["text"], mapping.roles["label"]
    semi = mapping.task == "semi_supervised"
    raw_labels = [r.get(label_col) for r in table.records]
    labels = _label_strings(raw_labels, table.row_numbers, label_col, out)
    for record, number, raw_label, label in zip(table.records, table.row_numbers, raw_labels, labels):
        if is_blank(record.get(text_col)) and label is None:
            out.warning(number, None, "empty row skipped")
            continue
        if isinstance(raw_label, (list, dict)):
            out.error(number, label_col, "is a list or object; give one label per row (multi-label is not supported)")
            continue
        text = cell_text(out, record.get(text_col), number, text_col)
        if label == "" or text is None:
            continue  # reported above
        if label is None:
            if semi:
                out.unlabelled.append({"text": text})
                out.unlabelled_numbers.append(number)
            else:
                out.error(number, label_col, "label is empty: fill it in, or choose the semi_supervised task to use "
                          "rows without labels")
            continue
        if not unicode_ok(out, label, number, label_col):
            continue
        if mapping.label_names:
            if label not in mapping.label_names:
                out.error(number, label_col, f"label '{label}' is not one of the label names given "
                          f"({', '.join(mapping.label_names)})")
                continue
            label = mapping.label_names[label]
        out.add({"text": text, "label": label}, number)
